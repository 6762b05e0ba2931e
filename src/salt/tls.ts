// HTTP(S) agents for salt-api: TLS verified by default, against a configured CA bundle when given
// (it then replaces the system roots, like curl --cacert). insecureSkipVerify exists for labs only.

import http from 'node:http';
import https from 'node:https';

export interface TlsOptions {
  /** PEM bundle of the CA(s) that signed salt-api's certificate. */
  caPem?: string;
  /** Do not verify the certificate (never in production; logged as a warning by the client). */
  insecureSkipVerify?: boolean;
}

export interface Agents {
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;
}

export function buildAgents(tls: TlsOptions): Agents {
  const httpsOptions: https.AgentOptions = { keepAlive: true, rejectUnauthorized: tls.insecureSkipVerify !== true };
  if (tls.caPem !== undefined && tls.caPem.trim() !== '') httpsOptions.ca = tls.caPem;
  return {
    httpAgent: new http.Agent({ keepAlive: true }),
    httpsAgent: new https.Agent(httpsOptions),
  };
}

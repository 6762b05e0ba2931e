// `kube-salt-bridge release CLUSTER`: POST /release to a running bridge, with the bearer token of
// the config's http.tokenFile (or --token-file). The address comes from --url or http.listen.
import { existsSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { readSecretFile } from '../config/files.ts';
import { ConfigError } from '../errors.ts';
import { unreachable } from './status.ts';

export interface ReleaseOptions {
  readonly config: string;
  /** Where --config came from: 'cli' or 'env' when given, 'default' otherwise. */
  readonly configSource: string | undefined;
  readonly url?: string;
  readonly tokenFile?: string;
  readonly digest?: string;
}

export interface ReleaseResult {
  released: boolean;
  message: string;
}

/** The bridge's base URL for a config's http.listen (a wildcard listen is reached on loopback). */
export function bridgeUrl(config: Config): string {
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}

/**
 * URL and token for a release. --token-file wins over the config's http.tokenFile. The config is
 * read for what --url and --token-file do not give (a default config path that does not exist is
 * skipped when --url is given).
 */
export function releaseTarget(o: ReleaseOptions, load: (file: string) => Config): { url: string; token: string | undefined } {
  let token: string | undefined;
  if (o.tokenFile !== undefined) {
    const r = readSecretFile(o.tokenFile);
    if (!r.ok) throw new ConfigError('--token-file', r.reason);
    token = r.value.trim();
  }
  const configGiven = o.configSource !== undefined && o.configSource !== 'default';
  const readConfig = o.url === undefined || (token === undefined && (configGiven || existsSync(o.config)));
  const config = readConfig ? load(o.config) : undefined;
  token ??= config?.http.token?.reveal();
  return { url: o.url ?? bridgeUrl(config!), token };
}

export async function postRelease(base: string, cluster: string, digest: string | undefined, token: string | undefined): Promise<ReleaseResult> {
  const q = new URLSearchParams({ cluster, ...(digest ? { digest } : {}) });
  const url = `${base}/release?${q.toString()}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: '{}',
      signal: AbortSignal.timeout(5000),
    });
  } catch (err) {
    throw unreachable(url, err);
  }
  const text = await res.text();
  if (res.status === 200 || res.status === 409) {
    try {
      return JSON.parse(text) as ReleaseResult;
    } catch {
      // fall through: not a kube-salt-bridge answer
    }
  }
  const why = text.split('\n', 1)[0]!.slice(0, 200);
  const hint = res.status === 401 && token === undefined ? ' (no token: set http.tokenFile in the config or pass --token-file)' : '';
  throw new Error(`the bridge refused the release: HTTP ${res.status}: ${why}${hint}`);
}

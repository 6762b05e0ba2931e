// The checks every request to the bridge's HTTP endpoint passes, as pure functions (decision
// tables in test/unit/http-guards.test.ts). What they stop:
// - DNS rebinding: a web page whose name resolves to 127.0.0.1 talks to the bridge from the
//   victim's browser; its requests carry that *name* in Host. Only IP literals, `localhost` and the
//   configured http.allowedHosts are accepted.
// - Cross-site POSTs from a browser: they carry Origin; a form or a no-cors fetch can only send
//   "simple" content types, never application/json, which POST /release requires.
// - Another local user or process: POST /release needs the bearer token from http.tokenFile.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly status: number; readonly message: string };

const OK: Verdict = Object.freeze({ ok: true });
const refuse = (status: number, message: string): Verdict => ({ ok: false, status, message });

/** The largest request body accepted (bytes); POST /release needs none. */
export const MAX_BODY_BYTES = 4096;

/** Splits a Host header into host and port; undefined when it is no valid Host. */
export function parseHostHeader(value: string): { host: string; port: string | undefined } | undefined {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?$/.exec(value);
  if (m) return isIP(m[1]!) === 6 ? { host: m[1]!, port: m[2] } : undefined;
  const n = /^([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(value);
  if (!n) return undefined;
  return { host: n[1]!, port: n[2] };
}

/**
 * Host must be an IP literal (IPv4, or IPv6 in brackets), `localhost`, or one of `allowed`
 * (lower-case names), each with or without a port. 421 otherwise: the request was not meant for us.
 */
export function checkHost(value: string | undefined, allowed: ReadonlySet<string>): Verdict {
  if (value === undefined || value === '') return refuse(400, 'a Host header is required');
  const h = parseHostHeader(value);
  if (h === undefined) return refuse(400, 'malformed Host header');
  if (h.port !== undefined && Number(h.port) > 65535) return refuse(400, 'malformed Host header');
  if (isIP(h.host) === 4 && !value.startsWith('[')) return OK;
  if (isIP(h.host) === 6 && value.startsWith('[')) return OK;
  const name = h.host.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || allowed.has(name)) return OK;
  return refuse(421, 'host not allowed: use an IP address, localhost, or a name listed in http.allowedHosts');
}

/** A state-changing request that names an Origin comes from a web page: refused. */
export function checkOrigin(method: string | undefined, origin: string | undefined): Verdict {
  if (method === 'GET' || method === 'HEAD' || origin === undefined) return OK;
  return refuse(403, 'cross-origin requests are refused (a browser sent this): use the kube-salt-bridge CLI or curl');
}

/** POST /release takes `Content-Type: application/json` only (parameters such as charset allowed). */
export function checkJsonContentType(value: string | undefined): Verdict {
  const type = (value ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'application/json') return OK;
  return refuse(415, 'POST /release needs Content-Type: application/json');
}

/**
 * `Authorization: Bearer <token>` against the configured token, compared in constant time (both
 * sides hashed first, so neither the length nor a prefix leaks through timing). Without a
 * configured token the operation is disabled.
 */
export function checkBearer(authorization: string | undefined, token: string | undefined, what = 'POST /release'): Verdict {
  if (token === undefined) return refuse(403, `${what} is disabled: configure http.tokenFile to enable it`);
  const m = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i.exec(authorization ?? '');
  if (m === null) return refuse(401, `${what} needs Authorization: Bearer <token> (the content of http.tokenFile)`);
  const given = createHash('sha256').update(m[1]!, 'utf8').digest();
  const want = createHash('sha256').update(token, 'utf8').digest();
  if (!timingSafeEqual(given, want)) return refuse(401, `${what}: wrong token`);
  return OK;
}

/** Content-Length, when sent, within MAX_BODY_BYTES (a chunked body is cut while it is read). */
export function checkContentLength(value: string | undefined, max = MAX_BODY_BYTES): Verdict {
  if (value === undefined) return OK;
  if (!/^[0-9]{1,15}$/.test(value)) return refuse(400, 'malformed Content-Length');
  return Number(value) > max ? refuse(413, `request body larger than ${max} bytes`) : OK;
}

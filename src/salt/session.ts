// The salt-api session: what POST /login returns and when to renew it. Pure.
//
// Verified on salt-api 3007.13 (docs/salt-api-notes.md): the body is
// {"return":[{"token","expire","start","user","eauth","perms"}]}; `token` is the CherryPy session
// id (also in the X-Auth-Token response header); expire - start is the master's token_expire
// (default 12 h) while the CherryPy session times out after 10 h without use. Sessions live in
// salt-api's memory: a restart kills every token (then any call answers 401).

import { SaltProtocolError } from './errors.ts';

export interface SaltSession {
  readonly token: string;
  /** Our clock (ms) when the login answered. */
  readonly obtainedAt: number;
  /** Our clock (ms) after which the token must not be used. */
  readonly expiresAt: number;
  readonly user: string | undefined;
  readonly eauth: string | undefined;
  /** The eauth ACL salt-api reports for the user (not secret; shown by `check`). */
  readonly perms: unknown;
}

export const DEFAULT_SESSION_MAX_MS = 10 * 60 * 60 * 1000;

/**
 * Reads a login response. The lifetime is taken as expire - start (both from the server's clock)
 * and applied to ours, so clock skew between the hosts does not matter; it is capped at
 * sessionMaxMs (CherryPy's 10 h session timeout).
 */
export function parseLoginResponse(body: unknown, now: number, sessionMaxMs = DEFAULT_SESSION_MAX_MS): SaltSession {
  const first = body !== null && typeof body === 'object' ? (body as { return?: unknown }).return : undefined;
  const r = Array.isArray(first) ? (first[0] as Record<string, unknown> | undefined) : undefined;
  if (r === undefined || r === null || typeof r !== 'object') {
    throw new SaltProtocolError('salt-api POST /login: response has no return[0] object', { request: 'POST /login' });
  }
  const token = r['token'];
  if (typeof token !== 'string' || token === '') {
    throw new SaltProtocolError('salt-api POST /login: response has no token', { request: 'POST /login' });
  }
  const expire = typeof r['expire'] === 'number' ? r['expire'] : undefined;
  const start = typeof r['start'] === 'number' ? r['start'] : undefined;
  const lifetime = expire !== undefined && start !== undefined && expire > start ? (expire - start) * 1000 : sessionMaxMs;
  return {
    token,
    obtainedAt: now,
    expiresAt: now + Math.min(lifetime, sessionMaxMs),
    user: typeof r['user'] === 'string' ? r['user'] : undefined,
    eauth: typeof r['eauth'] === 'string' ? r['eauth'] : undefined,
    perms: r['perms'],
  };
}

/** True when the session should be renewed before the next call. */
export function needsRenewal(s: SaltSession | undefined, now: number, marginMs: number): boolean {
  if (s === undefined) return true;
  const margin = Math.min(marginMs, (s.expiresAt - s.obtainedAt) / 2);
  return now >= s.expiresAt - margin;
}

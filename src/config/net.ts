// Small parsers for network settings: salt-api URL and the HTTP listen address.

import { isIP } from 'node:net';

/** Returns the normalised URL (no trailing slash) or why it is refused. */
export function checkSaltUrl(text: string): { ok: true; url: string } | { ok: false; reason: string } {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return { ok: false, reason: 'not a valid URL' };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { ok: false, reason: 'must be an https:// (or loopback http://) URL' };
  if (u.username !== '' || u.password !== '') {
    return { ok: false, reason: 'must not carry credentials; use salt.username and salt.passwordFile' };
  }
  if (u.search !== '' || u.hash !== '') return { ok: false, reason: 'must not have a query or fragment' };
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) {
    return {
      ok: false,
      reason: `plain http is allowed only to a loopback address (127.0.0.1, [::1], localhost), not ${u.hostname}; use https`,
    };
  }
  return { ok: true, url: u.href.replace(/\/+$/, '') };
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** `127.0.0.1:9540`, `[::1]:9540`, `0.0.0.0:9540`, `localhost:9540` (port 0: any free port). */
export function parseListen(text: string): { ok: true; host: string; port: number } | { ok: false; reason: string } {
  const m = /^\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})$/.exec(text) ?? /^([A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(text);
  const bad = { ok: false as const, reason: 'must be HOST:PORT, e.g. 127.0.0.1:9540, [::1]:9540 or 0.0.0.0:9540' };
  if (m === null) return bad;
  const host = m[1] ?? '';
  const port = Number(m[2]);
  if (text.startsWith('[') && isIP(host) !== 6) return bad;
  if (port > 65535) return { ok: false, reason: 'port must be 0..65535' };
  return { ok: true, host, port };
}

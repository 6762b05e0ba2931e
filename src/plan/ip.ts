// Parsing and printing of IP addresses in the contract's canonical form (docs/event-contract.md):
// IPv4 dotted quad; IPv6 lower case, leading zeros dropped, the longest run (first on a tie) of
// two or more zero groups written as `::` — exactly what Python's `ipaddress` prints.
// Pure: node:net is used only for its grammar check (isIPv4/isIPv6), never for sockets.

import { isIPv4, isIPv6 } from 'node:net';

/** An IPv4 address as 4 octets or an IPv6 address as 8 16-bit groups. */
export type IpBytes = { readonly family: 'ipv4'; readonly parts: readonly number[] } | { readonly family: 'ipv6'; readonly parts: readonly number[] };

/** Parses a bare address (no prefix, no zone). Returns undefined when it is not one. */
export function parseIp(text: string): IpBytes | undefined {
  if (isIPv4(text)) return { family: 'ipv4', parts: text.split('.').map(Number) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  const groups = parseIPv6Groups(text);
  return groups === undefined ? undefined : { family: 'ipv6', parts: groups };
}

function parseIPv6Groups(text: string): number[] | undefined {
  let body = text.toLowerCase();
  const lastColon = body.lastIndexOf(':');
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded dotted quad (::ffff:1.2.3.4, ::1.2.3.4): rewrite it as two hex groups.
    if (!isIPv4(last)) return undefined;
    const o = last.split('.').map(Number) as [number, number, number, number];
    const hi = ((o[0] << 8) | o[1]).toString(16);
    const lo = ((o[2] << 8) | o[3]).toString(16);
    body = `${body.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const head = hexGroups(halves[0] ?? '');
  const rest = halves.length === 2 ? hexGroups(halves[1] ?? '') : [];
  if (head === undefined || rest === undefined) return undefined;
  const explicit = head.length + rest.length;
  if (halves.length === 1) return explicit === 8 ? head : undefined;
  if (explicit > 7) return undefined;
  return [...head, ...new Array<number>(8 - explicit).fill(0), ...rest];
}

function hexGroups(text: string): number[] | undefined {
  if (text === '') return [];
  const out: number[] = [];
  for (const g of text.split(':')) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    out.push(parseInt(g, 16));
  }
  return out;
}

export function formatIp(ip: IpBytes): string {
  if (ip.family === 'ipv4') return ip.parts.join('.');
  // Longest run of zero groups, length >= 2, first one on a tie (Python's _compress_hextets).
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let i = 0; i <= 8; i += 1) {
    if (i < 8 && ip.parts[i] === 0) {
      if (runStart < 0) runStart = i;
      continue;
    }
    if (runStart >= 0) {
      const len = i - runStart;
      if (len > bestLen && len >= 2) {
        bestStart = runStart;
        bestLen = len;
      }
      runStart = -1;
    }
  }
  const hex = ip.parts.map((p) => p.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

/** Number of bits of a family. */
export function familyBits(family: 'ipv4' | 'ipv6'): number {
  return family === 'ipv4' ? 32 : 128;
}

/** Bits per part of a family (octets for IPv4, 16-bit groups for IPv6). */
function partBits(family: 'ipv4' | 'ipv6'): number {
  return family === 'ipv4' ? 8 : 16;
}

/** true when every bit after the first `prefix` bits is zero. */
export function hostBitsZero(ip: IpBytes, prefix: number): boolean {
  const width = partBits(ip.family);
  return ip.parts.every((part, i) => {
    const keep = Math.max(0, Math.min(width, prefix - i * width));
    const hostMask = keep >= width ? 0 : (1 << (width - keep)) - 1;
    return (part & hostMask) === 0;
  });
}

/** A network: its address (host bits zero) and prefix length. A host is a /32 or /128. */
export interface IpNetwork {
  readonly ip: IpBytes;
  readonly prefix: number;
}

/**
 * `10.0.0.0/8`, `fd00::/8`, `10.0.0.7` (a host: /32) → the network, or why not. Any prefix from 0
 * to the family's width is accepted (this is a filter, not an allow-list entry); host bits must be
 * zero so that what is written is what is meant.
 */
export function parseNetwork(text: string): { ok: true; network: IpNetwork } | { ok: false; reason: string } {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === undefined) return { ok: false, reason: 'not an IP network' };
  const bits = familyBits(ip.family);
  if (slash < 0) return { ok: true, network: { ip, prefix: bits } };
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    return { ok: false, reason: `bad prefix length (0 to ${bits})` };
  }
  const prefix = Number(prefixText);
  if (!hostBitsZero(ip, prefix)) return { ok: false, reason: 'host bits set in network' };
  return { ok: true, network: { ip, prefix } };
}

/** The canonical text of a network: `10.0.0.0/8`; a full-length prefix is written as a host. */
export function formatNetwork(n: IpNetwork): string {
  return n.prefix === familyBits(n.ip.family) ? formatIp(n.ip) : `${formatIp(n.ip)}/${n.prefix}`;
}

/** true when `inner` (a host or a network) lies entirely inside `outer`. */
export function networkContains(outer: IpNetwork, inner: IpNetwork): boolean {
  if (outer.ip.family !== inner.ip.family || inner.prefix < outer.prefix) return false;
  const width = partBits(outer.ip.family);
  return outer.ip.parts.every((part, i) => {
    const keep = Math.max(0, Math.min(width, outer.prefix - i * width));
    if (keep === 0) return true;
    const mask = ((1 << keep) - 1) << (width - keep);
    return (part & mask) === ((inner.ip.parts[i] ?? 0) & mask);
  });
}

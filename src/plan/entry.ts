// One allow-list entry (a host address or a network) → its canonical form, or why it is refused.
// Refusals are data, not exceptions: the controller reports them (habit 1).

import type { Family } from '../seams.ts';
import { familyBits, formatIp, hostBitsZero, parseIp } from './ip.ts';

export type EntryResult = { readonly ok: true; readonly family: Family; readonly value: string } | { readonly ok: false; readonly reason: string };

/**
 * Shortest prefix accepted per family. A firewall allow-list built from node addresses never needs
 * anything broader; `0.0.0.0/0` there is a mistake that would open the firewall to the world.
 * Equal to the minions' default bound (salt/file_roots/_utils/saltext/kube_allowlist/utils/payload.py DEFAULT_MAX_PREFIX,
 * pillar kube_allowlist:max_prefix), so the bridge never publishes what minions refuse by default.
 */
export const MIN_PREFIX: Readonly<Record<Family, number>> = Object.freeze({ ipv4: 16, ipv6: 48 });

const MAX_ENTRY_LENGTH = 64;

/** `10.0.0.7`, `FD00:0::A`, `10.244.0.0/16`, `10.0.0.7/32` → `10.0.0.7`, `fd00::a`, `10.244.0.0/16`, `10.0.0.7`. */
export function canonicalEntry(text: string): EntryResult {
  if (typeof text !== 'string' || text.length === 0) return refuse('empty');
  if (text.length > MAX_ENTRY_LENGTH) return refuse('too long');
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  const ip = parseIp(addressText);
  if (ip === undefined) {
    return refuse(addressText.includes('%') ? 'zone index not allowed' : 'not an IP address');
  }
  const bits = familyBits(ip.family);
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return refuse('bad prefix length');
    prefix = Number(prefixText);
    if (prefix > bits) return refuse(`prefix length above /${bits}`);
    if (prefix < MIN_PREFIX[ip.family]) {
      return refuse(`prefix shorter than /${MIN_PREFIX[ip.family]} is too broad for an allow-list`);
    }
    if (!hostBitsZero(ip, prefix)) return refuse('host bits set in network');
  }
  const special = specialRange(ip.family, ip.parts);
  if (special !== undefined) return refuse(special);
  const host = formatIp(ip);
  return { ok: true, family: ip.family, value: prefix === bits ? host : `${host}/${prefix}` };
}

export type HostResult =
  | { readonly ok: true; readonly family: Family; readonly value: string }
  | { readonly ok: false; readonly reason: 'invalid' | 'not-host'; readonly detail: string };

/**
 * A node address (Node.status.addresses) → its canonical host form. Only host addresses are
 * accepted: a value with a prefix, even `/32`, is a network and is refused as `not-host` (networks
 * come only from extraEntries and pod CIDRs); anything else that is not a usable address is
 * `invalid`, with the detail of why.
 */
export function canonicalHost(text: string): HostResult {
  if (typeof text === 'string' && text.length <= MAX_ENTRY_LENGTH) {
    const slash = text.indexOf('/');
    if (slash >= 0 && parseIp(text.slice(0, slash)) !== undefined) {
      return { ok: false, reason: 'not-host', detail: 'a network (address with a prefix) where a host address is expected' };
    }
  }
  const r = canonicalEntry(text);
  if (!r.ok) return { ok: false, reason: 'invalid', detail: r.reason };
  return r;
}

function refuse(reason: string): EntryResult {
  return { ok: false, reason };
}

/** Ranges that never belong in an allow-list of node addresses. */
function specialRange(family: Family, p: readonly number[]): string | undefined {
  if (p.every((x) => x === 0)) return 'unspecified address';
  if (family === 'ipv4') {
    if ((p[0] ?? 0) >= 224 && (p[0] ?? 0) <= 239) return 'multicast address';
    if (p.every((x) => x === 255)) return 'broadcast address';
    return undefined;
  }
  if ((p[0] ?? 0) >= 0xff00) return 'multicast address';
  if (p.slice(0, 5).every((x) => x === 0) && p[5] === 0xffff) {
    return 'IPv4-mapped IPv6 address (list the IPv4 address instead)';
  }
  return undefined;
}

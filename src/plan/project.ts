// Address projection: the nodes of one cluster + the cluster's options → the desired allow-list.
// A node's contribution depends on that node and the options only (nodeContribution), so a run may
// reuse the contributions of unchanged nodes (incremental.ts) and still equal projectNodes over the
// full node set (habit 2); invalid input is reported, not thrown.
//
// What a node may contribute is bounded, because a node writes its own status: only host
// addresses (networks come from extraEntries and pod CIDRs, never from Node.status.addresses), at
// most `maxAddressesPerNode` per family, and, when `allowedNetworks` is set, only addresses and pod
// CIDRs inside those networks. A node that breaks a bound is left out on its own; the rest of the
// cluster is still published.

import type { Family, NodeInfo } from '../seams.ts';
import { canonicalEntry, canonicalHost } from './entry.ts';
import { networkContains, parseNetwork, type IpNetwork } from './ip.ts';

/** Default of clusters[].maxAddressesPerNode: distinct host addresses per node and family. */
export const DEFAULT_MAX_ADDRESSES_PER_NODE = 4;

export interface ProjectionOptions {
  /** Which Node.status.addresses types count (e.g. InternalIP). */
  readonly addressTypes: readonly string[];
  /** Which families are published. Addresses of other families are ignored, not rejected. */
  readonly families: readonly Family[];
  /** Include spec.podCIDRs of nodes that contributed an address. */
  readonly podCIDRs: boolean;
  /** Static entries added to every publish (already canonical when they come from src/config). */
  readonly extraEntries: readonly string[];
  /**
   * At most this many distinct host addresses per node and family (default 4). A node over it
   * contributes nothing (`too-many`), pod CIDRs included.
   */
  readonly maxAddressesPerNode?: number;
  /**
   * When set, a node address or pod CIDR outside every one of these networks is refused
   * (`outside-allowed`). Extra entries are the operator's own and are not filtered.
   */
  readonly allowedNetworks?: readonly string[];
}

/**
 * Why an entry was left out: `invalid` (not a usable address), `not-host` (a network given as a
 * node address), `too-many` (the node is over maxAddressesPerNode), `outside-allowed`.
 */
export type RejectReason = 'invalid' | 'not-host' | 'too-many' | 'outside-allowed';

export interface RejectedEntry {
  /** Node name, or undefined for a static extra entry. */
  readonly node: string | undefined;
  readonly source: 'address' | 'podCIDR' | 'extra';
  /** The value as the node gave it (untrusted: may be long); for `too-many`, a count. */
  readonly value: string;
  readonly reason: RejectReason;
  /** Human-readable detail, e.g. "multicast address". */
  readonly detail: string;
}

export interface Projection {
  /** Canonical, sorted (code-point order), unique. */
  readonly ipv4: string[];
  readonly ipv6: string[];
  /** Nodes that contributed at least one address. */
  readonly nodes: number;
  /**
   * Nodes that contribute nothing (sorted names): no usable address yet, or left out by a bound;
   * their pod CIDRs are left out too.
   */
  readonly pending: string[];
  readonly rejected: RejectedEntry[];
}

export function projectNodes(nodes: Iterable<NodeInfo>, options: ProjectionOptions): Projection {
  const ctx = projectionContext(options);
  const sets: Record<Family, Set<string>> = { ipv4: new Set(), ipv6: new Set() };
  const rejected: RejectedEntry[] = [];
  const pending: string[] = [];
  let counted = 0;

  for (const node of nodes) {
    const c = nodeContribution(node, ctx);
    rejected.push(...c.rejected);
    if (c.counted) counted += 1;
    else pending.push(node.name);
    for (const family of ['ipv4', 'ipv6'] as const) for (const value of c.entries[family]) sets[family].add(value);
  }
  const extras = extraContribution(ctx);
  rejected.push(...extras.rejected);
  for (const family of ['ipv4', 'ipv6'] as const) for (const value of extras.entries[family]) sets[family].add(value);

  return {
    ipv4: sortedCodePoint(sets.ipv4),
    ipv6: sortedCodePoint(sets.ipv6),
    nodes: counted,
    pending: sortedCodePoint(pending),
    rejected,
  };
}

/** The options of one projection, parsed once. */
export interface ProjectionContext {
  readonly options: ProjectionOptions;
  readonly families: ReadonlySet<Family>;
  readonly types: ReadonlySet<string>;
  readonly cap: number;
  readonly allowed: readonly IpNetwork[] | undefined;
}

export function projectionContext(options: ProjectionOptions): ProjectionContext {
  return {
    options,
    families: new Set<Family>(options.families),
    types: new Set(options.addressTypes),
    cap: options.maxAddressesPerNode ?? DEFAULT_MAX_ADDRESSES_PER_NODE,
    allowed: options.allowedNetworks?.flatMap((text) => {
      const r = parseNetwork(text);
      return r.ok ? [r.network] : [];
    }),
  };
}

/**
 * What one node adds to the projection, on its own: its entries per family (a value may appear
 * twice, e.g. a host address that is also a /32 pod CIDR), its rejected entries in the order
 * projectNodes reports them, and whether it counts (contributed an address) or is pending. A
 * node's contribution depends only on the node and the options, never on other nodes.
 */
export interface NodeContribution {
  readonly entries: Readonly<Record<Family, readonly string[]>>;
  readonly rejected: readonly RejectedEntry[];
  readonly counted: boolean;
}

const NOTHING: Readonly<Record<Family, readonly string[]>> = Object.freeze({ ipv4: Object.freeze([]), ipv6: Object.freeze([]) });

export function nodeContribution(node: NodeInfo, ctx: ProjectionContext): NodeContribution {
  const { options, families, types, cap, allowed } = ctx;
  const hosts = nodeHosts(node, types, families);
  const over = tooMany(node.name, 'address', hosts, cap);
  if (over.length > 0) return { entries: NOTHING, rejected: over, counted: false };
  const rejected: RejectedEntry[] = [...hosts.bad];
  const entries: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  let usable = false;
  for (const family of options.families) {
    for (const value of hosts.byFamily[family]) {
      if (allowed !== undefined && !inside(allowed, value)) {
        rejected.push(outside(node.name, 'address', value));
        continue;
      }
      entries[family].push(value);
      usable = true;
    }
  }
  if (!usable) return { entries: NOTHING, rejected, counted: false };
  if (options.podCIDRs) addPodCIDRs(node, families, cap, allowed, entries, rejected);
  return { entries, rejected, counted: true };
}

/** The static extra entries, as one more contribution (reported after every node's). */
export function extraContribution(ctx: ProjectionContext): Omit<NodeContribution, 'counted'> {
  const entries: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  const rejected: RejectedEntry[] = [];
  for (const extra of ctx.options.extraEntries) {
    const r = canonicalEntry(extra);
    if (!r.ok) rejected.push({ node: undefined, source: 'extra', value: extra, reason: 'invalid', detail: r.reason });
    else if (ctx.families.has(r.family)) entries[r.family].push(r.value);
  }
  return { entries, rejected };
}

interface NodeHosts {
  /** Distinct canonical host addresses of the published families. */
  readonly byFamily: Record<Family, string[]>;
  /** Values of the selected types that are no host address. */
  readonly bad: RejectedEntry[];
}

function nodeHosts(node: NodeInfo, types: ReadonlySet<string>, families: ReadonlySet<Family>): NodeHosts {
  const byFamily: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  const bad: RejectedEntry[] = [];
  const seen = new Set<string>();
  for (const a of node.addresses) {
    if (!types.has(a.type) || seen.has(a.address)) continue;
    seen.add(a.address);
    const r = canonicalHost(a.address);
    if (!r.ok) bad.push({ node: node.name, source: 'address', value: a.address, reason: r.reason, detail: r.detail });
    else if (families.has(r.family) && !byFamily[r.family].includes(r.value)) byFamily[r.family].push(r.value);
  }
  return { byFamily, bad };
}

/** The `too-many` entries of a node over the cap (per family, and for unusable values), if any. */
function tooMany(node: string, source: 'address' | 'podCIDR', hosts: NodeHosts, cap: number): RejectedEntry[] {
  const out: RejectedEntry[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const n = hosts.byFamily[family].length;
    if (n > cap) {
      out.push({
        node,
        source,
        value: `${n} ${family} ${source === 'address' ? 'addresses' : 'pod CIDRs'}`,
        reason: 'too-many',
        detail: `more than maxAddressesPerNode (${cap}) per family: the node's ${source === 'address' ? 'addresses are' : 'pod CIDRs are'} left out`,
      });
    }
  }
  if (hosts.bad.length > cap) {
    out.push({
      node,
      source,
      value: `${hosts.bad.length} unusable values`,
      reason: 'too-many',
      detail: `more than maxAddressesPerNode (${cap}) values that are no usable ${source === 'address' ? 'host address' : 'pod CIDR'}: the node is left out`,
    });
  }
  return out;
}

function addPodCIDRs(
  node: NodeInfo,
  families: ReadonlySet<Family>,
  cap: number,
  allowed: readonly IpNetwork[] | undefined,
  entries: Record<Family, string[]>,
  rejected: RejectedEntry[],
): void {
  const byFamily: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  const bad: RejectedEntry[] = [];
  for (const cidr of new Set(node.podCIDRs)) {
    const r = canonicalEntry(cidr);
    if (!r.ok) bad.push({ node: node.name, source: 'podCIDR', value: cidr, reason: 'invalid', detail: r.reason });
    else if (families.has(r.family) && !byFamily[r.family].includes(r.value)) byFamily[r.family].push(r.value);
  }
  const over = tooMany(node.name, 'podCIDR', { byFamily, bad }, cap);
  if (over.length > 0) {
    rejected.push(...over);
    return;
  }
  rejected.push(...bad);
  for (const family of ['ipv4', 'ipv6'] as const) {
    for (const value of byFamily[family]) {
      if (allowed !== undefined && !inside(allowed, value)) rejected.push(outside(node.name, 'podCIDR', value));
      else entries[family].push(value);
    }
  }
}

/** `value` is canonical (a host, or a network with its prefix). */
function inside(allowed: readonly IpNetwork[], value: string): boolean {
  const r = parseNetwork(value);
  if (!r.ok) return false;
  return allowed.some((net) => networkContains(net, r.network));
}

function outside(node: string, source: 'address' | 'podCIDR', value: string): RejectedEntry {
  return { node, source, value, reason: 'outside-allowed', detail: 'outside every network of allowedNetworks' };
}

/** Plain string order by UTF-16 code unit, which equals code-point order for the ASCII we carry. */
export function sortedCodePoint(values: Iterable<string>): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

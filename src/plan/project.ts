// Address projection: the nodes of one cluster + the cluster's options → the desired allow-list.
// Recomputed from the full node set on every run (habit 2); invalid input is reported, not thrown.

import type { Family, NodeInfo } from '../seams.ts';
import { canonicalEntry } from './entry.ts';

export interface ProjectionOptions {
  /** Which Node.status.addresses types count (e.g. InternalIP). */
  readonly addressTypes: readonly string[];
  /** Which families are published. Addresses of other families are ignored, not rejected. */
  readonly families: readonly Family[];
  /** Include spec.podCIDRs of nodes that contributed an address. */
  readonly podCIDRs: boolean;
  /** Static entries added to every publish (already canonical when they come from src/config). */
  readonly extraEntries: readonly string[];
}

export interface RejectedEntry {
  /** Node name, or undefined for a static extra entry. */
  readonly node: string | undefined;
  readonly source: 'address' | 'podCIDR' | 'extra';
  readonly value: string;
  readonly reason: string;
}

export interface Projection {
  /** Canonical, sorted (code-point order), unique. */
  readonly ipv4: string[];
  readonly ipv6: string[];
  /** Nodes that contributed at least one address. */
  readonly nodes: number;
  /** Nodes without a usable address yet (sorted names); they contribute nothing, pod CIDRs included. */
  readonly pending: string[];
  readonly rejected: RejectedEntry[];
}

export function projectNodes(
  nodes: Iterable<NodeInfo>,
  options: ProjectionOptions,
): Projection {
  const families = new Set<Family>(options.families);
  const types = new Set(options.addressTypes);
  const sets: Record<Family, Set<string>> = { ipv4: new Set(), ipv6: new Set() };
  const rejected: RejectedEntry[] = [];
  const pending: string[] = [];
  let counted = 0;

  const take = (node: string | undefined, source: RejectedEntry['source'], value: string): boolean => {
    const r = canonicalEntry(value);
    if (!r.ok) {
      rejected.push({ node, source, value, reason: r.reason });
      return false;
    }
    if (!families.has(r.family)) return false;
    sets[r.family].add(r.value);
    return true;
  };

  for (const node of nodes) {
    let usable = false;
    for (const a of node.addresses) {
      if (types.has(a.type) && take(node.name, 'address', a.address)) usable = true;
    }
    if (!usable) {
      pending.push(node.name);
      continue;
    }
    counted += 1;
    if (options.podCIDRs) for (const cidr of node.podCIDRs) take(node.name, 'podCIDR', cidr);
  }
  for (const extra of options.extraEntries) take(undefined, 'extra', extra);

  return {
    ipv4: sortedCodePoint(sets.ipv4),
    ipv6: sortedCodePoint(sets.ipv6),
    nodes: counted,
    pending: sortedCodePoint(pending),
    rejected,
  };
}

/** Plain string order by UTF-16 code unit, which equals code-point order for the ASCII we carry. */
export function sortedCodePoint(values: Iterable<string>): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

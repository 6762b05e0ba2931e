// The projection and the diff of one cluster, kept between runs so that a run costs what changed,
// not the cluster's size. The result is always exactly what projectNodes and diffLists give from
// the full node set (habit 2, level-triggered): the cache only skips nodes whose NodeInfo did not
// change. The source replaces a node's NodeInfo object only when what the bridge reads of it
// changed (src/kube/nodeSource.ts), so a node whose object is the one seen last run contributes
// what it contributed then; any other node is projected again (nodeContribution). Options that
// change (config reload) drop the cache. Pure: no clock, no I/O.

import type { Family, NodeInfo } from '../seams.ts';
import { diffLists, type EntryLists } from './diff.ts';
import {
  extraContribution,
  nodeContribution,
  projectionContext,
  sortedCodePoint,
  type NodeContribution,
  type Projection,
  type ProjectionContext,
  type ProjectionOptions,
  type RejectedEntry,
} from './project.ts';

/** The complete change from one list to another (uncapped, each sorted): what a delta carries. */
export interface Change {
  readonly added: string[];
  readonly removed: string[];
}

interface CachedNode {
  readonly info: NodeInfo;
  readonly contribution: NodeContribution;
  /** The update that last saw the node in the view. */
  seen: number;
}

const FAMILIES = ['ipv4', 'ipv6'] as const;

/** Index of `value` in the code-point sorted `list`, or where it would be inserted. */
function lowerBound(list: readonly string[], value: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The projection of a node map, updated from the previous one. `update` returns what
 * projectNodes(nodes.values(), options) returns, field for field and in the same order; `change`
 * the complete change from the published list to it (diffLists uncapped), from the entries that
 * changed since the published list was the projection (else from both lists in full).
 */
export class IncrementalProjection {
  private ctx: ProjectionContext | undefined;
  private optionsKey = '';
  private readonly nodes = new Map<string, CachedNode>();
  /** Per entry, how many contributions (nodes and the extras) carry it. */
  private readonly refs = new Map<string, number>();
  private readonly lists: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  /** Names of the nodes that contribute nothing, sorted. */
  private readonly pending: string[] = [];
  private counted = 0;
  private extras: Omit<NodeContribution, 'counted'> = { entries: { ipv4: [], ipv6: [] }, rejected: [] };
  private epoch = 0;
  /**
   * Entries whose presence changed since the list of digest `markDigest` was the projection, each
   * with its presence then; `sinceLast` likewise since the last update (digest `lastDigest`).
   */
  private markDigest: string | undefined;
  private sinceMark = new Map<string, boolean>();
  private lastDigest: string | undefined;
  private sinceLast = new Map<string, boolean>();

  /** The projection of `nodes` (every node of a synced view). */
  update(nodes: ReadonlyMap<string, NodeInfo>, options: ProjectionOptions): Projection {
    this.setOptions(options);
    const ctx = this.ctx!;
    const epoch = ++this.epoch;
    const rejected: RejectedEntry[] = [];
    for (const [name, info] of nodes) {
      let cached = this.nodes.get(name);
      if (cached === undefined || cached.info !== info) {
        if (cached !== undefined) this.remove(name, cached);
        cached = { info, contribution: nodeContribution(info, ctx), seen: epoch };
        this.add(name, cached);
        this.nodes.set(name, cached);
      } else cached.seen = epoch;
      if (cached.contribution.rejected.length > 0) rejected.push(...cached.contribution.rejected);
    }
    // Every node of the view is cached now: more cached ones means some left, and only then are they looked for.
    if (this.nodes.size > nodes.size) {
      for (const [name, cached] of this.nodes) {
        if (cached.seen === epoch) continue;
        this.remove(name, cached);
        this.nodes.delete(name);
      }
    }
    rejected.push(...this.extras.rejected);
    return { ipv4: [...this.lists.ipv4], ipv6: [...this.lists.ipv6], nodes: this.counted, pending: [...this.pending], rejected };
  }

  /**
   * The change from `published` to the projection the last update returned, whose digest is
   * `digest`. A known published list (the projection of an earlier update, or the one of the last
   * call) is diffed from the entries that changed since; any other in full, once.
   */
  change(published: (EntryLists & { readonly digest: string }) | undefined, projection: EntryLists, digest: string): Change {
    let result: Change;
    if (published === undefined) result = { added: sortedCodePoint([...projection.ipv4, ...projection.ipv6]), removed: [] };
    else {
      if (published.digest !== this.markDigest && published.digest === this.lastDigest) {
        this.markDigest = this.lastDigest;
        this.sinceMark = this.sinceLast;
      }
      if (published.digest === this.markDigest) result = this.fromMark();
      else {
        const all = diffLists(published, projection, Number.POSITIVE_INFINITY);
        this.markDigest = published.digest;
        this.sinceMark = new Map([...all.added.map((e) => [e, false] as const), ...all.removed.map((e) => [e, true] as const)]);
        result = { added: all.added, removed: all.removed };
      }
    }
    this.lastDigest = digest;
    this.sinceLast = new Map();
    // A list held back for long collects changes; past the list's own size a full diff is cheaper.
    if (this.sinceMark.size > 1024 + this.refs.size) {
      this.markDigest = undefined;
      this.sinceMark = new Map();
    }
    return result;
  }

  private fromMark(): Change {
    const added: string[] = [];
    const removed: string[] = [];
    for (const [entry, was] of this.sinceMark) {
      const now = this.refs.has(entry);
      if (now && !was) added.push(entry);
      else if (!now && was) removed.push(entry);
    }
    return { added: sortedCodePoint(added), removed: sortedCodePoint(removed) };
  }

  private setOptions(options: ProjectionOptions): void {
    if (this.ctx?.options === options) return;
    const key = JSON.stringify([
      options.addressTypes,
      options.families,
      options.podCIDRs,
      options.extraEntries,
      options.maxAddressesPerNode ?? null,
      options.allowedNetworks ?? null,
    ]);
    if (this.ctx !== undefined && key === this.optionsKey) {
      this.ctx = { ...this.ctx, options };
      return;
    }
    // Other options: every contribution may differ. Start again, and diff in full once.
    this.ctx = projectionContext(options);
    this.optionsKey = key;
    this.nodes.clear();
    this.refs.clear();
    this.lists.ipv4 = [];
    this.lists.ipv6 = [];
    this.pending.length = 0;
    this.counted = 0;
    this.markDigest = undefined;
    this.lastDigest = undefined;
    this.sinceMark = new Map();
    this.sinceLast = new Map();
    this.extras = extraContribution(this.ctx);
    for (const family of FAMILIES) for (const e of this.extras.entries[family]) this.ref(family, e, 1);
  }

  private add(name: string, n: CachedNode): void {
    const c = n.contribution;
    if (c.counted) this.counted += 1;
    else this.pending.splice(lowerBound(this.pending, name), 0, name);
    for (const family of FAMILIES) for (const e of c.entries[family]) this.ref(family, e, 1);
  }

  private remove(name: string, n: CachedNode): void {
    const c = n.contribution;
    if (c.counted) this.counted -= 1;
    else this.pending.splice(lowerBound(this.pending, name), 1);
    for (const family of FAMILIES) for (const e of c.entries[family]) this.ref(family, e, -1);
  }

  private ref(family: Family, entry: string, by: 1 | -1): void {
    const before = this.refs.get(entry) ?? 0;
    const after = before + by;
    if (after > 0) this.refs.set(entry, after);
    else this.refs.delete(entry);
    if (before > 0 === after > 0) return;
    const list = this.lists[family];
    const at = lowerBound(list, entry);
    if (after > 0) list.splice(at, 0, entry);
    else list.splice(at, 1);
    if (!this.sinceMark.has(entry)) this.sinceMark.set(entry, before > 0);
    if (!this.sinceLast.has(entry)) this.sinceLast.set(entry, before > 0);
  }
}

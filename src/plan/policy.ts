// Safety policies (external-dns plan/policy.go style): each is a tiny object that may hold a
// publish, with a reason. The verdict is data; the controller logs, counts and exposes it.

import type { EntryLists } from './diff.ts';

export type HoldReason = 'unsynced' | 'empty' | 'shrink' | 'min-nodes';

export interface Hold {
  readonly reason: HoldReason;
  readonly message: string;
  /** An operator may release it with an override token (the held digest); 'unsynced' never. */
  readonly overridable: boolean;
}

export interface PolicyInput {
  /** false while the cluster is unknown (never listed, or unreachable): unknown is not "zero nodes". */
  readonly synced: boolean;
  readonly desired: EntryLists & { readonly digest: string; readonly nodes: number };
  /** The last published list, or undefined when nothing was published yet. */
  readonly published: (EntryLists & { readonly digest: string }) | undefined;
  /**
   * How many entries `desired` adds to and removes from `published`, when the caller knows it
   * already (planCluster does): the shrink policy then need not compare both lists.
   */
  readonly change?: { readonly added: number; readonly removed: number };
}

export interface SafetyPolicy {
  readonly name: string;
  check(input: PolicyInput): Hold | undefined;
}

export type Verdict =
  | { readonly kind: 'publish'; readonly digest: string; readonly overridden: readonly Hold[] }
  | { readonly kind: 'noop'; readonly digest: string }
  | { readonly kind: 'hold'; readonly digest: string; readonly holds: readonly Hold[] };

const size = (l: EntryLists): number => l.ipv4.length + l.ipv6.length;

export function syncedPolicy(): SafetyPolicy {
  return {
    name: 'synced',
    check: (i) => (i.synced ? undefined : { reason: 'unsynced', message: 'cluster state unknown (not synced)', overridable: false }),
  };
}

export function emptyPolicy(allowEmpty: boolean): SafetyPolicy {
  return {
    name: 'empty',
    check: (i) =>
      allowEmpty || size(i.desired) > 0 ? undefined : { reason: 'empty', message: 'allow-list would be empty (safety.allowEmpty is false)', overridable: true },
  };
}

/**
 * How a list changes against the one held (the shrink policy, docs/event-contract.md "Shrink
 * policy", the same rule the minions apply): `removed` entries disappear, `added` appear, and the
 * shrink is the net loss `lost = max(0, held − given)` — entries replaced by others of the same
 * number are not a shrink, and growth never is. Nothing held (the first list) is no shrink.
 */
export interface ListChange {
  readonly held: number;
  readonly given: number;
  readonly removed: number;
  readonly added: number;
  readonly lost: number;
  /** lost / held, 0 when nothing is held. */
  readonly fraction: number;
}

export function listChange(held: EntryLists | undefined, given: EntryLists, known?: { readonly added: number; readonly removed: number }): ListChange {
  if (known !== undefined) {
    // Both lists are canonical (sorted, unique), so their lengths are their sizes.
    const h = held === undefined ? 0 : size(held);
    const lost = Math.max(0, h - size(given));
    return { held: h, given: size(given), removed: known.removed, added: known.added, lost, fraction: h === 0 ? 0 : lost / h };
  }
  const before = new Set([...(held?.ipv4 ?? []), ...(held?.ipv6 ?? [])]);
  const after = new Set([...given.ipv4, ...given.ipv6]);
  let removed = 0;
  for (const e of before) if (!after.has(e)) removed += 1;
  const added = after.size - (before.size - removed);
  const lost = Math.max(0, before.size - after.size);
  return { held: before.size, given: after.size, removed, added, lost, fraction: before.size === 0 ? 0 : lost / before.size };
}

/**
 * Holds when the list would lose more than `maxFraction` of the published entries (net, see
 * listChange); exactly `maxFraction` publishes. A held list changes nothing: the next one is
 * judged against the same published list, however many were held in between.
 */
export function shrinkPolicy(maxFraction: number): SafetyPolicy {
  return {
    name: 'shrink',
    check: (i) => {
      const ch = listChange(i.published, i.desired, i.change);
      if (ch.fraction <= maxFraction) return undefined;
      const net = ch.added > 0 ? ` and add ${ch.added}, ${ch.lost} fewer` : '';
      return {
        reason: 'shrink',
        message: `would remove ${ch.removed} of ${ch.held} entries${net} (${pct(ch.fraction)} > safety.maxShrinkFraction ${pct(maxFraction)})`,
        overridable: true,
      };
    },
  };
}

export function minNodesPolicy(minNodes: number): SafetyPolicy {
  return {
    name: 'min-nodes',
    check: (i) =>
      i.desired.nodes >= minNodes
        ? undefined
        : {
            reason: 'min-nodes',
            message: `only ${i.desired.nodes} node(s) contribute addresses (safety.minNodes is ${minNodes})`,
            overridable: true,
          },
  };
}

export interface SafetyOptions {
  readonly allowEmpty: boolean;
  readonly maxShrinkFraction: number;
  readonly minNodes: number;
}

/** The policy set of one cluster, from its `safety` config. */
export function safetyPolicies(o: SafetyOptions): SafetyPolicy[] {
  return [emptyPolicy(o.allowEmpty), shrinkPolicy(o.maxShrinkFraction), minNodesPolicy(o.minNodes)];
}

/**
 * Decides what to do with a desired list. Order: unknown cluster → hold (always); same digest as
 * published → noop; otherwise every policy is asked. An override releases the holds only when it
 * equals the digest being held, so it cannot release a later, different shrink.
 */
export function evaluate(input: PolicyInput, policies: readonly SafetyPolicy[], override?: string): Verdict {
  const digest = input.desired.digest;
  const unsynced = syncedPolicy().check(input);
  if (unsynced !== undefined) return { kind: 'hold', digest, holds: [unsynced] };
  if (input.published !== undefined && input.published.digest === digest) return { kind: 'noop', digest };
  const holds = policies.map((p) => p.check(input)).filter((h): h is Hold => h !== undefined);
  if (holds.length === 0) return { kind: 'publish', digest, overridden: [] };
  if (override === digest && holds.every((h) => h.overridable)) {
    return { kind: 'publish', digest, overridden: holds };
  }
  return { kind: 'hold', digest, holds };
}

function pct(f: number): string {
  return `${Math.round(f * 1000) / 10}%`;
}

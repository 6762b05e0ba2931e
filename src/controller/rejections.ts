// Entries the projection left out (src/plan project.ts), reported without flooding: a node's status
// is the node's to write, so one bad value must not become a log line and a counter increment on
// every run. Each node + value + reason is logged once (the value cut to 64 characters) and counted
// once in ksb_addresses_rejected_total{cluster,reason}; a rejection that disappears (the node fixed
// it, or is gone) is forgotten, so it is reported again if it comes back.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { RejectedEntry } from '../plan/index.ts';
import type { Metrics } from '../http/metrics.ts';

/** Longest part of an untrusted value that reaches a log line. */
export const MAX_LOGGED_VALUE = 64;

export function truncate(text: string, max = MAX_LOGGED_VALUE): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** What has been reported for one cluster: node ('' for static entries) → keys of its rejections. */
export type RejectionMemory = Map<string, Set<string>>;

const memories = new WeakMap<object, RejectionMemory>();

/**
 * Reports the rejections of one run of a synced cluster. `owner` is the cluster's runtime state:
 * what was reported lives as long as it does. Returns the entries reported now.
 */
export function reportRejections(
  owner: object,
  cluster: string,
  rejected: readonly RejectedEntry[],
  log: Logger,
  metrics: Pick<Metrics, 'addressesRejected'>,
): RejectedEntry[] {
  let memory = memories.get(owner);
  if (memory === undefined) {
    memory = new Map();
    memories.set(owner, memory);
  }
  return noteRejections(memory, rejected, (r) => {
    metrics.addressesRejected.inc({ cluster, reason: r.reason });
    const node = r.node === undefined ? 'extraEntries' : `node ${truncate(r.node)}`;
    log.warn(
      {
        rejected: { node: r.node === undefined ? undefined : truncate(r.node), source: r.source, value: truncate(r.value), reason: r.reason, detail: r.detail },
      },
      `${r.source === 'podCIDR' ? 'pod CIDR' : 'address'} left out: ${node}: ${JSON.stringify(truncate(r.value))} (${r.reason}: ${r.detail})`,
    );
  });
}

/**
 * Pure bookkeeping behind reportRejections: calls `report` for each rejection not reported
 * before, then remembers exactly the current ones (forgetting nodes and values that are gone).
 */
export function noteRejections(memory: RejectionMemory, rejected: readonly RejectedEntry[], report: (r: RejectedEntry) => void): RejectedEntry[] {
  const current: RejectionMemory = new Map();
  const fresh: RejectedEntry[] = [];
  for (const r of rejected) {
    const node = r.node ?? '';
    const key = `${r.source}\u0000${valueKey(r.value)}\u0000${r.reason}`;
    let keys = current.get(node);
    if (keys === undefined) {
      keys = new Set();
      current.set(node, keys);
    }
    if (keys.has(key)) continue;
    keys.add(key);
    if (memory.get(node)?.has(key)) continue;
    fresh.push(r);
    report(r);
  }
  memory.clear();
  for (const [node, keys] of current) memory.set(node, keys);
  return fresh;
}

/** A value is untrusted and may be long: what is remembered of it is bounded (a digest of a long one). */
function valueKey(value: string): string {
  return value.length <= 128 ? value : `sha256:${createHash('sha256').update(value).digest('base64')}`;
}

// What the bus tells us about minions, and what the bridge does about it: which verified jobs
// targeted which minions, which of them applied which generation, which failed or never answered,
// and the events of a targeted re-send. Bookkeeping over injected time plus pure decisions; the
// controller only sequences (docs/event-contract.md, "What the bridge believes from the bus").
import { Backoff } from '../util/backoff.ts';
import type { AllowListPayload } from '../seams.ts';
import { payloadBytes, SALT_API_MAX_BODY_BYTES } from '../plan/index.ts';

/** The newest this many verified apply jobs are remembered. */
export const MAX_JOBS = 1_000;
/** At most this many targeted minions are kept per job. */
export const MAX_JOB_MINIONS = 10_000;
/** At most this many minions are tracked per cluster; the least recently seen goes first. */
export const MAX_MINIONS_PER_CLUSTER = 10_000;
/** The reactor accepts at most this many ids in one `minions` hint. */
export const MAX_HINT_IDS = 1_000;
/** A hint id as the reactor accepts it (the contract's minion id). */
const HINT_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** Room kept in a salt-api request for what surrounds the event data ({"client":"runner",...,"tag":...}). */
export const REQUEST_OVERHEAD_BYTES = 512;

// ---- jobs ------------------------------------------------------------------------------------

/** A kube_allowlist.apply job whose payload verified with the bridge's own key. */
export interface Job {
  readonly jid: string;
  readonly cluster: string;
  readonly generation: number;
  readonly digest: string;
  /** The minions the master targeted (at most MAX_JOB_MINIONS). */
  readonly minions: ReadonlySet<string>;
}

/** The newest MAX_JOBS jobs, by jid. */
export class JobBook {
  private readonly jobs = new Map<string, Job>();
  private readonly max: number;

  constructor(max = MAX_JOBS) {
    this.max = max;
  }

  has(jid: string): boolean {
    return this.jobs.has(jid);
  }

  get(jid: string): Job | undefined {
    return this.jobs.get(jid);
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Remembers a job; the first word on a jid stands. The oldest job is forgotten beyond the bound. */
  remember(job: Job): void {
    if (this.jobs.has(job.jid)) return;
    const minions = job.minions.size <= MAX_JOB_MINIONS ? job.minions : new Set([...job.minions].slice(0, MAX_JOB_MINIONS));
    this.jobs.set(job.jid, { ...job, minions });
    while (this.jobs.size > this.max) this.jobs.delete(this.jobs.keys().next().value!);
  }
}

export type JobVerdict =
  | { readonly accept: true }
  | { readonly accept: false; readonly reason: 'other-cluster' | 'known-job' | 'unverified' };

/**
 * Whether a salt/job/<jid>/new of kube_allowlist.apply is remembered: a cluster of this bridge, a
 * jid not seen before, and a payload that verifies with the bridge's key (checked last: it costs).
 */
export function judgeJob(j: { ours: boolean; known: boolean; verify: () => boolean }): JobVerdict {
  if (!j.ours) return { accept: false, reason: 'other-cluster' };
  if (j.known) return { accept: false, reason: 'known-job' };
  if (!j.verify()) return { accept: false, reason: 'unverified' };
  return { accept: true };
}

export type ReturnVerdict =
  | { readonly credit: true; readonly cluster: string; readonly generation: number; readonly digest: string }
  | { readonly credit: false; readonly reason: 'unknown-job' | 'not-targeted' };

/**
 * What a kube_allowlist.apply return is worth: only a return of a remembered job, from a minion
 * that job targeted, counts; the generation and digest are the job's, never the return's.
 */
export function judgeReturn(job: Job | undefined, minion: string): ReturnVerdict {
  if (job === undefined) return { credit: false, reason: 'unknown-job' };
  if (!job.minions.has(minion)) return { credit: false, reason: 'not-targeted' };
  return { credit: true, cluster: job.cluster, generation: job.generation, digest: job.digest };
}

export type FloorVerdict =
  | { readonly raise: true; readonly to: number }
  | { readonly raise: false; readonly reason: 'other-cluster' | 'not-higher' | 'unverified' };

/**
 * Whether a cluster event or job seen on the bus raises the cluster's generation floor: ours,
 * higher than the floor, and verified with the bridge's key (checked last, and only then).
 */
export function judgeFloor(j: { ours: boolean; floor: number; generation: number | undefined; verify: () => boolean }): FloorVerdict {
  if (!j.ours) return { raise: false, reason: 'other-cluster' };
  if (j.generation === undefined || !Number.isSafeInteger(j.generation) || j.generation <= j.floor) return { raise: false, reason: 'not-higher' };
  if (!j.verify()) return { raise: false, reason: 'unverified' };
  return { raise: true, to: j.generation };
}

// ---- re-sends --------------------------------------------------------------------------------

/** One event of a targeted re-send: the published payload as it was, plus the unsigned hint. */
export type ResendEvent = AllowListPayload & { minions?: string[] };

/**
 * The events that re-send `payload` — exactly the last payload published, never a new signature —
 * to `minions` through the unsigned `minions` hint (the reactor intersects it with the cluster's
 * target). Ids are deduplicated and sorted; ids the reactor would refuse are left out. Split so
 * that no event names more than MAX_HINT_IDS minions and no salt-api request exceeds `maxBytes`.
 * When not even one id fits beside the payload, one event without a hint goes instead (the
 * cluster's whole target: what a resync sends).
 */
export function resendEvents(payload: AllowListPayload, minions: Iterable<string>, maxBytes = SALT_API_MAX_BODY_BYTES): ResendEvent[] {
  const ids = [...new Set(minions)].filter((id) => HINT_ID.test(id)).sort();
  if (ids.length === 0) return [];
  const { minions: _old, ...base } = payload as ResendEvent;
  const room = maxBytes - REQUEST_OVERHEAD_BYTES - payloadBytes({ ...base, minions: [] });
  const out: ResendEvent[] = [];
  let chunk: string[] = [];
  let used = 0;
  for (const id of ids) {
    const cost = id.length + 3; // "id" and a comma; ids are ASCII
    if (cost > room) return [{ ...base }];
    if (chunk.length === MAX_HINT_IDS || used + cost > room) {
      out.push({ ...base, minions: chunk });
      chunk = [];
      used = 0;
    }
    chunk.push(id);
    used += cost;
  }
  out.push({ ...base, minions: chunk });
  return out;
}

// ---- the tracker -----------------------------------------------------------------------------

export interface MinionClusterState {
  appliedGeneration: number | undefined;
  appliedDigest: string | undefined;
  /** 'applied' | 'current' (already had it) | 'failed' | 'pending' (sent, no answer yet). */
  lastResult: 'applied' | 'current' | 'failed' | 'pending';
  reason: string;
  lastSeenAt: number | undefined;
  /** When a targeted re-send is due (failure or no answer), undefined when nothing is owed. */
  retryAt: number | undefined;
}

export interface RetryOptions {
  /** How long a minion may take to answer a job before it is re-sent. */
  ackTimeoutMs: number;
  initialMs: number;
  maxMs: number;
  /** Minions tracked per cluster (default MAX_MINIONS_PER_CLUSTER). */
  maxPerCluster?: number;
}

/** What a credited return tells: the job's generation and digest, the return's outcome. */
export interface Credit {
  generation: number;
  digest: string;
  ok: boolean;
  changed: boolean;
  reason: string;
}

interface Entry extends MinionClusterState {
  backoff: Backoff;
  expectedGeneration: number | undefined;
}

export class MinionTracker {
  /** cluster → minion → entry, in order of last sight (the first is the least recently seen). */
  private readonly clusters = new Map<string, Map<string, Entry>>();
  private readonly o: RetryOptions;
  private readonly max: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(o: RetryOptions, now: () => number, random: () => number = Math.random) {
    this.o = o;
    this.max = o.maxPerCluster ?? MAX_MINIONS_PER_CLUSTER;
    this.now = now;
    this.random = random;
  }

  /** The entry of a minion the bus just mentioned: created or moved to the most recently seen end. */
  private touch(cluster: string, minion: string): Entry {
    let byMinion = this.clusters.get(cluster);
    if (!byMinion) this.clusters.set(cluster, (byMinion = new Map()));
    let e = byMinion.get(minion);
    if (e) {
      byMinion.delete(minion);
    } else {
      e = {
        appliedGeneration: undefined,
        appliedDigest: undefined,
        lastResult: 'pending',
        reason: '',
        lastSeenAt: undefined,
        retryAt: undefined,
        expectedGeneration: undefined,
        backoff: new Backoff({ initialMs: this.o.initialMs, maxMs: this.o.maxMs, now: this.now, random: this.random }),
      };
    }
    byMinion.set(minion, e);
    while (byMinion.size > this.max) byMinion.delete(byMinion.keys().next().value!);
    return e;
  }

  /** A verified job applying `generation` targeted these minions (salt/job/<jid>/new). */
  started(cluster: string, generation: number, minions: Iterable<string>): void {
    const now = this.now();
    for (const m of minions) {
      const e = this.touch(cluster, m);
      if (e.appliedGeneration !== undefined && e.appliedGeneration >= generation) continue;
      e.expectedGeneration = Math.max(e.expectedGeneration ?? 0, generation);
      e.lastResult = 'pending';
      e.retryAt = now + this.o.ackTimeoutMs;
    }
  }

  /** A credited return (see judgeReturn). Returns true when it is a success. */
  result(cluster: string, minion: string, r: Credit): boolean {
    const e = this.touch(cluster, minion);
    const now = this.now();
    e.lastSeenAt = now;
    e.reason = r.reason;
    if (r.ok) {
      if (e.appliedGeneration === undefined || r.generation >= e.appliedGeneration) {
        e.appliedGeneration = r.generation;
        e.appliedDigest = r.digest;
      }
      e.lastResult = r.changed ? 'applied' : 'current';
      if (e.expectedGeneration === undefined || (e.appliedGeneration ?? 0) >= e.expectedGeneration) {
        e.expectedGeneration = undefined;
        e.retryAt = undefined;
        e.backoff.reset();
      }
      return true;
    }
    e.lastResult = 'failed';
    e.retryAt = now + e.backoff.next();
    return false;
  }

  /** Minions owed a re-send of `cluster`'s current list at `now`; their next deadline is pushed back. */
  due(cluster: string): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const [m, e] of this.clusters.get(cluster) ?? []) {
      if (e.retryAt === undefined || e.retryAt > now) continue;
      out.push(m);
      e.retryAt = now + this.o.ackTimeoutMs + e.backoff.next();
    }
    return out.sort();
  }

  /** Earliest pending retry time across all clusters, for the controller's timer. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const byMinion of this.clusters.values()) {
      for (const e of byMinion.values()) if (e.retryAt !== undefined && (min === undefined || e.retryAt < min)) min = e.retryAt;
    }
    return min;
  }

  /** Minions of `cluster` whose applied generation is below `generation`. */
  behind(cluster: string, generation: number | undefined): string[] {
    if (generation === undefined) return [];
    const out: string[] = [];
    for (const [m, e] of this.clusters.get(cluster) ?? []) if ((e.appliedGeneration ?? 0) < generation) out.push(m);
    return out.sort();
  }

  /** How many minions are tracked for `cluster`. */
  size(cluster: string): number {
    return this.clusters.get(cluster)?.size ?? 0;
  }

  snapshot(): Array<{ cluster: string; minion: string } & MinionClusterState> {
    const out: Array<{ cluster: string; minion: string } & MinionClusterState> = [];
    for (const [cluster, byMinion] of this.clusters) {
      for (const [minion, e] of byMinion) {
        out.push({
          cluster,
          minion,
          appliedGeneration: e.appliedGeneration,
          appliedDigest: e.appliedDigest,
          lastResult: e.lastResult,
          reason: e.reason,
          lastSeenAt: e.lastSeenAt,
          retryAt: e.retryAt,
        });
      }
    }
    return out.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.minion.localeCompare(b.minion));
  }
}

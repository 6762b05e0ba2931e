// What the bus tells us about minions: which ones a published generation was sent to, which of them
// applied it, which failed or never answered. Pure bookkeeping over injected time; the controller
// turns `due()` into targeted re-sends.
import { Backoff } from '../util/backoff.ts';

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
}

interface Entry extends MinionClusterState {
  backoff: Backoff;
  expectedGeneration: number | undefined;
}

export class MinionTracker {
  private readonly entries = new Map<string, Entry>(); // key: cluster \0 minion
  private readonly o: RetryOptions;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(o: RetryOptions, now: () => number, random: () => number = Math.random) {
    this.o = o;
    this.now = now;
    this.random = random;
  }

  private entry(cluster: string, minion: string): Entry {
    const key = `${cluster}\0${minion}`;
    let e = this.entries.get(key);
    if (!e) {
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
      this.entries.set(key, e);
    }
    return e;
  }

  /** A job applying `generation` was published to these minions (salt/job/<jid>/new). */
  started(cluster: string, generation: number, minions: readonly string[]): void {
    const now = this.now();
    for (const m of minions) {
      const e = this.entry(cluster, m);
      if (e.appliedGeneration !== undefined && e.appliedGeneration >= generation) continue;
      e.expectedGeneration = Math.max(e.expectedGeneration ?? 0, generation);
      e.lastResult = 'pending';
      e.retryAt = now + this.o.ackTimeoutMs;
    }
  }

  /** A minion's job return. Returns true when this answer is a success for `generation`. */
  result(cluster: string, minion: string, r: { generation: number | undefined; digest: string | undefined; ok: boolean; changed: boolean; reason: string }): boolean {
    const e = this.entry(cluster, minion);
    const now = this.now();
    e.lastSeenAt = now;
    e.reason = r.reason;
    if (r.ok) {
      if (r.generation !== undefined && (e.appliedGeneration === undefined || r.generation >= e.appliedGeneration)) {
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
    for (const [key, e] of this.entries) {
      const [c, m] = key.split('\0') as [string, string];
      if (c !== cluster || e.retryAt === undefined || e.retryAt > now) continue;
      out.push(m);
      e.retryAt = now + this.o.ackTimeoutMs + e.backoff.next();
    }
    return out.sort();
  }

  /** Earliest pending retry time across all clusters, for the controller's timer. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const e of this.entries.values()) if (e.retryAt !== undefined && (min === undefined || e.retryAt < min)) min = e.retryAt;
    return min;
  }

  /** Minions of `cluster` whose applied generation is below `generation`. */
  behind(cluster: string, generation: number | undefined): string[] {
    if (generation === undefined) return [];
    const out: string[] = [];
    for (const [key, e] of this.entries) {
      const [c, m] = key.split('\0') as [string, string];
      if (c === cluster && (e.appliedGeneration ?? 0) < generation) out.push(m);
    }
    return out.sort();
  }

  snapshot(): Array<{ cluster: string; minion: string } & MinionClusterState> {
    return [...this.entries].map(([key, e]) => {
      const [cluster, minion] = key.split('\0') as [string, string];
      return {
        cluster,
        minion,
        appliedGeneration: e.appliedGeneration,
        appliedDigest: e.appliedDigest,
        lastResult: e.lastResult,
        reason: e.reason,
        lastSeenAt: e.lastSeenAt,
        retryAt: e.retryAt,
      };
    }).sort((a, b) => a.cluster.localeCompare(b.cluster) || a.minion.localeCompare(b.minion));
  }
}

// Lease-based leader election, decision logic only (client-go tools/leaderelection semantics).
// No I/O, no clock: every method takes `now` (local ms). Expiry of someone else's lease is judged
// from the LOCAL time at which we last saw the lease record change, never from the record's own
// timestamps (the other host's clock may be wrong).

import { ConfigError } from '../errors.ts';

/** The lease content we read and write (coordination.k8s.io/v1 Lease spec). */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** RFC 3339; informative only. */
  acquireTime: string | null;
  /** RFC 3339; informative only. */
  renewTime: string | null;
  leaseTransitions: number;
}

export interface ObservedLease {
  record: LeaseRecord;
  resourceVersion: string;
}

export interface LeaderTiming {
  /** How long a non-leader waits after the last observed change before taking over. */
  leaseDurationMs: number;
  /** The leader steps down when it could not renew for this long. */
  renewDeadlineMs: number;
  /** Interval between attempts. */
  retryPeriodMs: number;
}

export const DEFAULT_TIMING: LeaderTiming = Object.freeze({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });

/** client-go's checks: leaseDuration > renewDeadline > 1.2 × retryPeriod, all positive. */
export function validateTiming(t: LeaderTiming, field = 'leaderElection'): void {
  if (!(t.retryPeriodMs > 0)) throw new ConfigError(`${field}.retryPeriod`, 'must be > 0');
  if (!(t.renewDeadlineMs > t.retryPeriodMs * 1.2)) {
    throw new ConfigError(`${field}.renewDeadline`, 'must be greater than 1.2 × retryPeriod');
  }
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) {
    throw new ConfigError(`${field}.leaseDuration`, 'must be greater than renewDeadline');
  }
  if (t.leaseDurationMs % 1000 !== 0) {
    throw new ConfigError(`${field}.leaseDuration`, 'must be whole seconds (Lease stores seconds)');
  }
}

export type Decision =
  /** No lease exists: create it with us as holder. */
  | { action: 'create'; record: LeaseRecord }
  /** Acquire (expired/empty/ours) or renew: replace with this record at that resourceVersion. */
  | { action: 'update'; record: LeaseRecord; resourceVersion: string }
  /** Someone else holds a lease that has not expired by our local observation. */
  | { action: 'wait'; holder: string; expiresAt: number };

export type Transition = 'started' | 'stopped' | null;

function microIso(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

export class LeaderDecider {
  readonly identity: string;
  readonly timing: LeaderTiming;
  /** undefined: never looked; null: the lease does not exist. */
  private observed: ObservedLease | null | undefined = undefined;
  /** Local time at which `observed.record` last changed. */
  private observedAt = 0;
  private leading = false;
  /** Local time at which our last successful write was *sent* (conservative). */
  private lastRenewAt = -Infinity;

  constructor(identity: string, timing: LeaderTiming = DEFAULT_TIMING) {
    if (!identity) throw new ConfigError('leaderElection.identity', 'must not be empty');
    validateTiming(timing);
    this.identity = identity;
    this.timing = timing;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** What we last saw (or wrote). */
  get lease(): ObservedLease | null | undefined {
    return this.observed;
  }

  /** Local time at which a leader must consider itself deposed unless it renews before. */
  get stepDownAt(): number | null {
    return this.leading ? this.lastRenewAt + this.timing.renewDeadlineMs : null;
  }

  /** Records the result of a GET (null: 404). */
  observe(lease: ObservedLease | null, now: number): void {
    if (lease === null) {
      if (this.observed !== null) this.observedAt = now;
      this.observed = null;
      return;
    }
    if (!this.observed || !sameRecord(this.observed.record, lease.record)) this.observedAt = now;
    this.observed = lease;
  }

  /** Whether the current holder (someone else) still holds the lease, judged locally. */
  heldByOther(now: number): { holder: string; expiresAt: number } | null {
    const o = this.observed;
    if (!o) return null;
    const holder = o.record.holderIdentity;
    if (!holder || holder === this.identity) return null;
    const expiresAt = this.observedAt + Math.max(0, o.record.leaseDurationSeconds) * 1000;
    return now < expiresAt ? { holder, expiresAt } : null;
  }

  /** What to do now. Call observe() first unless leading (the fast path renews from memory). */
  decide(now: number): Decision {
    const o = this.observed;
    if (o === undefined) throw new Error('decide() before observe()');
    const durationS = this.timing.leaseDurationMs / 1000;
    if (o === null) {
      return {
        action: 'create',
        record: { holderIdentity: this.identity, leaseDurationSeconds: durationS, acquireTime: microIso(now), renewTime: microIso(now), leaseTransitions: 0 },
      };
    }
    const other = this.heldByOther(now);
    if (other) return { action: 'wait', ...other };
    const ours = o.record.holderIdentity === this.identity;
    return {
      action: 'update',
      resourceVersion: o.resourceVersion,
      record: {
        holderIdentity: this.identity,
        leaseDurationSeconds: durationS,
        acquireTime: ours ? o.record.acquireTime : microIso(now),
        renewTime: microIso(now),
        leaseTransitions: ours ? o.record.leaseTransitions : o.record.leaseTransitions + 1,
      },
    };
  }

  /** A create/update succeeded. `sentAt` is the local time the request was sent. */
  succeeded(written: ObservedLease, sentAt: number, now: number): Transition {
    this.observed = written;
    this.observedAt = now;
    this.lastRenewAt = sentAt;
    if (this.leading) return null;
    this.leading = true;
    return 'started';
  }

  /** An attempt failed (error, timeout, 409). Steps down once renewDeadline has passed. */
  failed(now: number): Transition {
    if (this.leading && now - this.lastRenewAt >= this.timing.renewDeadlineMs) return this.stepDown();
    return null;
  }

  /** Checks the deadline without an attempt (a timer, or a request still hanging). */
  tick(now: number): Transition {
    return this.failed(now);
  }

  /** We saw someone else holding the lease, or we are stopping. */
  stepDown(): Transition {
    if (!this.leading) return null;
    this.leading = false;
    this.lastRenewAt = -Infinity;
    return 'stopped';
  }

  /**
   * The write that hands the lease over on shutdown (client-go release): holder cleared, duration
   * 1 s, so the other candidate takes over at its next attempt. null if the lease is not ours.
   * Call after stepDown(): nothing may be published once this is sent.
   */
  release(now: number): Decision | null {
    const o = this.observed;
    if (!o || o.record.holderIdentity !== this.identity) return null;
    return {
      action: 'update',
      resourceVersion: o.resourceVersion,
      record: {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: microIso(now),
        renewTime: microIso(now),
        leaseTransitions: o.record.leaseTransitions,
      },
    };
  }
}

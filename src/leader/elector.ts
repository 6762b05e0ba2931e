// The election loop: drives LeaderDecider with a LeaseLock and an injected Clock.
// Non-leaders try every retryPeriod (jittered ×[1, 2.2) like client-go's JitterFactor 1.2); the
// leader renews every retryPeriod from memory (no GET unless the last write failed) and steps down
// when it could not renew for renewDeadline — by timer, so a hanging request cannot keep it leader.
// On stop: onStoppedLeading first, then release (holder cleared) so the peer takes over quickly.

import type { Logger } from 'pino';
import type { Clock } from '../seams.ts';
import { systemClock } from '../util/clock.ts';
import { KsbError } from '../errors.ts';
import { LeaseConflictError } from '../kube/errors.ts';
import { DEFAULT_TIMING, LeaderDecider, type Decision, type LeaderTiming, type ObservedLease, type Transition } from './decide.ts';
import type { LeaseLock } from './leaseLock.ts';
import { withDeadline } from '../util/deadline.ts';

export interface LeaderElectorOptions {
  lock: LeaseLock;
  /** Unique per bridge instance, e.g. hostname + pid. */
  identity: string;
  timing?: Partial<LeaderTiming>;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** Optional: every observed holder change (for logs/status). */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

export interface LeaderElectorStats {
  leading: boolean;
  holder: string;
  attempts: number;
  failures: number;
  conflicts: number;
  transitions: number;
}

export class LeaderElector {
  private readonly d: LeaderDecider;
  private readonly lock: LeaseLock;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly cb: Pick<LeaderElectorOptions, 'onStartedLeading' | 'onStoppedLeading' | 'onNewLeader'>;
  private running = false;
  private timer: { cancel(): void } | null = null;
  private deadlineTimer: { cancel(): void } | null = null;
  private inFlight: Promise<void> | null = null;
  private needGet = true;
  private lastHolder = '';
  private readonly s = { attempts: 0, failures: 0, conflicts: 0, transitions: 0 };

  constructor(options: LeaderElectorOptions) {
    this.d = new LeaderDecider(options.identity, { ...DEFAULT_TIMING, ...options.timing });
    this.lock = options.lock;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger?.child({ component: 'leader', lease: options.lock.describe() });
    this.cb = options;
  }

  get isLeader(): boolean {
    return this.d.isLeader;
  }

  stats(): LeaderElectorStats {
    return { leading: this.d.isLeader, holder: this.lastHolder, ...this.s };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops trying; if leading, calls onStoppedLeading and then releases the lease. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
    this.deadlineTimer?.cancel();
    this.deadlineTimer = null;
    this.emit(this.d.stepDown()); // stop publishing before anything else
    // Let a write in flight finish: it may have made us the holder, and then we must release.
    if (this.inFlight) await this.bounded(this.inFlight).catch(() => undefined);
    const rel = this.d.release(this.clock.now());
    if (!rel || rel.action !== 'update') return;
    try {
      await this.bounded(this.lock.update(rel.record, rel.resourceVersion));
      this.log?.info('released the lease');
    } catch (err) {
      this.log?.warn({ err }, 'could not release the lease; the peer takes over when it expires');
    }
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.inFlight = this.attempt().finally(() => {
        this.inFlight = null;
        const p = this.d.timing.retryPeriodMs;
        this.schedule(this.d.isLeader ? p : p + p * 1.2 * this.random());
      });
    }, ms);
  }

  private async attempt(): Promise<void> {
    const sentAt = this.clock.now();
    this.s.attempts++;
    try {
      if (this.needGet || !this.d.isLeader) {
        const lease = await this.bounded(this.lock.get());
        if (!this.running) return;
        this.d.observe(lease, this.clock.now());
        this.noteHolder(lease?.record.holderIdentity ?? '');
      }
      const decision: Decision = this.d.decide(this.clock.now());
      if (decision.action === 'wait') {
        this.needGet = true;
        if (this.d.isLeader) this.log?.warn({ leader: { holder: decision.holder } }, 'lease taken over by another holder');
        this.emit(this.d.stepDown());
        return;
      }
      const written: ObservedLease = await this.bounded(
        decision.action === 'create' ? this.lock.create(decision.record) : this.lock.update(decision.record, decision.resourceVersion),
      );
      const t = this.d.succeeded(written, sentAt, this.clock.now());
      if (!this.running) {
        // stop() ran meanwhile: never announce; stop() releases what we just wrote.
        if (t === 'started') this.d.stepDown();
        return;
      }
      this.needGet = false;
      this.noteHolder(written.record.holderIdentity);
      this.emit(t);
      this.armDeadline();
    } catch (err) {
      this.needGet = true;
      this.s.failures++;
      if (err instanceof LeaseConflictError) this.s.conflicts++;
      const level = err instanceof LeaseConflictError || !this.d.isLeader ? 'debug' : 'warn';
      this.log?.[level]({ err }, 'lease attempt failed');
      this.emit(this.d.failed(this.clock.now()));
    }
  }

  /** A timer at the step-down deadline, so a hanging request cannot keep us leader. */
  private armDeadline(): void {
    this.deadlineTimer?.cancel();
    const at = this.d.stepDownAt;
    if (at === null) return;
    this.deadlineTimer = this.clock.setTimeout(
      () => {
        this.deadlineTimer = null;
        this.emit(this.d.tick(this.clock.now()));
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  /** Requests get renewDeadline at most; a late answer is ignored by the caller's state checks. */
  private bounded<T>(p: Promise<T>): Promise<T> {
    const ms = this.d.timing.renewDeadlineMs;
    return withDeadline(p, ms, () => new KsbError('KSB_LEADER_TIMEOUT', `lease request: no answer within ${ms} ms`, { retryable: true }), this.clock);
  }

  private noteHolder(holder: string): void {
    if (holder === this.lastHolder) return;
    this.lastHolder = holder;
    this.log?.info({ leader: { holder } }, 'lease holder changed');
    this.safe(() => this.cb.onNewLeader?.(holder));
  }

  private emit(t: Transition): void {
    if (t === 'started') {
      this.s.transitions++;
      this.log?.info('started leading');
      this.safe(this.cb.onStartedLeading);
    } else if (t === 'stopped') {
      this.s.transitions++;
      this.deadlineTimer?.cancel();
      this.deadlineTimer = null;
      this.log?.warn('stopped leading');
      this.safe(this.cb.onStoppedLeading);
    }
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log?.error({ err }, 'leader callback threw');
    }
  }
}

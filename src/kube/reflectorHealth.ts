// The Reflector's failure bookkeeping: exponential backoff with jitter before the next try (reset
// after a healthy period), and "unreachable": no successful contact for longer than a grace period
// since the first of a run of failures, reported once per outage.

import type { Clock } from '../seams.ts';
import { Backoff } from '../util/backoff.ts';
import { KubeUnreachableError, type KubeError } from './errors.ts';

export interface ReflectorHealthOptions {
  clock: Clock;
  random: () => number;
  backoff: { initialMs: number; maxMs: number; resetAfterMs: number };
  unreachableAfterMs: number;
  /** The grace period passed without a success since the first failure `sinceMs` ago. */
  onUnreachable(err: KubeError, sinceMs: number): void;
}

export class ReflectorHealth {
  private readonly o: ReflectorHealthOptions;
  private readonly backoff: Backoff;
  private failingSince: number | null = null;
  private reportedUnreachable = false;
  private unreachableTimer: { cancel(): void } | null = null;
  private stopped = false;
  private last: KubeError | null = null;

  constructor(options: ReflectorHealthOptions) {
    this.o = options;
    this.backoff = new Backoff({ ...options.backoff, random: options.random, now: () => options.clock.now() });
  }

  get lastError(): KubeError | null {
    return this.last;
  }

  /** Failures counted by the backoff (for logs). */
  get failures(): number {
    return this.backoff.failures;
  }

  /** A successful contact: ends the current run of failures. */
  healthy(): void {
    this.failingSince = null;
    this.reportedUnreachable = false;
    this.cancelUnreachable();
  }

  /** Records a failure and returns how long to wait before the next try. */
  failed(err: KubeError): number {
    this.last = err;
    if (this.failingSince === null) {
      this.failingSince = this.o.clock.now();
      this.cancelUnreachable();
      this.unreachableTimer = this.o.clock.setTimeout(() => this.checkUnreachable(), this.o.unreachableAfterMs);
    }
    return this.backoff.next();
  }

  stop(): void {
    this.stopped = true;
    this.cancelUnreachable();
  }

  private checkUnreachable(): void {
    this.unreachableTimer = null;
    if (this.failingSince === null || this.reportedUnreachable || this.stopped) return;
    this.reportedUnreachable = true;
    this.o.onUnreachable(this.last ?? new KubeUnreachableError('unreachable'), this.o.clock.now() - this.failingSince);
  }

  private cancelUnreachable(): void {
    this.unreachableTimer?.cancel();
    this.unreachableTimer = null;
  }
}

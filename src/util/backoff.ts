// Exponential backoff with full jitter, reset after a healthy period (client-go's
// wait.Backoff + the reflector's "reset after healthy" behaviour). Randomness and time are
// injected so tests never sleep (CONTRIBUTING.md habit 7).

export interface BackoffOptions {
  /** First delay in ms. */
  initialMs: number;
  /** Upper bound of a delay in ms. */
  maxMs: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Fraction of the delay that is randomised, 0..1 (default 0.5: delay in [d/2, d]). */
  jitter?: number;
  /** After this long without a failure the next failure starts again from initialMs. */
  resetAfterMs?: number;
  random?: () => number;
  now?: () => number;
}

export class Backoff {
  private attempt = 0;
  private lastFailureAt = -Infinity;
  private readonly o: Required<BackoffOptions>;

  constructor(options: BackoffOptions) {
    this.o = {
      factor: 2,
      jitter: 0.5,
      resetAfterMs: options.maxMs * 2,
      random: Math.random,
      now: Date.now,
      ...options,
    };
  }

  /** Records a failure and returns how long to wait before the next try. */
  next(): number {
    const now = this.o.now();
    if (now - this.lastFailureAt >= this.o.resetAfterMs) this.attempt = 0;
    this.lastFailureAt = now;
    const base = Math.min(this.o.maxMs, this.o.initialMs * this.o.factor ** this.attempt);
    this.attempt += 1;
    const spread = base * this.o.jitter;
    return Math.round(base - spread + spread * this.o.random());
  }

  /** Forget past failures (call after a success that proves health). */
  reset(): void {
    this.attempt = 0;
    this.lastFailureAt = -Infinity;
  }

  get failures(): number {
    return this.attempt;
  }
}

// Bounded retries with backoff + jitter for retryable errors only.

import type { Logger } from 'pino';
import { KsbError } from '../errors.ts';
import type { Backoff } from '../util/backoff.ts';

export interface RetryOptions {
  /** Total tries, >= 1. */
  maxAttempts: number;
  backoff: Backoff;
  sleep: (ms: number) => Promise<void>;
  logger: Logger;
  /** What is being tried, for the log line ('event.send', 'login'). */
  what: string;
}

export async function withRetries<T>(op: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await op(attempt);
      o.backoff.reset();
      return result;
    } catch (err) {
      const retryable = err instanceof KsbError && err.retryable;
      if (!retryable || attempt >= o.maxAttempts) throw err;
      const delayMs = o.backoff.next();
      o.logger.warn({ err, salt: { op: o.what, attempt, maxAttempts: o.maxAttempts, delayMs } }, 'salt-api call failed, retrying');
      await o.sleep(delayMs);
    }
  }
}

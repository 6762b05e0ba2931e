import type { Clock } from '../seams.ts';
import { systemClock } from './clock.ts';

/**
 * Settles like `p`, or rejects with `timeout()` if `p` has not settled after `ms` on `clock`.
 * The timer is cancelled either way; `p` itself is not cancelled (pass an AbortController's abort
 * inside `timeout` for that).
 */
export function withDeadline<T>(p: Promise<T>, ms: number, timeout: () => Error, clock: Clock = systemClock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = clock.setTimeout(() => reject(timeout()), ms);
    p.finally(() => t.cancel()).then(resolve, reject);
  });
}

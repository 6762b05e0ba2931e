// One connection to the master event bus (SSE or websocket); SaltEventStream reconnects.

import type { BusEvent } from '../seams.ts';
import type { SaltError } from './errors.ts';

export interface BusConnection {
  /** Resolves once events can flow; rejects with a SaltError when the connection could not be made. */
  readonly opened: Promise<void>;
  /** Resolves when an opened connection ended: with the reason, or undefined for a clean end/close(). */
  readonly closed: Promise<SaltError | undefined>;
  close(): void;
}

export interface ConnectionHandlers {
  onEvent(event: BusEvent): void;
  /** The server's SSE `retry:` hint (salt-api sends 400). */
  onRetryHint?(ms: number): void;
}

/** Reads `{"tag": ..., "data": {...}}` as salt-api sends it on /events and /all_events. */
export function parseBusMessage(text: string): BusEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const { tag, data } = v as { tag?: unknown; data?: unknown };
  if (typeof tag !== 'string' || data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  return { tag, data: data as Record<string, unknown> };
}

/** A promise with its resolvers exposed (Promise.withResolvers is Node 22+, typed here for es2023). */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

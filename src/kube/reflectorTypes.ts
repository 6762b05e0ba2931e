// The Reflector's public shapes (handler, options, stats, phase) and its option defaults.

import type { Logger } from 'pino';
import type { Clock } from '../seams.ts';
import type { KubeError } from './errors.ts';
import type { KubeNode, NodeApi } from './nodeApi.ts';

/**
 * Items per list page unless configured (clusters[].watch.listPageSize). Not client-go's 500: the
 * apiserver serves 5,000 realistic Nodes as ten pages of 500 in about twice the time of one page
 * (each page is read and parsed as it streams in, so a large page costs the bridge no memory).
 */
export const DEFAULT_LIST_PAGE_SIZE = 5000;

export interface ReflectorHandler {
  /** A full list completed: these are all objects at `resourceVersion`. */
  replace(items: KubeNode[], resourceVersion: string): void;
  /** One watch event. */
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', node: KubeNode): void;
  /** No successful contact for `unreachableAfterMs` since the first of a run of failures. */
  unreachable(err: KubeError): void;
}

export interface ReflectorOptions {
  api: NodeApi;
  handler: ReflectorHandler;
  clock: Clock;
  random?: () => number;
  logger?: Logger;
  labelSelector?: string;
  /** Items per list page (default DEFAULT_LIST_PAGE_SIZE). */
  pageSize?: number;
  /** Server-side watch timeout; each watch gets a value in [t, 2t) like client-go (default 300). */
  watchTimeoutSeconds?: number;
  /** Restart a watch silent for this long (default 150 s; the apiserver bookmarks about every minute). */
  watchdogMs?: number;
  /** Full relist period (default 30 min; 0 disables). */
  relistIntervalMs?: number;
  /** Abort a list page or a watch connect after this long (default 60 s). */
  requestTimeoutMs?: number;
  /** Grace before reporting the cluster unreachable (default 60 s). */
  unreachableAfterMs?: number;
  backoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
}

export interface ReflectorStats {
  /** Full lists completed (initial, after 410, periodic, after an outage). */
  lists: number;
  listPages: number;
  /** Periodic relists started. */
  periodicRelists: number;
  /** 410 Gone seen (list continue, watch status or ERROR event). */
  gone: number;
  watchStarts: number;
  /** Watches that ended normally (server timeout) and were resumed. */
  watchResumes: number;
  /** Watches aborted by the watchdog. */
  watchdogRestarts: number;
  errors: number;
  events: number;
  bookmarks: number;
  /** Last resourceVersion seen. */
  resourceVersion: string;
  lastError: { code: string; message: string } | null;
}

export type ReflectorPhase = 'idle' | 'listing' | 'connecting' | 'watching' | 'waiting' | 'stopped';

/** Options with every default filled in (timing and paging only; the collaborators stay separate). */
export interface ResolvedReflectorOptions {
  labelSelector: string | undefined;
  pageSize: number;
  watchTimeoutSeconds: number;
  watchdogMs: number;
  relistIntervalMs: number;
  requestTimeoutMs: number;
  unreachableAfterMs: number;
  backoff: { initialMs: number; maxMs: number; resetAfterMs: number };
}

export function resolveReflectorOptions(options: ReflectorOptions): ResolvedReflectorOptions {
  const maxMs = options.backoff?.maxMs ?? 30_000;
  return {
    labelSelector: options.labelSelector || undefined,
    pageSize: options.pageSize ?? DEFAULT_LIST_PAGE_SIZE,
    watchTimeoutSeconds: options.watchTimeoutSeconds ?? 300,
    watchdogMs: options.watchdogMs ?? 150_000,
    relistIntervalMs: options.relistIntervalMs ?? 30 * 60_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    unreachableAfterMs: options.unreachableAfterMs ?? 60_000,
    backoff: {
      initialMs: options.backoff?.initialMs ?? 800,
      maxMs,
      resetAfterMs: options.backoff?.resetAfterMs ?? 2 * maxMs,
    },
  };
}

/** Counters start at zero; `resourceVersion` and `lastError` are filled in by `stats()`. */
export function emptyReflectorStats(): ReflectorStats {
  return {
    lists: 0,
    listPages: 0,
    periodicRelists: 0,
    gone: 0,
    watchStarts: 0,
    watchResumes: 0,
    watchdogRestarts: 0,
    errors: 0,
    events: 0,
    bookmarks: 0,
    resourceVersion: '',
    lastError: null,
  };
}

// List + watch with client-go reflector semantics, on the small NodeApi seam:
// - paginated list (limit + continue, consistent snapshot), then watch from the list's
//   resourceVersion with bookmarks and a server-side timeout;
// - a watch that ends normally resumes from the last seen resourceVersion (bookmarks included);
//   one that ends within a second without events counts as an error ("very short watch");
// - 410 Gone (HTTP status or ERROR event) → relist;
// - errors → exponential backoff with jitter (reset after a healthy period);
// - a watchdog restarts a watch that has been silent (no event, no bookmark) for too long;
// - a periodic full relist;
// - "unreachable": no successful contact for longer than a grace period after a failure.
// Time and randomness are injected (Clock, random) so tests drive all of it without sleeping.

import type { Logger } from 'pino';
import type { Clock } from '../seams.ts';
import { Backoff } from '../util/backoff.ts';
import { KubeGoneError, KubeUnreachableError, errorForStatus, isGoneStatus, translateKubeError, type KubeError, type KubeStatus } from './errors.ts';
import type { KubeNode, NodeApi, WatchEvent, WatchHandle } from './nodeApi.ts';
import { withDeadline } from '../util/deadline.ts';

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
  /** Items per list page (default 500). */
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

const SHORT_WATCH_MS = 1000;

export class Reflector {
  private readonly api: NodeApi;
  private readonly handler: ReflectorHandler;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly o: Required<Omit<ReflectorOptions, 'api' | 'handler' | 'clock' | 'random' | 'logger' | 'backoff' | 'labelSelector'>> & {
    labelSelector: string | undefined;
  };
  private readonly backoff: Backoff;

  /** Incremented for every list/watch attempt; callbacks of older attempts are ignored. */
  private gen = 0;
  private phase: ReflectorPhase = 'idle';
  private rv: string | null = null;
  private watch: WatchHandle | null = null;
  private watchStartedAt = 0;
  private watchEvents = 0;
  private consecutiveGone = 0;
  private failingSince: number | null = null;
  private reportedUnreachable = false;
  private lastError: KubeError | null = null;

  private retryTimer: { cancel(): void } | null = null;
  private watchdogTimer: { cancel(): void } | null = null;
  private relistTimer: { cancel(): void } | null = null;
  private unreachableTimer: { cancel(): void } | null = null;
  private listAbort: AbortController | null = null;

  private readonly s: ReflectorStats = {
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

  constructor(options: ReflectorOptions) {
    this.api = options.api;
    this.handler = options.handler;
    this.clock = options.clock;
    this.random = options.random ?? Math.random;
    this.log = options.logger;
    this.o = {
      labelSelector: options.labelSelector || undefined,
      pageSize: options.pageSize ?? 500,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? 300,
      watchdogMs: options.watchdogMs ?? 150_000,
      relistIntervalMs: options.relistIntervalMs ?? 30 * 60_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
      unreachableAfterMs: options.unreachableAfterMs ?? 60_000,
    };
    const maxMs = options.backoff?.maxMs ?? 30_000;
    this.backoff = new Backoff({
      initialMs: options.backoff?.initialMs ?? 800,
      maxMs,
      resetAfterMs: options.backoff?.resetAfterMs ?? 2 * maxMs,
      random: this.random,
      now: () => this.clock.now(),
    });
  }

  start(): void {
    if (this.phase !== 'idle') return;
    this.listAndWatch();
  }

  stop(): void {
    this.phase = 'stopped';
    this.gen++;
    this.cancelTimers();
    this.abortWatch();
    this.listAbort?.abort();
    this.listAbort = null;
  }

  stats(): Readonly<ReflectorStats> {
    return {
      ...this.s,
      resourceVersion: this.rv ?? '',
      lastError: this.lastError ? { code: this.lastError.code, message: this.lastError.message } : null,
    };
  }

  /** Current phase, for /status. */
  state(): ReflectorPhase {
    return this.phase;
  }

  // ---- list ----

  private listAndWatch(): void {
    if (this.phase === 'stopped') return;
    const g = ++this.gen;
    this.abortWatch();
    this.cancelTimer('retryTimer');
    this.cancelTimer('relistTimer');
    this.phase = 'listing';
    this.listAll(g).then(
      (res) => {
        if (g !== this.gen) return;
        this.listAbort = null;
        this.s.lists++;
        this.rv = res.resourceVersion;
        this.healthy();
        this.handler.replace(res.items, res.resourceVersion);
        this.log?.debug({ kube: { nodes: res.items.length, resourceVersion: res.resourceVersion } }, 'listed nodes');
        this.armRelist();
        this.startWatch(g);
      },
      (err: unknown) => {
        if (g !== this.gen) return;
        this.listAbort = null;
        const e = translateKubeError('list nodes', err);
        if (e instanceof KubeGoneError) {
          // An expired continue token: restart the list from scratch.
          this.s.gone++;
          this.rv = null;
        }
        this.fail(e);
      },
    );
  }

  private async listAll(g: number): Promise<{ items: KubeNode[]; resourceVersion: string }> {
    const items: KubeNode[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const ac = new AbortController();
      this.listAbort = ac;
      const page = await this.withTimeout(
        this.api.list({ labelSelector: this.o.labelSelector, limit: this.o.pageSize, continue: cont, signal: ac.signal }),
        ac,
        'list nodes',
      );
      if (g !== this.gen) throw new KubeUnreachableError('list superseded');
      this.s.listPages++;
      items.push(...page.items);
      rv = page.resourceVersion;
      cont = page.continue || undefined;
    } while (cont);
    if (!rv) throw errorForStatus('list nodes: response without resourceVersion', 500);
    return { items, resourceVersion: rv };
  }

  private withTimeout<T>(p: Promise<T>, ac: AbortController, what: string): Promise<T> {
    return withDeadline(p, this.o.requestTimeoutMs, () => {
      ac.abort();
      return new KubeUnreachableError(`${what}: no answer within ${this.o.requestTimeoutMs} ms`);
    }, this.clock);
  }

  // ---- watch ----

  private startWatch(g: number): void {
    if (g !== this.gen || this.phase === 'stopped' || this.rv === null) return;
    this.phase = 'connecting';
    this.s.watchStarts++;
    this.watchStartedAt = this.clock.now();
    this.watchEvents = 0;
    const t = this.o.watchTimeoutSeconds;
    const timeoutSeconds = Math.floor(t * (1 + this.random()));
    // While connecting, the watchdog is the connect timeout.
    this.armWatchdog(g, Math.min(this.o.requestTimeoutMs, this.o.watchdogMs));
    this.api
      .watch(
        { labelSelector: this.o.labelSelector, resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds },
        (ev) => this.onEvent(g, ev),
        (err) => this.onWatchDone(g, err),
      )
      .then(
        (handle) => {
          if (g !== this.gen) {
            handle.abort();
            return;
          }
          this.watch = handle;
          if (this.phase === 'connecting') this.phase = 'watching';
          this.healthy();
          this.armWatchdog(g, this.o.watchdogMs);
        },
        (err: unknown) => {
          if (g !== this.gen) return;
          this.cancelTimer('watchdogTimer');
          const e = translateKubeError('watch nodes', err);
          if (e instanceof KubeGoneError) return this.gone(g, e);
          this.fail(e);
        },
      );
  }

  private onEvent(g: number, ev: WatchEvent): void {
    if (g !== this.gen) return;
    if (this.phase === 'connecting') {
      this.phase = 'watching';
      this.healthy();
    }
    this.armWatchdog(g, this.o.watchdogMs);
    if (ev.type === 'ERROR') {
      const status = (ev.object ?? {}) as KubeStatus;
      if (isGoneStatus(status)) return this.gone(g, new KubeGoneError(`watch nodes: ${status.reason ?? 'Expired'}: ${status.message ?? ''}`));
      this.abortWatch();
      return this.fail(errorForStatus('watch nodes: ERROR event', typeof status.code === 'number' ? status.code : 500, status));
    }
    const node = ev.object as KubeNode;
    const rv = node?.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      this.s.bookmarks++;
      this.consecutiveGone = 0;
      if (rv) this.rv = rv;
      return;
    }
    this.watchEvents++;
    this.consecutiveGone = 0;
    this.s.events++;
    if (rv) this.rv = rv;
    this.handler.apply(ev.type, node);
  }

  private onWatchDone(g: number, err: unknown): void {
    if (g !== this.gen) return;
    this.watch = null;
    this.cancelTimer('watchdogTimer');
    if (err) {
      const e = translateKubeError('watch nodes', err);
      if (e instanceof KubeGoneError) return this.gone(g, e);
      return this.fail(e);
    }
    const lasted = this.clock.now() - this.watchStartedAt;
    if (lasted < SHORT_WATCH_MS && this.watchEvents === 0) {
      return this.fail(new KubeUnreachableError(`watch nodes: very short watch (${lasted} ms, no events)`));
    }
    // Normal end (server timeout): resume from the last resourceVersion, bookmarks included.
    this.s.watchResumes++;
    this.startWatch(++this.gen);
  }

  private gone(g: number, err: KubeGoneError): void {
    if (g !== this.gen) return;
    this.s.gone++;
    this.consecutiveGone++;
    this.abortWatch();
    this.rv = null;
    this.log?.info({ kube: { reason: err.message } }, 'resourceVersion expired, relisting');
    // A fresh list's resourceVersion should never be gone: if it is, back off instead of spinning.
    if (this.consecutiveGone > 1) return this.fail(err);
    this.listAndWatch();
  }

  private armWatchdog(g: number, ms: number): void {
    this.cancelTimer('watchdogTimer');
    this.watchdogTimer = this.clock.setTimeout(() => {
      this.watchdogTimer = null;
      if (g !== this.gen) return;
      const connecting = this.phase === 'connecting';
      this.s.watchdogRestarts++;
      this.abortWatch();
      this.fail(new KubeUnreachableError(connecting ? `watch nodes: no answer within ${ms} ms` : `watch nodes: silent for ${ms} ms`));
    }, ms);
  }

  private abortWatch(): void {
    this.cancelTimer('watchdogTimer');
    const w = this.watch;
    this.watch = null;
    w?.abort();
  }

  // ---- periodic relist ----

  private armRelist(): void {
    this.cancelTimer('relistTimer');
    if (!(this.o.relistIntervalMs > 0)) return;
    this.relistTimer = this.clock.setTimeout(() => {
      this.relistTimer = null;
      if (this.phase === 'listing' || this.phase === 'stopped') return; // that list re-arms the timer
      this.s.periodicRelists++;
      if (this.phase === 'waiting') {
        this.rv = null; // the pending retry lists instead of resuming the watch
        return;
      }
      this.listAndWatch();
    }, this.o.relistIntervalMs);
  }

  // ---- health ----

  private healthy(): void {
    this.failingSince = null;
    this.reportedUnreachable = false;
    this.cancelTimer('unreachableTimer');
  }

  private fail(err: KubeError): void {
    if (this.phase === 'stopped') return;
    const g = ++this.gen; // supersede whatever was running
    this.abortWatch();
    this.s.errors++;
    this.lastError = err;
    const now = this.clock.now();
    if (this.failingSince === null) {
      this.failingSince = now;
      this.cancelTimer('unreachableTimer');
      this.unreachableTimer = this.clock.setTimeout(() => this.checkUnreachable(), this.o.unreachableAfterMs);
    }
    const delay = this.backoff.next();
    this.log?.warn({ err, kube: { retryInMs: delay, failures: this.backoff.failures } }, 'kubernetes list/watch failed');
    this.phase = 'waiting';
    this.cancelTimer('retryTimer');
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      if (g !== this.gen) return;
      if (this.rv === null) this.listAndWatch();
      else this.startWatch(g);
    }, delay);
  }

  private checkUnreachable(): void {
    this.unreachableTimer = null;
    if (this.failingSince === null || this.reportedUnreachable || this.phase === 'stopped') return;
    this.reportedUnreachable = true;
    // After an outage, do not trust a resumed watch to describe the world: relist before syncing again.
    this.rv = null;
    const err = this.lastError ?? new KubeUnreachableError('unreachable');
    this.log?.error({ err, kube: { sinceMs: this.clock.now() - this.failingSince } }, 'kubernetes unreachable');
    this.handler.unreachable(err);
  }

  private cancelTimers(): void {
    for (const k of ['retryTimer', 'watchdogTimer', 'relistTimer', 'unreachableTimer'] as const) this.cancelTimer(k);
  }

  private cancelTimer(k: 'retryTimer' | 'watchdogTimer' | 'relistTimer' | 'unreachableTimer'): void {
    this[k]?.cancel();
    this[k] = null;
  }
}

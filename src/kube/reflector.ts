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
//
// This class only sequences the steps: reflectorList.ts (the list), reflectorWatch.ts (one watch
// and its watchdog), reflectorHealth.ts (backoff and unreachable). `gen` is incremented for every
// list/watch attempt; callbacks of older attempts are ignored.

import type { Logger } from 'pino';
import type { Clock } from '../seams.ts';
import { KubeGoneError, translateKubeError, type KubeError } from './errors.ts';
import type { NodeApi } from './nodeApi.ts';
import { ReflectorHealth } from './reflectorHealth.ts';
import { listAll } from './reflectorList.ts';
import {
  emptyReflectorStats,
  resolveReflectorOptions,
  type ReflectorHandler,
  type ReflectorOptions,
  type ReflectorPhase,
  type ReflectorStats,
  type ResolvedReflectorOptions,
} from './reflectorTypes.ts';
import { WatchSession, type WatchListener } from './reflectorWatch.ts';

export type { ReflectorHandler, ReflectorOptions, ReflectorPhase, ReflectorStats } from './reflectorTypes.ts';

export class Reflector {
  private readonly api: NodeApi;
  private readonly handler: ReflectorHandler;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly o: ResolvedReflectorOptions;
  private readonly health: ReflectorHealth;

  private gen = 0;
  private phase: ReflectorPhase = 'idle';
  private rv: string | null = null;
  private watch: WatchSession | null = null;
  private consecutiveGone = 0;
  private retryTimer: { cancel(): void } | null = null;
  private relistTimer: { cancel(): void } | null = null;
  /** The list's page requests in flight (the page being read and the one requested ahead). */
  private readonly listAborts = new Set<AbortController>();
  private readonly s: ReflectorStats = emptyReflectorStats();

  constructor(options: ReflectorOptions) {
    this.api = options.api;
    this.handler = options.handler;
    this.clock = options.clock;
    this.random = options.random ?? Math.random;
    this.log = options.logger;
    this.o = resolveReflectorOptions(options);
    this.health = new ReflectorHealth({
      clock: this.clock,
      random: this.random,
      backoff: this.o.backoff,
      unreachableAfterMs: this.o.unreachableAfterMs,
      onUnreachable: (err, sinceMs) => this.unreachable(err, sinceMs),
    });
  }

  start(): void {
    if (this.phase !== 'idle') return;
    this.listAndWatch();
  }

  stop(): void {
    this.phase = 'stopped';
    this.gen++;
    this.cancelTimer('retryTimer');
    this.cancelTimer('relistTimer');
    this.health.stop();
    this.abortWatch();
    this.abortList();
  }

  stats(): Readonly<ReflectorStats> {
    const lastError = this.health.lastError;
    return {
      ...this.s,
      resourceVersion: this.rv ?? '',
      lastError: lastError ? { code: lastError.code, message: lastError.message } : null,
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
    this.abortList();
    this.cancelTimer('retryTimer');
    this.cancelTimer('relistTimer');
    this.phase = 'listing';
    listAll({
      api: this.api,
      clock: this.clock,
      labelSelector: this.o.labelSelector,
      pageSize: this.o.pageSize,
      requestTimeoutMs: this.o.requestTimeoutMs,
      isCurrent: () => g === this.gen,
      onRequest: (ac) => {
        if (g === this.gen) this.listAborts.add(ac);
        else ac.abort();
      },
      onPage: () => {
        this.s.listPages++;
      },
    }).then(
      (res) => {
        if (g !== this.gen) return;
        this.listAborts.clear();
        this.s.lists++;
        this.rv = res.resourceVersion;
        this.health.healthy();
        this.handler.replace(res.items, res.resourceVersion);
        this.log?.debug({ kube: { nodes: res.items.length, resourceVersion: res.resourceVersion } }, 'listed nodes');
        this.armRelist();
        this.startWatch(g);
      },
      (err: unknown) => {
        if (g !== this.gen) return;
        this.abortList();
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

  // ---- watch ----

  private startWatch(g: number): void {
    if (g !== this.gen || this.phase === 'stopped' || this.rv === null) return;
    this.phase = 'connecting';
    this.s.watchStarts++;
    const o = this.o;
    this.watch = new WatchSession(
      {
        api: this.api,
        clock: this.clock,
        random: this.random,
        labelSelector: o.labelSelector,
        resourceVersion: this.rv,
        watchTimeoutSeconds: o.watchTimeoutSeconds,
        watchdogMs: o.watchdogMs,
        requestTimeoutMs: o.requestTimeoutMs,
        isCurrent: () => g === this.gen,
      },
      this.onWatch,
    );
    this.watch.start();
  }

  /** What the current watch reports (a WatchSession calls these only while it is current). */
  private readonly onWatch: WatchListener = {
    connected: () => {
      if (this.phase === 'connecting') this.phase = 'watching';
      this.health.healthy();
    },
    bookmark: (rv) => {
      this.s.bookmarks++;
      this.consecutiveGone = 0;
      if (rv) this.rv = rv;
    },
    event: (type, node, rv) => {
      this.consecutiveGone = 0;
      this.s.events++;
      if (rv) this.rv = rv;
      this.handler.apply(type, node);
    },
    gone: (err) => this.gone(err),
    failed: (err) => {
      this.abortWatch();
      this.fail(err);
    },
    stalled: (err) => {
      this.s.watchdogRestarts++;
      this.abortWatch();
      this.fail(err);
    },
    ended: () => {
      this.s.watchResumes++;
      this.startWatch(++this.gen);
    },
  };

  private gone(err: KubeGoneError): void {
    this.s.gone++;
    this.consecutiveGone++;
    this.abortWatch();
    this.rv = null;
    this.log?.info({ kube: { reason: err.message } }, 'resourceVersion expired, relisting');
    // A fresh list's resourceVersion should never be gone: if it is, back off instead of spinning.
    if (this.consecutiveGone > 1) return this.fail(err);
    this.listAndWatch();
  }

  private abortList(): void {
    for (const ac of this.listAborts) ac.abort();
    this.listAborts.clear();
  }

  private abortWatch(): void {
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

  // ---- failures ----

  private fail(err: KubeError): void {
    if (this.phase === 'stopped') return;
    const g = ++this.gen; // supersede whatever was running
    this.abortWatch();
    this.s.errors++;
    const delay = this.health.failed(err);
    this.log?.warn({ err, kube: { retryInMs: delay, failures: this.health.failures } }, 'kubernetes list/watch failed');
    this.phase = 'waiting';
    this.cancelTimer('retryTimer');
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      if (g !== this.gen) return;
      if (this.rv === null) this.listAndWatch();
      else this.startWatch(g);
    }, delay);
  }

  private unreachable(err: KubeError, sinceMs: number): void {
    // After an outage, do not trust a resumed watch to describe the world: relist before syncing again.
    this.rv = null;
    this.log?.error({ err, kube: { sinceMs } }, 'kubernetes unreachable');
    this.handler.unreachable(err);
  }

  private cancelTimer(k: 'retryTimer' | 'relistTimer'): void {
    this[k]?.cancel();
    this[k] = null;
  }
}

// The Reflector's watch step: one watch from a resourceVersion, with bookmarks, a server-side
// timeout in [t, 2t) like client-go, and a watchdog (the connect timeout while connecting, then a
// silence limit: no event, no bookmark). It classifies what happens and reports it to a listener;
// the Reflector decides what comes next (resume, relist, back off).

import type { Clock } from '../seams.ts';
import { KubeGoneError, KubeUnreachableError, errorForStatus, isGoneStatus, translateKubeError, type KubeError, type KubeStatus } from './errors.ts';
import { slimNode, type KubeNode, type NodeApi, type WatchEvent, type WatchHandle } from './nodeApi.ts';

/** A watch that ends normally this soon without events counts as an error ("very short watch"). */
const SHORT_WATCH_MS = 1000;

export interface WatchListener {
  /** The watch answered: its stream opened, or a first event arrived while connecting. */
  connected(): void;
  bookmark(resourceVersion: string | undefined): void;
  event(type: 'ADDED' | 'MODIFIED' | 'DELETED', node: KubeNode, resourceVersion: string | undefined): void;
  /** 410 Gone (HTTP status or ERROR event): the resourceVersion has expired. */
  gone(err: KubeGoneError): void;
  /** Any other failure, a very short watch included. */
  failed(err: KubeError): void;
  /** The watchdog fired: no answer while connecting, or silent for too long while watching. */
  stalled(err: KubeUnreachableError): void;
  /** The server ended the watch normally (its timeout): resume from the last resourceVersion. */
  ended(): void;
}

export interface WatchSessionOptions {
  api: NodeApi;
  clock: Clock;
  random: () => number;
  labelSelector: string | undefined;
  resourceVersion: string;
  watchTimeoutSeconds: number;
  watchdogMs: number;
  /** The watchdog while connecting is min(requestTimeoutMs, watchdogMs). */
  requestTimeoutMs: number;
  /** False once the caller has moved on: every later callback of this watch is ignored. */
  isCurrent(): boolean;
}

export class WatchSession {
  private readonly o: WatchSessionOptions;
  private readonly l: WatchListener;
  private readonly startedAt: number;
  private handle: WatchHandle | null = null;
  private watchdog: { cancel(): void } | null = null;
  private connecting = true;
  private events = 0;

  constructor(options: WatchSessionOptions, listener: WatchListener) {
    this.o = options;
    this.l = listener;
    this.startedAt = options.clock.now();
  }

  start(): void {
    const o = this.o;
    const timeoutSeconds = Math.floor(o.watchTimeoutSeconds * (1 + o.random()));
    // While connecting, the watchdog is the connect timeout.
    this.armWatchdog(Math.min(o.requestTimeoutMs, o.watchdogMs));
    o.api
      .watch(
        { labelSelector: o.labelSelector, resourceVersion: o.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        (ev) => this.onEvent(ev),
        (err) => this.onDone(err),
      )
      .then(
        (handle) => {
          if (!o.isCurrent()) {
            handle.abort();
            return;
          }
          this.handle = handle;
          this.connecting = false;
          this.l.connected();
          this.armWatchdog(o.watchdogMs);
        },
        (err: unknown) => {
          if (!o.isCurrent()) return;
          this.cancelWatchdog();
          this.report(translateKubeError('watch nodes', err));
        },
      );
  }

  /** Stops the watchdog and aborts the stream, if open. */
  abort(): void {
    this.cancelWatchdog();
    const h = this.handle;
    this.handle = null;
    h?.abort();
  }

  private onEvent(ev: WatchEvent): void {
    if (!this.o.isCurrent()) return;
    if (this.connecting) {
      this.connecting = false;
      this.l.connected();
    }
    this.armWatchdog(this.o.watchdogMs);
    if (ev.type === 'ERROR') {
      const status = (ev.object ?? {}) as KubeStatus;
      if (isGoneStatus(status)) return this.l.gone(new KubeGoneError(`watch nodes: ${status.reason ?? 'Expired'}: ${status.message ?? ''}`));
      return this.l.failed(errorForStatus('watch nodes: ERROR event', typeof status.code === 'number' ? status.code : 500, status));
    }
    // Only what the bridge reads of the Node goes on (as for list pages, reflectorList.ts).
    const node = slimNode(ev.object);
    const rv = node.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') return this.l.bookmark(rv);
    this.events++;
    this.l.event(ev.type, node, rv);
  }

  private onDone(err: unknown): void {
    if (!this.o.isCurrent()) return;
    this.handle = null;
    this.cancelWatchdog();
    if (err) return this.report(translateKubeError('watch nodes', err));
    const lasted = this.o.clock.now() - this.startedAt;
    if (lasted < SHORT_WATCH_MS && this.events === 0) {
      return this.l.failed(new KubeUnreachableError(`watch nodes: very short watch (${lasted} ms, no events)`));
    }
    this.l.ended();
  }

  private report(err: KubeError): void {
    if (err instanceof KubeGoneError) this.l.gone(err);
    else this.l.failed(err);
  }

  private armWatchdog(ms: number): void {
    this.cancelWatchdog();
    this.watchdog = this.o.clock.setTimeout(() => {
      this.watchdog = null;
      if (!this.o.isCurrent()) return;
      this.l.stalled(new KubeUnreachableError(this.connecting ? `watch nodes: no answer within ${ms} ms` : `watch nodes: silent for ${ms} ms`));
    }, ms);
  }

  private cancelWatchdog(): void {
    this.watchdog?.cancel();
    this.watchdog = null;
  }
}

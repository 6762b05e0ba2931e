// SaltEventStream: the master event bus as an EventStream (seams.ts). It keeps one connection open
// — websocket (rest_tornado /all_events) or SSE (rest_cherrypy /events) — and reconnects with
// backoff + jitter forever until stop(). A refused token is renewed by the connection (the client
// logs in again). 'open' is emitted after each (re)connect, 'closed' when an open connection drops.
//
// mode 'sse': SSE only. 'ws': websocket only (it loses events that arrive back to back, see
// transportsForRound). 'auto' (default): SSE; only if SSE cannot be opened and a wsClient is
// configured, the websocket is tried at once in the same round, and a websocket endpoint that
// answers with an HTTP error other than 401 (404: not enabled) is not tried again by this stream.

import type { Logger } from 'pino';
import type { BusEvent, Clock, EventStream } from '../seams.ts';
import { Backoff } from '../util/backoff.ts';
import { systemClock } from '../util/clock.ts';
import type { SaltApiClient } from './client.ts';
import type { BusConnection, ConnectionHandlers } from './connection.ts';
import { SaltError } from './errors.ts';
import { connectSse } from './sse.ts';
import { connectWs } from './ws.ts';

export type EventStreamMode = 'sse' | 'ws' | 'auto';
export type Transport = 'sse' | 'ws';

export interface SaltEventStreamOptions {
  /** rest_cherrypy client: SSE from <url>/events. */
  client: SaltApiClient;
  /** rest_tornado client (its own URL and login): websocket at <url>/all_events/<token>. */
  wsClient?: SaltApiClient;
  mode?: EventStreamMode;
  logger: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** Handshake deadline for the websocket (SSE uses the client's timeoutMs). Default 10 s. */
  timeoutMs?: number;
  /** SSE: reconnect when nothing arrived for this long (0 = off, the default: the bus can be quiet). */
  idleTimeoutMs?: number;
  /** Websocket ping period (default 30 s). */
  pingIntervalMs?: number;
  clock?: Clock;
  random?: () => number;
  /** For tests: replaces the real connectors. */
  connectors?: Partial<Record<Transport, (handlers: ConnectionHandlers) => BusConnection>>;
}

export class SaltEventStream implements EventStream {
  private readonly o: SaltEventStreamOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly eventListeners = new Set<(e: BusEvent) => void>();
  private readonly stateListeners = new Set<(s: 'open' | 'closed') => void>();
  private running = false;
  private loop: Promise<void> | undefined;
  private current: BusConnection | undefined;
  private wakeUp: (() => void) | undefined;
  private retryHintMs = 0;
  private wsUnavailable = false;
  private isOpen = false;
  private openWaiters: Array<() => void> = [];
  private transportInUse: Transport | undefined;

  constructor(options: SaltEventStreamOptions) {
    this.o = options;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    const b = options.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.backoff = new Backoff({ ...b, random: options.random ?? Math.random, now: () => this.clock.now() });
  }

  onEvent(listener: (event: BusEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onState(listener: (state: 'open' | 'closed') => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Starts the connect loop and returns at once; use waitForOpen() to wait for the first connection. */
  start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      this.loop = this.run();
    }
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.current?.close();
    this.wakeUp?.();
    await this.loop;
    this.loop = undefined;
  }

  /** true once connected; false if not connected within timeoutMs. */
  waitForOpen(timeoutMs: number): Promise<boolean> {
    if (this.isOpen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = () => {
        t.cancel();
        resolve(true);
      };
      const t = this.clock.setTimeout(() => {
        this.openWaiters = this.openWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.openWaiters.push(waiter);
    });
  }

  /** Which transport the open connection uses (for status/check). */
  get transport(): Transport | undefined {
    return this.isOpen ? this.transportInUse : undefined;
  }

  // ---- internals -------------------------------------------------------------------------------

  private transportsForRound(): Transport[] {
    const mode = this.o.mode ?? 'auto';
    if (mode === 'sse') return ['sse'];
    if (mode === 'ws') return ['ws'];
    // SSE first: rest_tornado's websocket hands an event only to a read already waiting, so events
    // that arrive back to back are dropped (measured on Salt 3007.13: 9 of 200; SSE had all 200,
    // test/e2e/bursts.test.ts). A lost job return would cost a 30 s ack-timeout re-send.
    return this.o.wsClient !== undefined && !this.wsUnavailable ? ['sse', 'ws'] : ['sse'];
  }

  private connect(t: Transport): BusConnection {
    const handlers: ConnectionHandlers = {
      onEvent: (e) => this.dispatch(e),
      onRetryHint: (ms) => {
        this.retryHintMs = Math.min(Math.max(0, ms), 60_000);
      },
    };
    const custom = this.o.connectors?.[t];
    if (custom !== undefined) return custom(handlers);
    if (t === 'ws') {
      return connectWs(this.o.wsClient ?? this.o.client, handlers, {
        logger: this.log,
        timeoutMs: this.o.timeoutMs ?? 10_000,
        pingIntervalMs: this.o.pingIntervalMs,
      });
    }
    return connectSse(this.o.client, handlers, { logger: this.log, idleTimeoutMs: this.o.idleTimeoutMs });
  }

  private async run(): Promise<void> {
    while (this.running) {
      let conn: BusConnection | undefined;
      for (const t of this.transportsForRound()) {
        if (!this.running) break;
        const c = this.connect(t);
        this.current = c;
        try {
          await c.opened;
          conn = c;
          this.transportInUse = t;
          break;
        } catch (err) {
          if (t === 'ws' && (this.o.mode ?? 'auto') === 'auto' && isUnavailable(err)) {
            this.wsUnavailable = true;
            this.log.warn({ err }, 'salt-api websocket endpoint not available; using SSE from now on');
          } else {
            this.log.warn({ err, salt: { transport: t } }, 'salt-api event stream: connect failed');
          }
        }
      }
      if (!this.running) {
        conn?.close();
        break;
      }
      if (conn === undefined) {
        await this.delay(Math.max(this.retryHintMs, this.backoff.next()));
        continue;
      }
      this.log.info({ salt: { transport: this.transportInUse } }, 'salt event stream open');
      this.setState(true);
      const reason = await conn.closed;
      this.current = undefined;
      this.setState(false);
      if (!this.running) break;
      if (reason !== undefined) this.log.warn({ err: reason }, 'salt event stream dropped');
      else this.log.info('salt event stream ended by the server');
      await this.delay(Math.max(this.retryHintMs, this.backoff.next()));
    }
    this.current = undefined;
  }

  private dispatch(e: BusEvent): void {
    for (const l of this.eventListeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err, salt: { tag: e.tag } }, 'event listener threw');
      }
    }
  }

  private setState(open: boolean): void {
    if (this.isOpen === open) return;
    this.isOpen = open;
    if (open) {
      const w = this.openWaiters;
      this.openWaiters = [];
      for (const f of w) f();
    }
    for (const l of this.stateListeners) {
      try {
        l(open ? 'open' : 'closed');
      } catch (err) {
        this.log.error({ err }, 'state listener threw');
      }
    }
  }

  private delay(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.clock.setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        t.cancel();
        this.wakeUp = undefined;
        resolve();
      };
    });
  }
}

/** An HTTP answer (not 401/5xx/429) to the websocket upgrade: the endpoint is not there. */
function isUnavailable(err: unknown): boolean {
  if (!(err instanceof SaltError)) return false;
  const s = err.info.status;
  return s !== undefined && s !== 401 && s < 500 && s !== 429;
}

/** Convenience for the wiring: an event stream on `client` (SSE; websocket when `wsClient` is given). */
export function createEventStream(client: SaltApiClient, options: Omit<SaltEventStreamOptions, 'client'>): SaltEventStream {
  return new SaltEventStream({ ...options, client });
}

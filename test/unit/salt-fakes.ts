// In-memory fakes of the salt seams (EventSink, EventStream) for unit tests of other components,
// and a fake salt-api HTTP server for the salt client/stream tests.

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { AllowListPayload, BusEvent, EventSink, EventStream } from '../../src/seams.ts';

/** Records fired events; can be told to fail the next calls. */
export class FakeEventSink implements EventSink {
  readonly fired: Array<{ tag: string; data: AllowListPayload }> = [];
  private failures: unknown[] = [];

  /** The next `fire` calls throw these, in order. */
  failNext(...errors: unknown[]): void {
    this.failures.push(...errors);
  }

  async fire(tag: string, data: AllowListPayload): Promise<void> {
    const err = this.failures.shift();
    if (err !== undefined) throw err;
    this.fired.push({ tag, data: structuredClone(data) });
  }
}

/** An event stream driven by the test: emit(), open(), drop(). */
export class FakeEventStream implements EventStream {
  private readonly events = new Set<(e: BusEvent) => void>();
  private readonly states = new Set<(s: 'open' | 'closed') => void>();
  started = false;
  isOpen = false;

  onEvent(listener: (event: BusEvent) => void): () => void {
    this.events.add(listener);
    return () => this.events.delete(listener);
  }
  onState(listener: (state: 'open' | 'closed') => void): () => void {
    this.states.add(listener);
    return () => this.states.delete(listener);
  }
  async start(): Promise<void> {
    this.started = true;
    this.open();
  }
  async stop(): Promise<void> {
    this.started = false;
    this.drop();
  }
  emit(tag: string, data: Record<string, unknown>): void {
    for (const l of this.events) l({ tag, data });
  }
  open(): void {
    if (this.isOpen) return;
    this.isOpen = true;
    for (const l of this.states) l('open');
  }
  drop(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const l of this.states) l('closed');
  }
}

// ---- a fake salt-api over node:http, for the salt client/stream tests ---------------------------

export interface FakeRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export type FakeHandler = (req: FakeRequest, res: http.ServerResponse, raw: http.IncomingMessage) => void | Promise<void>;

export interface FakeServer {
  url: string;
  requests: FakeRequest[];
  server: http.Server;
  close(): Promise<void>;
}

/** Starts an HTTP (or, with tls, HTTPS) server on 127.0.0.1 that records JSON requests. */
export async function startFakeSaltApi(handler: FakeHandler, tls?: { key: string; cert: string }): Promise<FakeServer> {
  const requests: FakeRequest[] = [];
  const onRequest = (raw: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        // keep text
      }
      const req: FakeRequest = { method: raw.method ?? '', path: raw.url ?? '', headers: raw.headers, body };
      requests.push(req);
      Promise.resolve(handler(req, res, raw)).catch((err: unknown) => {
        res.statusCode = 599;
        res.end(String(err));
      });
    });
  };
  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** An error page shaped like CherryPy's. */
export function sendCherryPyError(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/html;charset=utf-8' });
  res.end(`<!DOCTYPE html>\n<html><head><title>${status}</title></head><body><h2>${status}</h2>\n<p>${text}</p>\n<pre id="traceback"></pre></body></html>`);
}

/** A login answer as salt-api 3007.13 gives it. */
export function loginBody(token: string, lifetimeS = 43200, user = 'ksb'): unknown {
  const start = 1795306165.901576;
  return { return: [{ token, expire: start + lifetimeS, start, user, eauth: 'sharedsecret', perms: [{ '@runner': { 'event.send': { kwargs: { tag: 'kube-salt-bridge/.*' } } } }] }] };
}

/** A pino logger whose lines are collected as strings. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: pino({ level: 'trace' }, sink), lines };
}

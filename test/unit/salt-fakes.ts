// A fake salt-api HTTP server for the salt client/stream tests (the seam fakes live in test/fakes/).

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

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
  return {
    return: [
      {
        token,
        expire: start + lifetimeS,
        start,
        user,
        eauth: 'sharedsecret',
        perms: [{ '@runner': { 'event.send': { kwargs: { tag: 'kube-salt-bridge/.*' } } } }],
      },
    ],
  };
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

// The event bus over a websocket: rest_tornado's /all_events/<token> (enable with
// `rest_tornado: {websockets: true}`). rest_cherrypy's /ws needs ws4py, which is not installed
// with Salt 3007 and broken on recent CherryPy: there, /ws is a 404. Verified on 3007.13 with
// Tornado 6.5.4 (docs/salt-api-notes.md): the token is a rest_tornado login token (64 hex) in the
// URL path, the client must send "websocket client ready", then each message is
// {"data": {...}, "tag": "..."} as JSON text. The token sits in the URL: the URL is never logged.

import WebSocket from 'ws';
import type { Logger } from 'pino';
import type { SaltApiClient } from './client.ts';
import { deferred, parseBusMessage, type BusConnection, type ConnectionHandlers } from './connection.ts';
import { SaltAuthError, SaltHttpError, SaltTimeoutError, type SaltError } from './errors.ts';
import { statusError, translateError } from './translate.ts';

/** A text frame's payload: a Buffer with the default binaryType, fragments or an ArrayBuffer otherwise. */
function messageText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

export interface WsOptions {
  logger: Logger;
  /** Handshake deadline. */
  timeoutMs: number;
  /** Ping period; a missing pong by the next ping drops the connection (default 30 s, 0 = off). */
  pingIntervalMs?: number;
  maxEventBytes?: number;
}

const REQUEST = 'GET /all_events';

export function wsUrlFor(baseUrl: string, token: string): string {
  const u = new URL(baseUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/all_events/${encodeURIComponent(token)}`;
  u.search = '';
  return u.toString();
}

export function connectWs(client: SaltApiClient, handlers: ConnectionHandlers, o: WsOptions): BusConnection {
  const opened = deferred<void>();
  const closed = deferred<SaltError | undefined>();
  let ws: WebSocket | undefined;
  let closing = false;
  let isOpen = false;
  let pingTimer: NodeJS.Timeout | undefined;
  let token: string | undefined;

  const fail = (err: SaltError | undefined) => {
    if (pingTimer !== undefined) clearInterval(pingTimer);
    pingTimer = undefined;
    if (!isOpen) opened.reject(err ?? new SaltHttpError('salt-api websocket closed before it opened', { request: REQUEST }));
    closed.resolve(closing ? undefined : err);
    closing = true;
    if (ws !== undefined && ws.readyState !== WebSocket.CLOSED) ws.terminate();
  };

  (async () => {
    token = await client.token();
    if (closing) return fail(undefined);
    const url = wsUrlFor(client.url, token);
    const secure = url.startsWith('wss:');
    ws = new WebSocket(url, {
      agent: secure ? client.httpsAgent : client.httpAgent,
      handshakeTimeout: o.timeoutMs,
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: o.maxEventBytes ?? 16 * 1024 * 1024,
    });
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status === 401 && token !== undefined) {
        client.invalidateToken(token);
        fail(new SaltAuthError(`salt-api ${REQUEST}: token refused (HTTP 401)`, { request: REQUEST, status }));
      } else {
        fail(statusError(status, '', { request: REQUEST, secrets: [token] }));
      }
    });
    ws.on('open', () => {
      isOpen = true;
      ws?.send('websocket client ready');
      opened.resolve();
      const every = o.pingIntervalMs ?? 30_000;
      if (every > 0) {
        let waiting = false;
        ws?.on('pong', () => {
          waiting = false;
        });
        pingTimer = setInterval(() => {
          if (waiting) {
            fail(new SaltTimeoutError(`salt-api ${REQUEST}: no pong within ${every} ms`, { request: REQUEST }));
            return;
          }
          waiting = true;
          ws?.ping();
        }, every);
        pingTimer.unref?.();
      }
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const ev = parseBusMessage(messageText(data));
      if (ev === undefined) {
        o.logger.debug('ignoring a websocket message that is not a bus event');
        return;
      }
      handlers.onEvent(ev);
    });
    ws.on('error', (err) => fail(translateError(err, { request: REQUEST, secrets: [token], timeoutMs: o.timeoutMs })));
    ws.on('close', () => fail(undefined));
  })().catch((err: unknown) => fail(translateError(err, { request: REQUEST, secrets: [token] })));

  opened.promise.catch(() => undefined);
  return {
    opened: opened.promise,
    closed: closed.promise,
    close() {
      if (closing) return;
      closing = true;
      fail(undefined);
    },
  };
}

// The event bus over server-sent events: GET /events on rest_cherrypy. Verified format
// (docs/salt-api-notes.md): first `retry: 400`, then per event `tag: <tag>` + `data: <json>` + a
// blank line, where the JSON is {"data": {...}, "tag": "..."}. `tag:` is not an SSE field (the
// parser reports it as unknown; we read the tag from the JSON). The server sends nothing while the
// bus is quiet — no heartbeat — and ends the response cleanly after the first event that arrives
// once the token has expired.

import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createParser } from 'eventsource-parser';
import type { Logger } from 'pino';
import type { SaltApiClient } from './client.ts';
import { deferred, parseBusMessage, type BusConnection, type ConnectionHandlers } from './connection.ts';
import { SaltError, SaltProtocolError, SaltTimeoutError } from './errors.ts';
import { translateError } from './translate.ts';

export interface SseOptions {
  logger: Logger;
  /** Drop the connection when nothing arrived for this long (0 = never; the bus can be silent). */
  idleTimeoutMs?: number;
  /** Largest single event accepted (our own payload comes back on the bus, ~0.5 MiB). */
  maxEventBytes?: number;
  /** TCP keepalive probe delay, so a dead peer is noticed even while the bus is quiet. */
  keepAliveMs?: number;
}

export function connectSse(client: SaltApiClient, handlers: ConnectionHandlers, o: SseOptions): BusConnection {
  const ac = new AbortController();
  const closed = deferred<SaltError | undefined>();
  let closing = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let body: Readable | undefined;

  const finish = (reason: SaltError | undefined) => {
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    idleTimer = undefined;
    closed.resolve(closing ? undefined : reason);
    closing = true;
    ac.abort();
    body?.destroy();
  };

  const armIdle = () => {
    if (!o.idleTimeoutMs) return;
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    idleTimer = setTimeout(
      () => finish(new SaltTimeoutError(`salt-api GET /events: nothing received for ${o.idleTimeoutMs} ms`, { request: 'GET /events' })),
      o.idleTimeoutMs,
    );
    idleTimer.unref?.();
  };

  const parser = createParser({
    maxBufferSize: o.maxEventBytes ?? 16 * 1024 * 1024,
    onEvent(msg) {
      const ev = parseBusMessage(msg.data);
      if (ev === undefined) {
        o.logger.debug({ salt: { bytes: msg.data.length } }, 'ignoring an SSE message that is not a bus event');
        return;
      }
      handlers.onEvent(ev);
    },
    onRetry(ms) {
      handlers.onRetryHint?.(ms);
    },
    onError(err) {
      if (err.type === 'unknown-field') return; // salt-api's `tag:` lines
      if (err.type === 'max-buffer-size-exceeded') {
        finish(new SaltProtocolError(`salt-api GET /events: an event exceeded ${o.maxEventBytes ?? 16 * 1024 * 1024} characters`, { request: 'GET /events' }));
        return;
      }
      o.logger.debug({ salt: { sseError: err.type } }, 'SSE parse problem');
    },
  });

  const opened = client.openEvents(ac.signal).then((stream) => {
    body = stream;
    if (closing) {
      stream.destroy();
      return;
    }
    (stream as Partial<IncomingMessage>).socket?.setKeepAlive(true, o.keepAliveMs ?? 30_000);
    stream.setEncoding('utf8');
    armIdle();
    stream.on('data', (chunk: string) => {
      armIdle();
      if (closing) return;
      try {
        parser.feed(chunk);
      } catch (err) {
        finish(translateError(err, { request: 'GET /events', secrets: [] }));
      }
    });
    stream.on('end', () => finish(undefined));
    stream.on('close', () => finish(undefined));
    stream.on('error', (err) => finish(translateError(err, { request: 'GET /events', secrets: [] })));
  });
  opened.catch(() => finish(undefined));

  return {
    opened,
    closed: closed.promise,
    close() {
      if (closing) return;
      closing = true;
      finish(undefined);
    },
  };
}

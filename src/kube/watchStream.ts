// One watch request (`GET /api/v1/nodes?watch=true`) with a bound on the length of one event line.
// client-node's Watch reads the stream with readline, which buffers a line until its newline:
// a server (or anything between it and us) sending one endless line would grow the bridge's memory
// without limit. This is the same request as client-node's Watch (its auth, TLS and proxy
// dispatcher, through the undici that client-node itself loads), read through LineSplitter,
// which refuses a line longer than MAX_WATCH_LINE_BYTES before buffering more of it.

import { createRequire } from 'node:module';
import { HttpMethod, RequestContext, type KubeConfig } from './clientNode.ts';
import { KubeApiError, KubeWatchLineTooLongError } from './errors.ts';

/** Longest watch event line accepted (one Node object as JSON is a few KiB; etcd caps objects at 1.5 MiB). */
export const MAX_WATCH_LINE_BYTES = 4 * 1024 * 1024;

type UndiciFetch = typeof import('undici').fetch;
// The undici client-node resolves, so that the dispatcher client-node builds (TLS, proxy) is one
// this fetch understands.
export const undiciFetch: UndiciFetch = (createRequire(import.meta.resolve('@kubernetes/client-node'))('undici') as { fetch: UndiciFetch }).fetch;

/** A GET request as client-node would send it: the KubeConfig's auth headers, TLS and proxy dispatcher. */
export interface AuthenticatedGet {
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly dispatcher: ReturnType<RequestContext['getDispatcher']>;
}

/** Builds `GET <server><path>?<query>` (undefined query values left out) with the KubeConfig's auth applied. */
export async function authenticatedGet(kc: KubeConfig, path: string, query: Record<string, string | number | boolean | undefined>): Promise<AuthenticatedGet> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('No currently active cluster');
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return { url, headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher() };
}

/** Splits a byte stream into lines (without the newline), refusing any line over `max` bytes. */
export class LineSplitter {
  private readonly max: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** The complete lines in `chunk` (with what was pending); throws LineTooLong past `max`. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const part = chunk.subarray(start, nl);
      this.check(this.pendingBytes + part.length);
      lines.push(this.pendingBytes === 0 ? part : Buffer.concat([...this.pending, part]));
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.check(this.pendingBytes + rest.length);
      this.pending.push(rest);
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  /** What is left when the stream ends (a last line without newline), if anything. */
  end(): Buffer | undefined {
    const rest = this.pendingBytes === 0 ? undefined : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    return rest;
  }

  private check(bytes: number): void {
    if (bytes > this.max) throw new LineTooLong(bytes, this.max);
  }
}

export class LineTooLong extends Error {
  readonly bytes: number;
  readonly max: number;
  constructor(bytes: number, max: number) {
    super(`line longer than ${max} bytes (at least ${bytes})`);
    this.bytes = bytes;
    this.max = max;
  }
}

export interface WatchStreamOptions {
  /** Names the operation in errors, e.g. `cluster "prod": watch nodes`. */
  readonly what: string;
  /** Abort after this long without a byte (the reflector's watchdog is the real liveness check). */
  readonly inactivityMs: number;
  readonly maxLineBytes?: number;
}

/**
 * Opens the watch. Resolves once the server answered 200; rejects on another status (an Error
 * with `statusCode`, as client-node's Watch does) or a network failure. Then `onEvent` is called
 * per event and `onDone` once: null when the server ended the stream, an error otherwise. After
 * `abort()` neither is called again.
 */
export async function openWatchStream(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  onEvent: (type: string, object: unknown) => void,
  onDone: (err: unknown) => void,
  options: WatchStreamOptions,
): Promise<{ abort(): void }> {
  const req = await authenticatedGet(kc, path, { watch: true, ...query });

  const controller = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.inactivityMs);
    timer.unref();
  };
  const timeoutError = () => new DOMException('The operation was aborted due to timeout', 'TimeoutError');

  arm();
  let res: Awaited<ReturnType<UndiciFetch>>;
  try {
    res = await undiciFetch(req.url, {
      method: 'GET',
      headers: { ...req.headers, 'accept-encoding': 'identity' },
      dispatcher: req.dispatcher,
      signal: controller.signal,
    });
  } catch (err) {
    clearTimeout(timer);
    throw timedOut ? timeoutError() : err;
  }
  if (res.status !== 200 || res.body === null) {
    clearTimeout(timer);
    await res.body?.cancel().catch(() => {});
    throw Object.assign(new Error(res.statusText || `HTTP ${res.status}`), { statusCode: res.status });
  }
  arm();

  let finished = false;
  const finish = (err: unknown) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    controller.abort();
    onDone(err);
  };
  const splitter = new LineSplitter(options.maxLineBytes ?? MAX_WATCH_LINE_BYTES);
  const deliver = (line: Buffer) => {
    if (finished || line.length === 0) return;
    let event: { type?: unknown; object?: unknown };
    try {
      event = JSON.parse(line.toString('utf8')) as { type?: unknown; object?: unknown };
    } catch {
      throw new KubeApiError(`${options.what}: the server sent a line that is not JSON (${line.length} bytes)`, undefined, true);
    }
    if (typeof event?.type === 'string') onEvent(event.type, event.object);
  };
  const body = res.body;
  void (async () => {
    try {
      for await (const chunk of body) {
        if (finished) return;
        arm();
        for (const line of splitter.push(Buffer.from(chunk as Uint8Array))) deliver(line);
      }
      const last = splitter.end();
      if (last) deliver(last);
      finish(null);
    } catch (err) {
      if (err instanceof LineTooLong) {
        finish(
          new KubeWatchLineTooLongError(
            `${options.what}: an event line longer than ${err.max} bytes; the watch is restarted (the nodes' last good addresses stay)`,
          ),
        );
      } else {
        finish(timedOut ? timeoutError() : err);
      }
    }
  })();

  return {
    abort: () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      controller.abort();
    },
  };
}

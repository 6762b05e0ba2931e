// NodeApi on @kubernetes/client-node 2.0.1: list pages and the watch stream are plain GETs with
// the KubeConfig's auth, TLS and proxy (client-node's RequestContext, the undici it loads), read as
// raw JSON. A list page is read as it streams in, item by item, each cut down to what the bridge
// reads (nodeListParser.ts), rather than through client-node's typed deserialization of V1NodeList
// (about twice as slow, and every typed Node of every page alive at once); the page's continue
// token is surfaced as soon as its metadata has streamed in (ListOptions.onContinue). The watch stream goes
// through watchStream.ts (a bounded line length). Errors leave this file as KubeErrors.

import type { KubeConfig } from '@kubernetes/client-node';
import { translateKubeError } from './errors.ts';
import { NodeListParser } from './nodeListParser.ts';
import { authenticatedGet, openWatchStream, undiciFetch } from './watchStream.ts';
import { type ListOptions, type ListPage, type NodeApi, type WatchEvent, type WatchEventType, type WatchHandle, type WatchOptions } from './nodeApi.ts';

/** How much of an error answer's body is kept to read its Status (reason, message) from. */
const ERROR_BODY_CHARS = 64 * 1024;

export interface ClientNodeApiOptions {
  /** For error messages, e.g. the cluster name. */
  label?: string;
  /**
   * A watch stream is aborted after this long without any byte (client-node's Watch uses 30 s,
   * shorter than the apiserver's ~1 min bookmark period, so a quiet cluster would see a spurious
   * TimeoutError every 30 s). The reflector's own watchdog is the real liveness check; this is a
   * backstop and should be larger than it.
   */
  watchInactivityMs?: number;
  /** Longest watch event line accepted (default MAX_WATCH_LINE_BYTES, 4 MiB). */
  maxWatchLineBytes?: number;
}

const EVENT_TYPES = new Set<WatchEventType>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

export function createClientNodeApi(kc: KubeConfig, options: ClientNodeApiOptions = {}): NodeApi {
  const what = (op: string) => (options.label ? `cluster "${options.label}": ${op}` : op);
  const inactivityMs = options.watchInactivityMs ?? 10 * 60_000;

  return {
    async list(o: ListOptions): Promise<ListPage> {
      try {
        const req = await authenticatedGet(kc, '/api/v1/nodes', {
          labelSelector: o.labelSelector || undefined,
          limit: o.limit,
          continue: o.continue || undefined,
        });
        const res = await undiciFetch(req.url, {
          method: 'GET',
          headers: { ...req.headers, accept: 'application/json' },
          dispatcher: req.dispatcher,
          signal: o.signal,
        });
        if (res.status !== 200 || res.body === null) {
          const text = res.body === null ? '' : (await res.text()).slice(0, ERROR_BODY_CHARS);
          // As client-node's ApiException: the HTTP status and the body, whose Status names the reason.
          throw Object.assign(new Error(`HTTP ${res.status}`), { code: res.status, body: text });
        }
        const onContinue = o.onContinue;
        const parser = new NodeListParser(what('list nodes'), onContinue ? { onHead: (h) => onContinue(h.continue) } : {});
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) parser.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        return parser.end();
      } catch (err) {
        throw translateKubeError(what('list nodes'), err);
      }
    },

    watch(o: WatchOptions, onEvent: (e: WatchEvent) => void, onDone: (err: unknown) => void): Promise<WatchHandle> {
      return new Promise<WatchHandle>((resolve, reject) => {
        let opened = false;
        let failed = false;
        let stream: { abort(): void } | undefined;
        let abortedEarly = false;
        const handle: WatchHandle = {
          abort: () => {
            abortedEarly = stream === undefined;
            stream?.abort();
          },
        };
        const open = () => {
          if (opened || failed) return;
          opened = true;
          resolve(handle);
        };
        openWatchStream(
          kc,
          '/api/v1/nodes',
          {
            labelSelector: o.labelSelector || undefined,
            resourceVersion: o.resourceVersion,
            allowWatchBookmarks: o.allowWatchBookmarks,
            timeoutSeconds: o.timeoutSeconds,
          },
          (type: string, object: unknown) => {
            open();
            if (EVENT_TYPES.has(type as WatchEventType)) onEvent({ type: type as WatchEventType, object });
          },
          (err: unknown) => {
            if (!opened) {
              if (err) {
                failed = true;
                reject(translateKubeError(what('watch nodes'), err));
                return;
              }
              open();
            }
            onDone(err ? translateKubeError(what('watch nodes'), err) : null);
          },
          { what: what('watch nodes'), inactivityMs, maxLineBytes: options.maxWatchLineBytes },
        ).then(
          (s) => {
            stream = s;
            if (abortedEarly) s.abort();
            open();
          },
          (err: unknown) => {
            if (!opened) {
              failed = true;
              reject(translateKubeError(what('watch nodes'), err));
            }
          },
        );
      });
    },
  };
}

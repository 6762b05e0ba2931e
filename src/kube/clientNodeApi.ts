// NodeApi on @kubernetes/client-node 2.0.1: CoreV1Api.listNode for pages, the watch stream through
// watchStream.ts (client-node's request, a bounded line length). Errors leave this file as KubeErrors.

import { CoreV1Api, Observable, type KubeConfig, type V1NodeList } from '@kubernetes/client-node';
import { translateKubeError } from './errors.ts';
import { openWatchStream } from './watchStream.ts';
import type { ListOptions, ListPage, NodeApi, WatchEvent, WatchEventType, WatchHandle, WatchOptions } from './nodeApi.ts';

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
  const core = kc.makeApiClient(CoreV1Api);
  const what = (op: string) => (options.label ? `cluster "${options.label}": ${op}` : op);
  const inactivityMs = options.watchInactivityMs ?? 10 * 60_000;

  return {
    async list(o: ListOptions): Promise<ListPage> {
      try {
        const res: V1NodeList = await core.listNode(
          { labelSelector: o.labelSelector, limit: o.limit, _continue: o.continue },
          o.signal ? signalOptions(o.signal) : undefined,
        );
        return {
          items: res.items,
          resourceVersion: res.metadata?.resourceVersion ?? '',
          continue: res.metadata?._continue || undefined,
        };
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

// The generated API takes per-call middleware; this one attaches an AbortSignal to the request.
function signalOptions(signal: AbortSignal) {
  return {
    middleware: [
      {
        pre: (ctx: { setSignal(s: AbortSignal): void }) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: <T>(rsp: T) => new Observable(Promise.resolve(rsp)),
      },
    ],
    middlewareMergeStrategy: 'append' as const,
  } as unknown as Parameters<CoreV1Api['listNode']>[1];
}

// The small API the reflector is written against: one real implementation on client-node
// (clientNodeApi.ts), one fake for unit tests. Errors are KubeErrors (errors.ts).

/** The parts of a v1 Node we read. A v1 Node as JSON (and client-node's V1Node) satisfies this shape. */
export interface KubeNode {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: Array<{ type?: string; address?: string }> };
}

/**
 * Only the parts of a Node that KubeNode names, in new objects: nothing of the original object
 * (images, conditions, managedFields, labels, annotations) stays reachable from the result. The
 * label selector is applied by the apiserver, so labels are not needed. Values keep their types as
 * sent (toNodeInfo checks them); a part that is not an object or array is left out.
 */
export function slimNode(node: unknown): KubeNode {
  const n = (isObject(node) ? node : {}) as KubeNode;
  const m = isObject(n.metadata) ? n.metadata : undefined;
  const spec = isObject(n.spec) ? n.spec : undefined;
  const addresses = isObject(n.status) && Array.isArray(n.status.addresses) ? n.status.addresses : undefined;
  const out: KubeNode = {};
  if (m) out.metadata = { name: m.name, resourceVersion: m.resourceVersion };
  if (spec) out.spec = { podCIDR: spec.podCIDR, podCIDRs: Array.isArray(spec.podCIDRs) ? [...spec.podCIDRs] : spec.podCIDRs };
  if (addresses) out.status = { addresses: addresses.map((a) => (isObject(a) ? { type: a.type, address: a.address } : a)) };
  return out;
}

function isObject(v: unknown): v is object {
  return v !== null && typeof v === 'object';
}

export interface ListOptions {
  labelSelector?: string;
  limit?: number;
  continue?: string;
  /** Aborts the request (the reflector's list timeout). */
  signal?: AbortSignal;
  /**
   * Called at most once, as soon as the page's metadata has been read and before its items are (the
   * apiserver writes metadata first), with its continue token (undefined: none, the last page), so
   * that the next page can be requested early. A hint only: the page's `continue` is what counts,
   * and an implementation may never call it.
   */
  onContinue?: (token: string | undefined) => void;
}

export interface ListPage {
  items: KubeNode[];
  resourceVersion: string;
  continue?: string;
}

export interface WatchOptions {
  labelSelector?: string;
  resourceVersion: string;
  allowWatchBookmarks: boolean;
  /** Server-side timeout: the apiserver ends the watch normally after this long. */
  timeoutSeconds: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  /** A Node for ADDED/MODIFIED/DELETED/BOOKMARK, a Status ({code, reason, message}) for ERROR. */
  object: unknown;
}

export interface WatchHandle {
  abort(): void;
}

export interface NodeApi {
  list(options: ListOptions): Promise<ListPage>;
  /**
   * Opens a watch. Resolves once the stream is open (HTTP 200); rejects (without calling onDone)
   * when it could not be opened (HTTP status error, network error). After resolving, onDone is
   * called at most once: null when the server ended the stream, an error otherwise. After abort(),
   * no more onEvent calls matter and onDone may or may not be called.
   */
  watch(options: WatchOptions, onEvent: (event: WatchEvent) => void, onDone: (err: unknown) => void): Promise<WatchHandle>;
}

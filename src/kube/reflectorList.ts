// The Reflector's list step: a paginated list (limit + continue, one consistent snapshot), each
// page under a request deadline. A 410 on a continue token surfaces as the translated error of the
// page request (the caller restarts the list from scratch). Each page is cut down to what the
// bridge reads of a Node (slimNode) as it arrives, so that the full objects of a page are garbage
// before the next page is requested, not held until the list ends.

import type { Clock } from '../seams.ts';
import { withDeadline } from '../util/deadline.ts';
import { KubeUnreachableError, errorForStatus } from './errors.ts';
import { slimNode, type KubeNode, type NodeApi } from './nodeApi.ts';

export interface ListAllRequest {
  api: NodeApi;
  clock: Clock;
  labelSelector: string | undefined;
  pageSize: number;
  /** Abort a page request after this long. */
  requestTimeoutMs: number;
  /** False once the caller has moved on: the list then stops after the page in flight. */
  isCurrent(): boolean;
  /** Each page request's AbortController, so that the caller can abort the request in flight. */
  onRequest(ac: AbortController): void;
  /** A page arrived (for the caller's counters). */
  onPage(): void;
}

export interface ListResult {
  items: KubeNode[];
  resourceVersion: string;
}

export async function listAll(r: ListAllRequest): Promise<ListResult> {
  const items: KubeNode[] = [];
  let cont: string | undefined;
  let rv: string;
  do {
    const ac = new AbortController();
    r.onRequest(ac);
    const page = await withDeadline(
      r.api.list({ labelSelector: r.labelSelector, limit: r.pageSize, continue: cont, signal: ac.signal }),
      r.requestTimeoutMs,
      () => {
        ac.abort();
        return new KubeUnreachableError(`list nodes: no answer within ${r.requestTimeoutMs} ms`);
      },
      r.clock,
    );
    if (!r.isCurrent()) throw new KubeUnreachableError('list superseded');
    r.onPage();
    for (const item of page.items) items.push(slimNode(item));
    rv = page.resourceVersion;
    cont = page.continue || undefined;
  } while (cont);
  if (!rv) throw errorForStatus('list nodes: response without resourceVersion', 500);
  return { items, resourceVersion: rv };
}

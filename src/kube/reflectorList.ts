// The Reflector's list step: a paginated list (limit + continue, one consistent snapshot), each
// page under a request deadline. A 410 on a continue token surfaces as the translated error of the
// page request (the caller restarts the list from scratch). Each page is cut down to what the
// bridge reads of a Node (slimNode) as it arrives, so that the full objects of a page are garbage
// before the next page is read, not held until the list ends.
//
// Pipelined: the apiserver writes a page's metadata (with its continue token) before its items, so
// the next page is requested as soon as that token has streamed in (ListOptions.onContinue), and
// the apiserver prepares it while this one is still being read and parsed. At most one page is
// requested ahead: the page after it waits until it is the one being read. The tokens are the
// apiserver's own, in order, so the pages still form one snapshot; a token seen early that is not
// the page's final continue (or a page that ends the list) aborts the request made ahead. Any
// failure, or the caller moving on, aborts both requests.

import type { Clock } from '../seams.ts';
import { withDeadline } from '../util/deadline.ts';
import { KubeUnreachableError, errorForStatus } from './errors.ts';
import { slimNode, type KubeNode, type ListPage, type NodeApi } from './nodeApi.ts';

export interface ListAllRequest {
  api: NodeApi;
  clock: Clock;
  labelSelector: string | undefined;
  pageSize: number;
  /** Abort a page request after this long (from when it is sent). */
  requestTimeoutMs: number;
  /** False once the caller has moved on: the list then stops after the page in flight. */
  isCurrent(): boolean;
  /** Each page request's AbortController (up to two at once), so that the caller can abort the requests in flight. */
  onRequest(ac: AbortController): void;
  /** A page arrived (for the caller's counters). */
  onPage(): void;
}

export interface ListResult {
  items: KubeNode[];
  resourceVersion: string;
}

/** One page request. */
interface Page {
  readonly token: string | undefined;
  readonly ac: AbortController;
  done: Promise<ListPage>;
  /** The continue token its metadata showed early (undefined: the last page), or `unseen`. */
  early: string | undefined | typeof UNSEEN;
  /** The next page, requested ahead. */
  next: Page | undefined;
  /** True while this is the page being read: only then is the next one requested ahead. */
  reading: boolean;
}

const UNSEEN = Symbol('unseen');

export async function listAll(r: ListAllRequest): Promise<ListResult> {
  const items: KubeNode[] = [];
  let rv: string;

  const request = (token: string | undefined): Page => {
    const ac = new AbortController();
    r.onRequest(ac);
    const page: Page = { token, ac, done: Promise.resolve({ items: [], resourceVersion: '' }), early: UNSEEN, next: undefined, reading: false };
    page.done = withDeadline(
      r.api.list({
        labelSelector: r.labelSelector,
        limit: r.pageSize,
        continue: token,
        signal: ac.signal,
        onContinue: (t) => {
          if (page.early !== UNSEEN) return;
          page.early = t;
          if (page.reading) ahead(page);
        },
      }),
      r.requestTimeoutMs,
      () => {
        ac.abort();
        return new KubeUnreachableError(`list nodes: no answer within ${r.requestTimeoutMs} ms`);
      },
      r.clock,
    );
    // A page requested ahead may fail before anyone awaits it; its error is seen when it is read.
    page.done.catch(() => {});
    return page;
  };
  /** Requests the page after `p` ahead, once, while `p` is read and the list still current. */
  const ahead = (p: Page): void => {
    if (p.next || typeof p.early !== 'string' || !r.isCurrent()) return;
    p.next = request(p.early);
  };

  let page = request(undefined);
  try {
    for (;;) {
      page.reading = true;
      ahead(page);
      const got = await page.done;
      if (!r.isCurrent()) throw new KubeUnreachableError('list superseded');
      r.onPage();
      for (const item of got.items) items.push(slimNode(item));
      rv = got.resourceVersion;
      const cont = got.continue || undefined;
      let next = page.next;
      page.next = undefined;
      if (next && next.token !== cont) {
        next.ac.abort();
        next = undefined;
      }
      if (!cont) break;
      page = next ?? request(cont);
    }
  } catch (err) {
    page.ac.abort();
    page.next?.ac.abort();
    throw err;
  }
  if (!rv) throw errorForStatus('list nodes: response without resourceVersion', 500);
  return { items, resourceVersion: rv };
}

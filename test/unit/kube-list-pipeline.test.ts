// The pipelined list: the parser surfaces a page's continue token as soon as the items array opens
// (however the body is cut into chunks, and not at all before it), listAll requests the next page
// then, at most one ahead, aborts what it requested ahead when the page fails, the token differs or
// the list is superseded, and the real client (undici against a local server playing the
// apiserver) sends the next page's request while the current page's items are still streaming.
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createClientNodeApi } from '../../src/kube/clientNodeApi.ts';
import { NodeListParser } from '../../src/kube/nodeListParser.ts';
import type { KubeNode, ListOptions, ListPage, NodeApi } from '../../src/kube/nodeApi.ts';
import { listAll, type ListAllRequest } from '../../src/kube/reflectorList.ts';
import { Reflector } from '../../src/kube/reflector.ts';
import { KubeApiError, KubeGoneError, KubeUnreachableError } from '../../src/kube/errors.ts';
import { systemClock } from '../../src/util/clock.ts';

const node = (name: string): KubeNode => ({ metadata: { name, resourceVersion: '1' }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] } });
const pageText = (meta: Record<string, unknown>, names: string[]) =>
  JSON.stringify({
    kind: 'NodeList',
    apiVersion: 'v1',
    metadata: meta,
    items: names.map((n) => ({ ...node(n), status: { ...node(n).status, images: [{ names: ['"]}'] }] } })),
  });

describe('NodeListParser onHead', () => {
  const text = pageText({ resourceVersion: '9', continue: 'tok-2', remainingItemCount: 3 }, ['a', 'b']);
  const itemsAt = text.indexOf('"items":[') + '"items":['.length;

  it('surfaces the continue token once the items array opens, before any item, at every chunk boundary', () => {
    const b = Buffer.from(text);
    for (let cut = 0; cut <= b.length; cut++) {
      const seen: Array<{ continue: string | undefined; at: number }> = [];
      let pushed = 0;
      const p = new NodeListParser('list nodes', { onHead: (h) => seen.push({ continue: h.continue, at: pushed }) });
      for (const part of [b.subarray(0, cut), b.subarray(cut)]) {
        pushed += part.length;
        p.push(part);
      }
      const page = p.end();
      assert.equal(seen.length, 1, `cut at ${cut}`);
      assert.equal(seen[0]!.continue, 'tok-2');
      // Surfaced by the push that carried the items array's `[`, not later.
      assert.equal(seen[0]!.at, cut >= itemsAt ? cut : b.length, `cut at ${cut}`);
      assert.deepEqual(
        page.items.map((n) => n.metadata?.name),
        ['a', 'b'],
      );
      assert.equal(page.continue, 'tok-2');
    }
  });
  it('byte by byte: surfaced exactly when the `[` arrives', () => {
    const b = Buffer.from(text);
    let at = -1;
    let i = 0;
    const p = new NodeListParser('list nodes', { onHead: () => (at = i) });
    for (; i < b.length; i++) p.push(b.subarray(i, i + 1));
    assert.equal(at, itemsAt - 1);
    assert.equal(p.end().items.length, 2);
  });
  const cases: Array<[string, string, string | undefined]> = [
    ['the last page (no continue)', pageText({ resourceVersion: '9' }, ['a']), undefined],
    ['an empty continue', pageText({ resourceVersion: '9', continue: '' }, ['a']), undefined],
    ['a body without metadata', JSON.stringify({ kind: 'NodeList', items: [node('a')] }), undefined],
    ['a continue that is no string', JSON.stringify({ metadata: { continue: 7 }, items: [node('a')] }), undefined],
    ['items before metadata', JSON.stringify({ items: [node('a')], metadata: { resourceVersion: '9', continue: 'late' } }), undefined],
  ];
  for (const [name, body, want] of cases) {
    it(`${name}: surfaced as ${String(want)}, and the page is still read whole`, () => {
      const seen: Array<string | undefined> = [];
      const p = new NodeListParser('list nodes', { onHead: (h) => seen.push(h.continue) });
      p.push(Buffer.from(body));
      const page = p.end();
      assert.deepEqual(seen, [want]);
      assert.equal(page.continue, (JSON.parse(body) as { metadata?: { continue?: unknown } }).metadata?.continue === 'late' ? 'late' : undefined);
    });
  }
  it('a broken head: surfaced as undefined, and end() still refuses the body', () => {
    const seen: Array<string | undefined> = [];
    const p = new NodeListParser('list nodes', { onHead: (h) => seen.push(h.continue) });
    p.push(Buffer.from('{"metadata":{"continue":"x",,},"items":[{"metadata":{"name":"a"}}]}'));
    assert.deepEqual(seen, [undefined]);
    assert.throws(
      () => p.end(),
      (e: unknown) => e instanceof KubeApiError && /not JSON/.test(e.message),
    );
  });
  it('an escaped "items" key (found only by the whole parse): never surfaced', () => {
    const seen: unknown[] = [];
    const p = new NodeListParser('list nodes', { onHead: (h) => seen.push(h) });
    p.push(Buffer.from('{"metadata":{"continue":"x"},"\\u0069tems":[{"metadata":{"name":"a"}}]}'));
    assert.equal(p.end().continue, 'x');
    assert.deepEqual(seen, []);
  });
});

/** A NodeApi whose pages are answered by the test: each request is recorded with its controls. */
function scriptedApi() {
  const reqs: Array<{
    o: ListOptions;
    resolve: (p: ListPage) => void;
    reject: (e: unknown) => void;
    aborted: () => boolean;
  }> = [];
  const waiters: Array<() => void> = [];
  const api: NodeApi = {
    list: (o) =>
      new Promise<ListPage>((resolve, reject) => {
        o.signal?.addEventListener('abort', () => reject(new KubeUnreachableError('list nodes: aborted')));
        reqs.push({ o, resolve, reject, aborted: () => o.signal?.aborted === true });
        for (const w of waiters.splice(0)) w();
      }),
    watch: () => Promise.reject(new Error('not used')),
  };
  const requested = async (n: number) => {
    while (reqs.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { api, reqs, requested };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

function request(api: NodeApi, over: Partial<ListAllRequest> = {}): ListAllRequest {
  return {
    api,
    clock: systemClock,
    labelSelector: undefined,
    pageSize: 2,
    requestTimeoutMs: 10_000,
    isCurrent: () => true,
    onRequest: () => {},
    onPage: () => {},
    ...over,
  };
}

describe('listAll, pipelined', () => {
  it('requests the next page as soon as the token streams in, one page ahead at most', async () => {
    const { api, reqs, requested } = scriptedApi();
    const result = listAll(request(api));
    await requested(1);
    reqs[0]!.o.onContinue?.('p2');
    await requested(2);
    assert.equal(reqs[1]!.o.continue, 'p2');
    // Page 2 shows its token while page 1 is still being read: page 3 waits.
    reqs[1]!.o.onContinue?.('p3');
    await tick();
    assert.equal(reqs.length, 2);
    reqs[0]!.resolve({ items: [node('a')], resourceVersion: '7', continue: 'p2' });
    // Page 2 is now the one read: the token it showed already sends page 3.
    await requested(3);
    assert.equal(reqs[2]!.o.continue, 'p3');
    reqs[2]!.o.onContinue?.(undefined);
    reqs[1]!.resolve({ items: [node('b')], resourceVersion: '7', continue: 'p3' });
    reqs[2]!.resolve({ items: [node('c')], resourceVersion: '7' });
    const r = await result;
    assert.deepEqual(
      r.items.map((n) => n.metadata?.name),
      ['a', 'b', 'c'],
    );
    assert.equal(r.resourceVersion, '7');
    assert.equal(reqs.length, 3);
    assert.ok(reqs.every((q) => !q.aborted()));
  });

  it('a page that never shows its token early: the next one is requested when it ends', async () => {
    const { api, reqs, requested } = scriptedApi();
    const result = listAll(request(api));
    await requested(1);
    reqs[0]!.resolve({ items: [node('a')], resourceVersion: '7', continue: 'p2' });
    await requested(2);
    assert.equal(reqs[1]!.o.continue, 'p2');
    reqs[1]!.resolve({ items: [], resourceVersion: '7' });
    assert.equal((await result).items.length, 1);
  });

  it('an early token that is not the final continue: the page requested ahead is aborted, the final one requested', async () => {
    const { api, reqs, requested } = scriptedApi();
    const result = listAll(request(api));
    await requested(1);
    reqs[0]!.o.onContinue?.('early');
    await requested(2);
    reqs[0]!.resolve({ items: [node('a')], resourceVersion: '7', continue: 'final' });
    await requested(3);
    assert.ok(reqs[1]!.aborted());
    assert.equal(reqs[2]!.o.continue, 'final');
    reqs[2]!.resolve({ items: [node('b')], resourceVersion: '7' });
    assert.deepEqual(
      (await result).items.map((n) => n.metadata?.name),
      ['a', 'b'],
    );
  });

  it('an early token on what ends as the last page: the request ahead is aborted', async () => {
    const { api, reqs, requested } = scriptedApi();
    const result = listAll(request(api));
    await requested(1);
    reqs[0]!.o.onContinue?.('p2');
    await requested(2);
    reqs[0]!.resolve({ items: [node('a')], resourceVersion: '7' });
    assert.equal((await result).items.length, 1);
    assert.ok(reqs[1]!.aborted());
  });

  it('an error mid-page with the next page in flight: both aborted, the error is the page’s, nothing unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { api, reqs, requested } = scriptedApi();
      const result = listAll(request(api));
      await requested(1);
      reqs[0]!.o.onContinue?.('p2');
      await requested(2);
      reqs[0]!.reject(new KubeApiError('list nodes: the answer is not JSON (5 bytes read)', 200, true));
      await assert.rejects(result, (e: unknown) => e instanceof KubeApiError && /not JSON/.test(e.message));
      assert.ok(reqs[1]!.aborted());
      await tick();
      await tick();
      assert.equal(reqs.length, 2);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('the page requested ahead fails before it is read (410): its error ends the list', async () => {
    const { api, reqs, requested } = scriptedApi();
    const result = listAll(request(api));
    await requested(1);
    reqs[0]!.o.onContinue?.('p2');
    await requested(2);
    reqs[1]!.reject(new KubeGoneError('list nodes: HTTP 410 (Expired)'));
    await tick();
    reqs[0]!.resolve({ items: [node('a')], resourceVersion: '7', continue: 'p2' });
    await assert.rejects(result, KubeGoneError);
    assert.equal(reqs.length, 2);
  });

  it('the page deadline runs for the page requested ahead too', async () => {
    const { api, reqs, requested } = scriptedApi();
    const result = listAll(request(api, { requestTimeoutMs: 50 }));
    await requested(1);
    reqs[0]!.o.onContinue?.('p2');
    await requested(2);
    reqs[0]!.resolve({ items: [node('a')], resourceVersion: '7', continue: 'p2' });
    await assert.rejects(result, (e: unknown) => e instanceof KubeUnreachableError && /no answer within 50 ms/.test(e.message));
    assert.ok(reqs[1]!.aborted());
  });

  it('superseded: no request ahead, and the one in flight is aborted', async () => {
    const { api, reqs, requested } = scriptedApi();
    let current = true;
    const result = listAll(request(api, { isCurrent: () => current }));
    await requested(1);
    reqs[0]!.o.onContinue?.('p2');
    await requested(2);
    current = false;
    reqs[0]!.resolve({ items: [node('a')], resourceVersion: '7', continue: 'p2' });
    await assert.rejects(result, /list superseded/);
    assert.ok(reqs[1]!.aborted());
  });

  it('Reflector.stop() aborts both the page being read and the one requested ahead', async () => {
    const { api, reqs, requested } = scriptedApi();
    const r = new Reflector({ api, clock: systemClock, pageSize: 2, handler: { replace: () => {}, apply: () => {}, unreachable: () => {} } });
    r.start();
    await requested(1);
    reqs[0]!.o.onContinue?.('p2');
    await requested(2);
    r.stop();
    assert.ok(reqs[0]!.aborted() && reqs[1]!.aborted());
  });
});

// ---- the real client against a local server that holds page 1's items until page 2 is asked for ----

let server: Server;
let port: number;
const log: string[] = [];
let held: ServerResponse | undefined;

before(async () => {
  server = createServer((req, res) => {
    const cont = new URL(req.url!, 'http://x').searchParams.get('continue');
    log.push(`request ${cont ?? 'first'}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    if (cont === null) {
      // The head (metadata with the token) and the start of the items; the rest only once page 2 was asked for.
      const body = pageText({ resourceVersion: '3', continue: 'page-2' }, ['a', 'b']);
      const cut = body.indexOf('"items":[') + 20;
      res.write(body.slice(0, cut));
      held = res;
      (res as unknown as { rest: string }).rest = body.slice(cut);
      return;
    }
    res.end(pageText({ resourceVersion: '3' }, ['c']));
    if (held) {
      log.push('page 1 ends');
      held.end((held as unknown as { rest: string }).rest);
      held = undefined;
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('createClientNodeApi().list, pipelined', () => {
  it('asks for page 2 while page 1 is still streaming; one snapshot, in order', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
      currentContext: 'c',
    });
    const r = await listAll(request(createClientNodeApi(kc, { label: 'local' })));
    assert.deepEqual(log, ['request first', 'request page-2', 'page 1 ends']);
    assert.deepEqual(
      r.items.map((n) => n.metadata?.name),
      ['a', 'b', 'c'],
    );
    assert.equal(r.resourceVersion, '3');
  });
});

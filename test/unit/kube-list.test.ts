// The list path keeps only what the bridge reads of a Node: slimNode (src/kube/nodeApi.ts), the
// streaming NodeList page parser (src/kube/nodeListParser.ts: items cut out of the byte stream and
// parsed one at a time, the same result as a whole JSON.parse however the body is split into
// chunks), listAll cutting each page down, and
// the real client code (client-node's auth, undici fetch) against a local HTTP server playing the
// apiserver: query parameters, pagination with continue tokens, HTTP errors with their Status.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createClientNodeApi } from '../../src/kube/clientNodeApi.ts';
import { NodeListParser, parseNodeList } from '../../src/kube/nodeListParser.ts';
import { slimNode, type KubeNode, type ListOptions, type ListPage, type NodeApi } from '../../src/kube/nodeApi.ts';
import { listAll } from '../../src/kube/reflectorList.ts';
import { Reflector } from '../../src/kube/reflector.ts';
import { KubeApiError, KubeForbiddenError, KubeGoneError, KubeUnreachableError } from '../../src/kube/errors.ts';
import { systemClock } from '../../src/util/clock.ts';

const fullNode = (name: string, ip: string, rv: number) => ({
  kind: 'Node',
  metadata: { name, resourceVersion: String(rv), labels: { pool: 'a', '{': '"}' }, annotations: { note: 'a "quoted" } brace and \\ backslash' } },
  spec: { providerID: 'aws:///x', podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24', 'fd00::/64'] },
  status: {
    addresses: [
      { type: 'InternalIP', address: ip },
      { type: 'Hostname', address: name },
    ],
    conditions: [{ type: 'Ready', status: 'True', message: 'items: [ "]" ]' }],
    images: [{ names: ['registry/x@sha256:00'], sizeBytes: 1 }],
  },
});
const slimOf = (name: string, ip: string, rv: number): KubeNode => ({
  metadata: { name, resourceVersion: String(rv) },
  spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24', 'fd00::/64'] },
  status: {
    addresses: [
      { type: 'InternalIP', address: ip },
      { type: 'Hostname', address: name },
    ],
  },
});

describe('slimNode', () => {
  it('keeps name, resourceVersion, addresses and pod CIDRs; nothing else', () => {
    assert.deepEqual(slimNode(fullNode('a', '10.0.0.1', 7)), slimOf('a', '10.0.0.1', 7));
  });
  it('shares nothing with the original object', () => {
    const n = fullNode('a', '10.0.0.1', 7);
    const s = slimNode(n);
    n.metadata.name = 'changed';
    n.status.addresses[0]!.address = '10.9.9.9';
    n.spec.podCIDRs.push('10.1.0.0/16');
    assert.deepEqual(s, slimOf('a', '10.0.0.1', 7));
  });
  const table: Array<[string, unknown, KubeNode]> = [
    ['null', null, {}],
    ['a string', 'node', {}],
    ['no spec, no status', { metadata: { name: 'x' } }, { metadata: { name: 'x', resourceVersion: undefined } }],
    ['addresses not an array', { metadata: { name: 'x' }, status: { addresses: { a: 1 } } }, { metadata: { name: 'x', resourceVersion: undefined } }],
    ['an address that is no object stays as it is', { status: { addresses: [7] } }, { status: { addresses: [7 as never] } }],
    ['metadata not an object', { metadata: 'x', spec: 3 }, {}],
  ];
  for (const [name, input, want] of table) it(name, () => assert.deepEqual(slimNode(input), want));
});

describe('parseNodeList', () => {
  const what = 'list nodes';
  const page = (items: unknown[], meta: Record<string, unknown> = { resourceVersion: '42', continue: 'tok' }) =>
    JSON.stringify({ kind: 'NodeList', apiVersion: 'v1', metadata: meta, items });

  it('an apiserver page: slim items, resourceVersion, continue', () => {
    const p = parseNodeList(page([fullNode('a', '10.0.0.1', 1), fullNode('b', '10.0.0.2', 2)]), what);
    assert.deepEqual(p, { items: [slimOf('a', '10.0.0.1', 1), slimOf('b', '10.0.0.2', 2)], resourceVersion: '42', continue: 'tok' });
  });
  it('an empty continue means the last page', () => {
    assert.equal(parseNodeList(page([], { resourceVersion: '5', continue: '' }), what).continue, undefined);
    assert.equal(parseNodeList(page([], { resourceVersion: '5' }), what).continue, undefined);
  });

  // Whatever the text, the result is the whole JSON.parse's, cut down.
  const wholeParse = (text: string) => {
    const l = JSON.parse(text) as { items: unknown[]; metadata?: { resourceVersion?: string; continue?: string } };
    return { items: l.items.map(slimNode), resourceVersion: l.metadata?.resourceVersion ?? '', continue: l.metadata?.continue || undefined };
  };
  /** The same parse with the body cut into chunks of `size` bytes. */
  const chunked = (text: string, size: number) => {
    const b = Buffer.from(text);
    const p = new NodeListParser(what);
    for (let i = 0; i < b.length; i += size) p.push(b.subarray(i, i + size));
    return p.end();
  };
  const texts: Array<[string, string]> = [
    ['pretty-printed', JSON.stringify({ metadata: { resourceVersion: '1' }, items: [fullNode('a', '10.0.0.1', 1)] }, null, 2)],
    ['items first, metadata last', JSON.stringify({ items: [fullNode('a', '10.0.0.1', 1)], metadata: { resourceVersion: '1' } })],
    [
      '"items" as a nested key and inside strings',
      JSON.stringify({ metadata: { resourceVersion: '1', items: ['x'], note: '"items":[1]' }, items: [fullNode('b', '10.0.0.2', 2)] }),
    ],
    [
      'escaped quotes and backslashes before quotes',
      JSON.stringify({ metadata: { resourceVersion: '\\"\\\\' }, items: [{ ...fullNode('c', '10.0.0.3', 3), x: '\\', y: '\\\\"' }] }),
    ],
    [
      'unicode escapes and non-ASCII',
      '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"\\u0061\\"bé中"},"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"}]}}]}',
    ],
    ['an empty list', page([])],
    [
      'whitespace around items and commas',
      '{ "metadata" : { "resourceVersion" : "1" } , "items" : [ {"metadata":{"name":"a"}} ,\n\t{"metadata":{"name":"b"}} ] }',
    ],
    ['an escaped key \\u0069tems (parsed whole)', '{"metadata":{"resourceVersion":"1"},"\\u0069tems":[{"metadata":{"name":"a"}}]}'],
    ['a string value "items" at the top level', '{"kind":"items","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"}}]}'],
    ['a long top-level key', `{"${'k'.repeat(100)}":"items","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"}}]}`],
    [
      'kept members as objects, skipped members around them, nested kept names inside skipped values',
      JSON.stringify({
        metadata: { resourceVersion: '1' },
        items: [
          {
            metadata: {
              labels: { name: 'x', addresses: '[' },
              name: { odd: true },
              managedFields: [{ fieldsV1: { 'f:status': { 'f:addresses': {} } } }],
              resourceVersion: ['2'],
            },
            spec: { taints: [{ key: '}' }], podCIDRs: { a: 1 }, podCIDR: ['x'] },
            status: { images: [{ names: ['"]}\\'] }], addresses: [{ type: 'InternalIP', address: '10.0.0.1' }, 'odd', null], conditions: [[[]]] },
          },
        ],
      }),
    ],
    [
      'a kept key written with an escape (\\u0065), a long key and duplicate keys',
      `{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"},"status":{"addresses":{"early":1},"${'x'.repeat(80)}":{"y":[1]},"addresses":[{"type":"InternalIP","address":"10.0.0.7"}],"images":[1,2],"addr\\u0065sses":[{"type":"InternalIP","address":"10.0.0.9"}]}}]}`,
    ],
    [
      'an item with no members to skip',
      '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a","resourceVersion":"3"},"status":{"addresses":[]}},{}]}',
    ],
  ];
  for (const [name, text] of texts) {
    it(`${name}: the same as a whole JSON.parse, however the body is cut into chunks`, () => {
      const want = wholeParse(text);
      assert.deepEqual(parseNodeList(text, what), want);
      for (const size of [1, 2, 3, 5, 7, 16, 64]) assert.deepEqual(chunked(text, size), want, `chunks of ${size} bytes`);
    });
  }
  it('a realistic page cut into network-sized chunks', () => {
    const text = page(Array.from({ length: 50 }, (_, i) => fullNode(`n${i}`, `10.0.${i}.1`, i)));
    const want = wholeParse(text);
    for (const size of [100, 1000, 16 * 1024, 64 * 1024]) assert.deepEqual(chunked(text, size), want);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['not JSON', 'Internal error <html>', /list nodes: the answer is not JSON \(21 bytes read\)/],
    ['truncated in an item', page([fullNode('a', '10.0.0.1', 1)]).slice(0, 120), /not JSON/],
    ['truncated after an item', page([fullNode('a', '10.0.0.1', 1)]).slice(0, -2), /not JSON/],
    ['a trailing comma in items', '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"}},]}', /not JSON/],
    ['a leading comma in items', '{"metadata":{"resourceVersion":"1"},"items":[,{"metadata":{"name":"a"}}]}', /not JSON/],
    ['two commas', '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"}},,{"metadata":{"name":"b"}}]}', /not JSON/],
    ['no comma between items', '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"}} {"metadata":{"name":"b"}}]}', /not JSON/],
    [
      'garbage between items',
      '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"}} x {"metadata":{"name":"b"}}]}',
      /no NodeList \(an item that is no object\)/,
    ],
    ['an item that is no object', '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a"}},null]}', /no NodeList \(an item that is no object\)/],
    ['an invalid item', '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":a}}]}', /not JSON/],
    ['an invalid kept member after a skipped one', '{"metadata":{"resourceVersion":"1"},"items":[{"status":{"images":[{}],"addresses":[x]}}]}', /not JSON/],
    ['a skipped member left open', '{"metadata":{"resourceVersion":"1"},"items":[{"status":{"images":[{"a":1]}}]}', /not JSON/],
    ['a skipped member closed too often', '{"metadata":{"resourceVersion":"1"},"items":[{"status":{"images":[]]}}]}', /not JSON/],
    ['garbage after the list', `${page([])} x`, /not JSON/],
    ['a second "items" key', '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"first"}}],"items":[]}', /no NodeList \(a second "items" key\)/],
    ['no items', '{"kind":"Status","metadata":{}}', /the answer is no NodeList \(no items\)/],
    ['items not an array', '{"metadata":{},"items":{"a":1}}', /the answer is no NodeList/],
    ['items null', '{"metadata":{},"items":null}', /the answer is no NodeList/],
    ['null', 'null', /the answer is no NodeList/],
    ['an array', '[{"metadata":{}}]', /the answer is no NodeList/],
    ['an empty body', '', /not JSON/],
  ];
  for (const [name, text, re] of bad) {
    it(`${name}: a retryable KubeApiError`, () => {
      assert.throws(
        () => parseNodeList(text, what),
        (err: unknown) => {
          assert.ok(err instanceof KubeApiError, String(err));
          assert.equal(err.retryable, true);
          assert.match(err.message, re);
          return true;
        },
      );
    });
  }
});

describe('listAll', () => {
  it('cuts each page down as it arrives and follows the continue tokens', async () => {
    const calls: ListOptions[] = [];
    const pages: ListPage[] = [
      { items: [fullNode('a', '10.0.0.1', 1)], resourceVersion: '10', continue: 'p2' },
      { items: [fullNode('b', '10.0.0.2', 2)], resourceVersion: '10', continue: 'p3' },
      { items: [fullNode('c', '10.0.0.3', 3)], resourceVersion: '10' },
    ];
    const api: NodeApi = {
      list: (o) => (calls.push(o), Promise.resolve(pages[calls.length - 1]!)),
      watch: () => Promise.reject(new Error('not used')),
    };
    let pagesSeen = 0;
    const r = await listAll({
      api,
      clock: systemClock,
      labelSelector: 'pool=a',
      pageSize: 1,
      requestTimeoutMs: 10_000,
      isCurrent: () => true,
      onRequest: () => {},
      onPage: () => pagesSeen++,
    });
    assert.deepEqual(r, { items: [slimOf('a', '10.0.0.1', 1), slimOf('b', '10.0.0.2', 2), slimOf('c', '10.0.0.3', 3)], resourceVersion: '10' });
    assert.deepEqual(
      calls.map((c) => [c.labelSelector, c.limit, c.continue]),
      [
        ['pool=a', 1, undefined],
        ['pool=a', 1, 'p2'],
        ['pool=a', 1, 'p3'],
      ],
    );
    assert.equal(pagesSeen, 3);
  });
});

describe('Reflector', () => {
  it('hands on only the slim parts of listed and watched Nodes', async () => {
    let emit: ((e: { type: 'ADDED' | 'MODIFIED'; object: unknown }) => void) | undefined;
    const api: NodeApi = {
      list: () => Promise.resolve({ items: [fullNode('a', '10.0.0.1', 1)], resourceVersion: '5' }),
      watch: (_o, onEvent) => ((emit = onEvent), Promise.resolve({ abort: () => {} })),
    };
    const replaced: KubeNode[][] = [];
    const applied: KubeNode[] = [];
    const r = new Reflector({
      api,
      clock: systemClock,
      handler: { replace: (items) => replaced.push(items), apply: (_t, n) => applied.push(n), unreachable: () => {} },
    });
    r.start();
    try {
      while (!emit) await new Promise((res) => setImmediate(res));
      emit({ type: 'MODIFIED', object: fullNode('a', '10.0.0.9', 6) });
      assert.deepEqual(replaced, [[slimOf('a', '10.0.0.1', 1)]]);
      assert.deepEqual(applied, [slimOf('a', '10.0.0.9', 6)]);
      assert.equal(r.stats().resourceVersion, '6');
    } finally {
      r.stop();
    }
  });
});

// ---- createClientNodeApi().list against a local server playing the apiserver ----

type Answer = { status: number; body: string };
let server: Server;
let port: number;
const requests: Array<{ url: URL; headers: IncomingMessage['headers'] }> = [];
let answer: (url: URL) => Answer = () => ({ status: 500, body: '' });

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push({ url, headers: req.headers });
    const a = answer(url);
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'local-list-token' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

const status = (code: number, reason: string, message: string) =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

describe('createClientNodeApi().list', () => {
  it('sends the query and the credentials; pages through continue tokens', async () => {
    requests.length = 0;
    answer = (url) => {
      const cont = url.searchParams.get('continue');
      return cont === null
        ? {
            status: 200,
            body: JSON.stringify({ kind: 'NodeList', metadata: { resourceVersion: '77', continue: 'next page' }, items: [fullNode('a', '10.0.0.1', 70)] }),
          }
        : { status: 200, body: JSON.stringify({ kind: 'NodeList', metadata: { resourceVersion: '77' }, items: [fullNode('b', '10.0.0.2', 71)] }) };
    };
    const api = createClientNodeApi(kubeConfig(), { label: 'local' });
    const r = await listAll({
      api,
      clock: systemClock,
      labelSelector: 'pool=a',
      pageSize: 1,
      requestTimeoutMs: 10_000,
      isCurrent: () => true,
      onRequest: () => {},
      onPage: () => {},
    });
    assert.deepEqual(r, { items: [slimOf('a', '10.0.0.1', 70), slimOf('b', '10.0.0.2', 71)], resourceVersion: '77' });
    assert.deepEqual(
      requests.map((q) => [
        q.url.pathname,
        q.url.searchParams.get('labelSelector'),
        q.url.searchParams.get('limit'),
        q.url.searchParams.get('continue'),
        q.url.searchParams.has('watch'),
      ]),
      [
        ['/api/v1/nodes', 'pool=a', '1', null, false],
        ['/api/v1/nodes', 'pool=a', '1', 'next page', false],
      ],
    );
    for (const q of requests) {
      assert.equal(q.headers.authorization, 'Bearer local-list-token');
      assert.equal(q.headers.accept, 'application/json');
    }
  });

  it('leaves out a selector, limit and continue that are not set', async () => {
    requests.length = 0;
    answer = () => ({ status: 200, body: JSON.stringify({ metadata: { resourceVersion: '1' }, items: [] }) });
    const page = await createClientNodeApi(kubeConfig()).list({ labelSelector: '' });
    assert.deepEqual(page, { items: [], resourceVersion: '1', continue: undefined });
    assert.equal(requests[0]!.url.search, '');
  });

  const errors: Array<[string, Answer, new (...a: never[]) => Error, RegExp]> = [
    [
      '410 on a continue token',
      { status: 410, body: status(410, 'Expired', 'The provided continue parameter is too old') },
      KubeGoneError,
      /cluster "local": list nodes: HTTP 410 \(Expired: The provided continue parameter is too old\)/,
    ],
    [
      '403',
      { status: 403, body: status(403, 'Forbidden', 'nodes is forbidden: User "x" cannot list resource "nodes"') },
      KubeForbiddenError,
      /list nodes: HTTP 403 \(Forbidden: nodes is forbidden/,
    ],
    ['401 without a Status body', { status: 401, body: 'Unauthorized' }, KubeForbiddenError, /list nodes: HTTP 401$/],
    ['500', { status: 500, body: status(500, 'InternalError', 'etcd is down') }, KubeUnreachableError, /list nodes: HTTP 500 \(InternalError: etcd is down\)/],
    ['200 with a body that is no NodeList', { status: 200, body: '<html>proxy</html>' }, KubeApiError, /cluster "local": list nodes: the answer is not JSON/],
    [
      '200 with a truncated NodeList',
      { status: 200, body: '{"metadata":{"resourceVersion":"1"},"items":[{"metadata":' },
      KubeApiError,
      /cluster "local": list nodes: the answer is not JSON/,
    ],
  ];
  for (const [name, a, type, re] of errors) {
    it(`${name}: ${type.name}`, async () => {
      answer = () => a;
      const api = createClientNodeApi(kubeConfig(), { label: 'local' });
      await assert.rejects(api.list({ limit: 500, continue: 'old' }), (err: unknown) => {
        assert.ok(err instanceof type, String(err));
        assert.match(err.message, re);
        assert.doesNotMatch(err.message, /local-list-token/);
        return true;
      });
    });
  }

  it('an unreachable server: KubeUnreachableError', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:9', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
      currentContext: 'c',
    });
    await assert.rejects(createClientNodeApi(kc).list({}), (err: unknown) => err instanceof KubeUnreachableError && /^list nodes: /.test(err.message));
  });

  it('an aborted request: KubeUnreachableError', async () => {
    answer = () => ({ status: 200, body: JSON.stringify({ metadata: { resourceVersion: '1' }, items: [] }) });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(createClientNodeApi(kubeConfig()).list({ signal: ac.signal }), (err: unknown) => err instanceof KubeUnreachableError);
  });
});

// Reflector + KubeNodeSource against a fake NodeApi and a fake clock: nothing sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeNodeSource, toNodeInfo } from '../../src/kube/nodeSource.ts';
import { KubeForbiddenError, KubeGoneError, KubeUnreachableError } from '../../src/kube/errors.ts';
import type { KubeNode, ListOptions, ListPage, NodeApi, WatchEvent, WatchHandle, WatchOptions } from '../../src/kube/nodeApi.ts';
import { FakeClock } from '../fakes/clock.ts';

class FakeWatch implements WatchHandle {
  aborted = false;
  readonly options: WatchOptions;
  private readonly onEvent: (e: WatchEvent) => void;
  private readonly onDone: (err: unknown) => void;
  constructor(options: WatchOptions, onEvent: (e: WatchEvent) => void, onDone: (err: unknown) => void) {
    this.options = options;
    this.onEvent = onEvent;
    this.onDone = onDone;
  }
  abort(): void {
    this.aborted = true;
  }
  emit(type: WatchEvent['type'], object: unknown): void {
    this.onEvent({ type, object });
  }
  end(err: unknown = null): void {
    this.onDone(err);
  }
}

class FakeApi implements NodeApi {
  rv = 100;
  readonly nodes = new Map<string, KubeNode>();
  readonly lists: ListOptions[] = [];
  readonly watches: FakeWatch[] = [];
  listFailures: unknown[] = [];
  watchFailures: unknown[] = [];
  failAllLists: unknown = null;
  failAllWatches: unknown = null;

  list(o: ListOptions): Promise<ListPage> {
    this.lists.push(o);
    const f = this.failAllLists ?? this.listFailures.shift();
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- fails with what the test queued, as client-node does (not always an Error)
    if (f) return Promise.reject(f);
    const all = [...this.nodes.values()].sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!));
    const start = o.continue ? Number(o.continue) : 0;
    const end = o.limit ? start + o.limit : all.length;
    return Promise.resolve({
      items: structuredClone(all.slice(start, end)),
      resourceVersion: String(this.rv),
      continue: end < all.length ? String(end) : undefined,
    });
  }

  watch(o: WatchOptions, onEvent: (e: WatchEvent) => void, onDone: (err: unknown) => void): Promise<WatchHandle> {
    const w = new FakeWatch(o, onEvent, onDone);
    this.watches.push(w);
    const f = this.failAllWatches ?? this.watchFailures.shift();
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- fails with what the test queued, as client-node does (not always an Error)
    if (f) return Promise.reject(f);
    return Promise.resolve(w);
  }

  get watch0(): FakeWatch {
    const w = this.watches.at(-1);
    assert.ok(w, 'a watch was started');
    return w;
  }

  /** Server-side change; returns the object as a watch event would carry it. */
  put(n: KubeNode): KubeNode {
    this.rv++;
    const copy = structuredClone(n);
    copy.metadata = { ...copy.metadata, resourceVersion: String(this.rv) };
    this.nodes.set(copy.metadata.name!, copy);
    return structuredClone(copy);
  }
  del(name: string): KubeNode {
    this.rv++;
    const n = this.nodes.get(name)!;
    this.nodes.delete(name);
    return { ...n, metadata: { ...n.metadata, resourceVersion: String(this.rv) } };
  }
}

function node(name: string, ips: string[], extra: Record<string, unknown> = {}): KubeNode {
  return {
    metadata: { name, ...(extra.metadata as object) },
    spec: { podCIDRs: extra.podCIDRs as string[] | undefined },
    status: {
      addresses: [...ips.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: name }],
      ...(extra.status as object),
    },
  };
}

const bookmark = (rv: string) => ({ kind: 'Node', metadata: { resourceVersion: rv } });

function setup(opts: Partial<ConstructorParameters<typeof KubeNodeSource>[0]> = {}) {
  const clock = new FakeClock(0);
  const api = new FakeApi();
  const src = new KubeNodeSource({
    cluster: 'c1',
    api,
    clock,
    random: () => 1, // no jitter: backoff delays are exact; watch timeout = 2 × watchTimeoutSeconds
    pageSize: 2,
    watchTimeoutSeconds: 300,
    watchdogMs: 150_000,
    relistIntervalMs: 30 * 60_000,
    unreachableAfterMs: 60_000,
    backoff: { initialMs: 1000, maxMs: 16_000, resetAfterMs: 60_000 },
    ...opts,
  });
  let changes = 0;
  src.onChange(() => changes++);
  return { clock, api, src, changes: () => changes };
}

const names = (src: KubeNodeSource) => [...src.view().nodes.keys()].sort();

test('initial paginated list → synced, one onChange, watch from the list resourceVersion', async () => {
  const { clock, api, src, changes } = setup({ labelSelector: 'role=worker' });
  for (const n of ['a', 'b', 'c', 'd', 'e']) api.put(node(n, [`10.0.0.${n.charCodeAt(0) - 96}`]));
  assert.equal(src.view().synced, false);
  await src.start();
  const synced = src.whenSynced();
  await clock.advance(0);
  await synced;
  assert.equal(api.lists.length, 3, 'three pages of 2');
  assert.deepEqual(
    api.lists.map((l) => [l.limit, l.continue, l.labelSelector]),
    [
      [2, undefined, 'role=worker'],
      [2, '2', 'role=worker'],
      [2, '4', 'role=worker'],
    ],
  );
  const v = src.view();
  assert.equal(v.synced, true);
  assert.deepEqual(names(src), ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(v.nodes.get('a')?.addresses, [
    { type: 'InternalIP', address: '10.0.0.1' },
    { type: 'Hostname', address: 'a' },
  ]);
  assert.equal(changes(), 1);
  assert.equal(api.watches.length, 1);
  assert.deepEqual(api.watch0.options, { labelSelector: 'role=worker', resourceVersion: '105', allowWatchBookmarks: true, timeoutSeconds: 600 });
  await src.stop();
});

test('add / modify / delete events notify; heartbeats, labels and address order do not', async () => {
  const { clock, api, src, changes } = setup();
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  assert.equal(changes(), 1);
  const w = api.watch0;

  w.emit('ADDED', api.put(node('b', [])));
  assert.equal(changes(), 2, 'new node without IPs yet');
  w.emit('MODIFIED', api.put(node('b', ['10.0.0.2'])));
  assert.equal(changes(), 3, 'addresses filled in');
  assert.deepEqual(
    src
      .view()
      .nodes.get('b')
      ?.addresses.map((a) => a.address),
    ['10.0.0.2', 'b'],
  );

  const before = src.view();
  // kubelet heartbeat: conditions/images change, addresses do not
  w.emit('MODIFIED', api.put(node('b', ['10.0.0.2'], { status: { conditions: [{ type: 'Ready', lastHeartbeatTime: 'x' }], images: [] } })));
  // labels/annotations
  w.emit('MODIFIED', api.put(node('b', ['10.0.0.2'], { metadata: { labels: { x: 'y' }, annotations: { a: 'b' } } })));
  // same set in another order
  const reordered = api.put(node('b', ['10.0.0.2']));
  reordered.status!.addresses!.reverse();
  w.emit('MODIFIED', reordered);
  // re-ADDED identical (e.g. after a resumed watch)
  w.emit('ADDED', api.put(node('a', ['10.0.0.1'])));
  assert.equal(changes(), 3, 'no notification for irrelevant updates');
  assert.equal(src.stats().ignoredUpdates, 4);
  assert.equal(src.view().nodes.size, before.nodes.size);

  w.emit('MODIFIED', api.put(node('b', ['10.0.0.2'], { podCIDRs: ['10.244.1.0/24'] })));
  assert.equal(changes(), 4, 'podCIDRs are relevant');
  w.emit('DELETED', api.del('a'));
  assert.equal(changes(), 5);
  assert.deepEqual(names(src), ['b']);
  w.emit('DELETED', { metadata: { name: 'ghost', resourceVersion: '999' } });
  assert.equal(changes(), 5, 'deleting an unknown node changes nothing');
  assert.equal(src.stats().resourceVersion, '999');
  await src.stop();
});

test('view() is a stable snapshot between changes', async () => {
  const { clock, api, src } = setup();
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  const v1 = src.view();
  assert.equal(src.view(), v1);
  api.watch0.emit('ADDED', api.put(node('b', ['10.0.0.2'])));
  assert.notEqual(src.view(), v1);
  assert.equal(v1.nodes.size, 1, 'old snapshot unchanged');
  await src.stop();
});

test('410 as an ERROR event → relist, then watch from the new resourceVersion', async () => {
  const { clock, api, src, changes } = setup();
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  const w1 = api.watch0;
  // meanwhile the server moved on (the watch missed it)
  api.put(node('b', ['10.0.0.2']));
  w1.emit('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version: 1 (200)' });
  await clock.advance(0);
  assert.equal(w1.aborted, true);
  assert.equal(api.lists.length, 2, 'relisted immediately');
  assert.deepEqual(names(src), ['a', 'b']);
  assert.equal(changes(), 2);
  assert.equal(api.watch0.options.resourceVersion, String(api.rv));
  assert.equal(src.stats().gone, 1);
  await src.stop();
});

test('410 as the HTTP status of the watch request → relist', async () => {
  const { clock, api, src } = setup();
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  api.watch0.emit('BOOKMARK', bookmark('150'));
  await clock.advance(5_000);
  api.watchFailures.push(new KubeGoneError('watch nodes: HTTP 410'));
  api.watch0.end(null); // normal end → resume from 150 → refused with 410
  await clock.advance(0);
  assert.equal(api.watches.at(-2)?.options.resourceVersion, '150');
  assert.equal(api.lists.length, 2, 'relisted after the refused watch');
  assert.equal(api.watch0.options.resourceVersion, String(api.rv));
  await src.stop();
});

test('an expired continue token (410 mid-pagination) restarts the list from the first page', async () => {
  const { clock, api, src } = setup();
  for (const n of ['a', 'b', 'c']) api.put(node(n, ['10.0.0.1']));
  const realList = api.list.bind(api);
  let calls = 0;
  api.list = async (o) => {
    calls++;
    if (calls === 2) {
      api.lists.push(o);
      throw new KubeGoneError('list nodes: HTTP 410 (Expired)');
    }
    return realList(o);
  };
  await src.start();
  await clock.advance(0);
  assert.equal(src.view().synced, false);
  await clock.advance(1000);
  assert.deepEqual(
    api.lists.map((l) => l.continue),
    [undefined, '2', undefined, '2'],
  );
  assert.equal(src.view().synced, true);
  assert.deepEqual(names(src), ['a', 'b', 'c']);
  await src.stop();
});

test('a watch that ends normally resumes from the last resourceVersion, bookmarks included', async () => {
  const { clock, api, src } = setup();
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  const w1 = api.watch0;
  w1.emit('MODIFIED', api.put(node('a', ['10.0.0.1'], { status: { conditions: [] } }))); // rv 102
  w1.emit('BOOKMARK', bookmark('250'));
  await clock.advance(60_000);
  w1.end(null); // server timeout
  await clock.advance(0);
  assert.equal(api.lists.length, 1, 'no relist');
  assert.equal(api.watches.length, 2);
  assert.equal(api.watch0.options.resourceVersion, '250');
  assert.equal(src.stats().watchResumes, 1);
  assert.equal(src.view().synced, true);
  await src.stop();
});

test('a very short watch without events counts as an error and backs off', async () => {
  const { clock, api, src } = setup();
  await src.start();
  await clock.advance(0);
  api.watch0.end(null);
  await clock.advance(0);
  assert.equal(api.watches.length, 1, 'not restarted at once');
  await clock.advance(1000);
  assert.equal(api.watches.length, 2);
  assert.equal(src.stats().errors, 1);
  await src.stop();
});

test('errors back off exponentially, then the backoff resets after a healthy period', async () => {
  const { clock, api, src } = setup();
  api.put(node('a', ['10.0.0.1']));
  const boom = new KubeUnreachableError('list nodes: ECONNREFUSED');
  api.listFailures = [boom, boom, boom, boom];
  await src.start();
  const at: number[] = [];
  const seen = () => {
    while (at.length < api.lists.length) at.push(clock.now());
  };
  seen();
  for (let i = 0; i < 40; i++) {
    await clock.advance(500);
    seen();
  }
  seen();
  assert.deepEqual(at, [0, 1000, 3000, 7000, 15000], 'delays 1s, 2s, 4s, 8s');
  assert.equal(src.view().synced, true);

  // healthy for longer than resetAfterMs, then a failure: the delay starts from 1 s again
  await clock.advance(120_000);
  const w = api.watch0;
  const watchesBefore = api.watches.length;
  w.end(new KubeUnreachableError('watch nodes: ECONNRESET'));
  await clock.advance(999);
  assert.equal(api.watches.length, watchesBefore);
  await clock.advance(1);
  assert.equal(api.watches.length, watchesBefore + 1, 'retried after 1 s');
  assert.equal(api.watch0.options.resourceVersion, '101', 'watch retried from the last resourceVersion, no relist');
  assert.equal(api.lists.length, 5);
  await src.stop();
});

test('a 403 is retried with backoff and reported in stats', async () => {
  const { clock, api, src } = setup();
  api.listFailures = [new KubeForbiddenError('list nodes: HTTP 403 (Forbidden)', 403)];
  await src.start();
  await clock.advance(0);
  assert.equal(src.stats().lastError?.code, 'KSB_KUBE_FORBIDDEN');
  assert.equal(src.view().synced, false);
  await clock.advance(1000);
  assert.equal(src.view().synced, true);
  assert.equal(src.stats().lastError?.code, 'KSB_KUBE_FORBIDDEN', 'last error kept for /status');
  await src.stop();
});

test('the watchdog aborts a silent watch and restarts it; events and bookmarks keep it alive', async () => {
  const { clock, api, src } = setup();
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  const w1 = api.watch0;
  await clock.advance(100_000);
  w1.emit('BOOKMARK', bookmark('300'));
  await clock.advance(100_000);
  assert.equal(w1.aborted, false, 'a bookmark 100 s ago is not silence');
  await clock.advance(50_000);
  assert.equal(w1.aborted, true, 'silent for 150 s');
  assert.equal(src.stats().watchdogRestarts, 1);
  await clock.advance(1000);
  assert.equal(api.watches.length, 2);
  assert.equal(api.watch0.options.resourceVersion, '300');
  assert.equal(api.lists.length, 1);
  // the aborted watch's late callbacks are ignored
  w1.emit('ADDED', node('zombie', ['10.9.9.9']));
  w1.end(new Error('aborted'));
  assert.equal(src.view().nodes.has('zombie'), false);
  await src.stop();
});

test('a watch that never answers is given up after the request timeout', async () => {
  const { clock, api, src } = setup({ requestTimeoutMs: 20_000 });
  await src.start();
  await clock.advance(0);
  api.watch = () => new Promise<WatchHandle>(() => {}); // hangs forever
  api.watch0.end(null);
  await clock.advance(1000); // very-short-watch backoff
  await clock.advance(20_000);
  assert.equal(src.stats().watchdogRestarts, 1);
  await src.stop();
});

test('periodic relist replaces the map and notifies only when something relevant differs', async () => {
  const { clock, api, src, changes } = setup({ relistIntervalMs: 600_000, watchdogMs: 10_000_000 });
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  assert.equal(changes(), 1);
  await clock.advance(600_000);
  assert.equal(api.lists.length, 2);
  assert.equal(src.stats().periodicRelists, 1);
  assert.equal(changes(), 1, 'same content: no onChange');
  // a change the watch missed is repaired by the next relist
  api.put(node('a', ['10.0.0.7']));
  await clock.advance(600_000);
  assert.equal(api.lists.length, 3);
  assert.equal(changes(), 2);
  assert.deepEqual(src.view().nodes.get('a')?.addresses[0], { type: 'InternalIP', address: '10.0.0.7' });
  await src.stop();
});

test('unreachable for longer than the grace → synced=false (unknown, not empty), then back after a relist', async () => {
  const { clock, api, src, changes } = setup();
  api.put(node('a', ['10.0.0.1']));
  await src.start();
  await clock.advance(0);
  assert.equal(changes(), 1);
  const down = new KubeUnreachableError('watch nodes: ECONNREFUSED');
  api.failAllWatches = down;
  api.failAllLists = down;
  api.watch0.end(down);
  await clock.advance(59_000);
  assert.equal(src.view().synced, true, 'still within the grace period');
  await clock.advance(1_000);
  assert.equal(src.view().synced, false);
  assert.equal(changes(), 2, 'the flip notifies');
  assert.equal(src.view().nodes.size, 1, 'nodes kept, but meaningless while unsynced');
  await clock.advance(120_000);
  assert.equal(changes(), 2, 'no repeated notifications while down');
  const listsWhileDown = api.lists.length;
  assert.ok(listsWhileDown >= 1, 'after the grace, retries relist instead of resuming the watch');

  api.failAllWatches = null;
  api.failAllLists = null;
  await clock.advance(16_000);
  assert.equal(src.view().synced, true);
  assert.equal(changes(), 3, 'the flip back notifies');
  assert.ok(api.lists.length > listsWhileDown);
  await src.stop();
});

test('a short failure within the grace period does not flip synced', async () => {
  const { clock, api, src, changes } = setup();
  await src.start();
  await clock.advance(0);
  api.watchFailures = [new KubeUnreachableError('x'), new KubeUnreachableError('x')];
  api.watch0.end(new KubeUnreachableError('reset'));
  await clock.advance(10_000);
  assert.equal(src.view().synced, true);
  await clock.advance(120_000);
  assert.equal(src.view().synced, true);
  assert.equal(changes(), 1);
  await src.stop();
});

test('a non-410 ERROR event restarts the watch with backoff', async () => {
  const { clock, api, src } = setup();
  await src.start();
  await clock.advance(0);
  const w1 = api.watch0;
  w1.emit('ERROR', { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd' });
  assert.equal(w1.aborted, true);
  await clock.advance(1000);
  assert.equal(api.watches.length, 2);
  assert.equal(api.lists.length, 1);
  assert.equal(src.stats().lastError?.code, 'KSB_KUBE_UNREACHABLE');
  await src.stop();
});

test('stop() aborts the watch and silences everything', async () => {
  const { clock, api, src, changes } = setup();
  await src.start();
  await clock.advance(0);
  const w = api.watch0;
  await src.stop();
  assert.equal(w.aborted, true);
  w.emit('ADDED', node('late', ['10.0.0.9']));
  await clock.advance(10_000_000);
  assert.equal(changes(), 1);
  assert.equal(api.lists.length, 1);
});

test('toNodeInfo keeps only name, addresses and pod CIDRs', () => {
  assert.deepEqual(
    toNodeInfo({
      metadata: { name: 'n' },
      spec: { podCIDR: '10.244.0.0/24' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '10.0.0.1' },
          { type: 'ExternalIP', address: '' },
        ],
      },
    }),
    {
      name: 'n',
      addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
      podCIDRs: ['10.244.0.0/24'],
    },
  );
  assert.deepEqual(toNodeInfo({ metadata: { name: 'n' }, spec: { podCIDR: 'x', podCIDRs: ['10.244.0.0/24', 'fd00::/64'] } })?.podCIDRs, [
    '10.244.0.0/24',
    'fd00::/64',
  ]);
  assert.equal(toNodeInfo({ metadata: {} }), null);
});

// The watch stream's line bound (src/kube/watchStream.ts): the splitter's decision table, then the
// real client code (client-node's auth and dispatcher, undici fetch) against a local HTTP server
// that plays the apiserver: an oversized event line aborts that watch with
// KSB_KUBE_WATCH_LINE_TOO_LONG, the reflector restarts it with backoff, and the nodes it knew stay.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createClientNodeApi } from '../../src/kube/clientNodeApi.ts';
import { KubeNodeSource } from '../../src/kube/nodeSource.ts';
import { LineSplitter, LineTooLong, MAX_WATCH_LINE_BYTES } from '../../src/kube/watchStream.ts';

describe('LineSplitter', () => {
  const split = (max: number, chunks: string[]): string[] | string => {
    const s = new LineSplitter(max);
    const out: string[] = [];
    try {
      for (const c of chunks) out.push(...s.push(Buffer.from(c)).map(String));
      const last = s.end();
      if (last) out.push(String(last));
      return out;
    } catch (err) {
      assert.ok(err instanceof LineTooLong);
      return `too long after ${out.length} lines`;
    }
  };
  const table: Array<[string, number, string[], string[] | string]> = [
    ['one chunk, two lines', 10, ['ab\ncd\n'], ['ab', 'cd']],
    ['a line across chunks', 10, ['ab', 'cd', 'e\nf'], ['abcde', 'f']],
    ['empty lines are kept', 10, ['\n\na\n'], ['', '', 'a']],
    ['exactly max bytes', 4, ['abcd\n'], ['abcd']],
    ['max + 1 in one chunk', 4, ['ab\nabcde\n'], 'too long after 0 lines'],
    ['max + 1 across chunks', 4, ['ab\n', 'abc', 'de\n'], 'too long after 1 lines'],
    ['refused before its newline arrives', 4, ['ok\n', 'abcde'], 'too long after 1 lines'],
    ['a last line without newline', 4, ['a\nbcd'], ['a', 'bcd']],
    ['the newline does not count', 3, ['abc\n', 'def\n'], ['abc', 'def']],
  ];
  for (const [name, max, chunks, want] of table) it(name, () => assert.deepEqual(split(max, chunks), want));
  it('the default bound is 4 MiB', () => assert.equal(MAX_WATCH_LINE_BYTES, 4 * 1024 * 1024));
});

// ---- a local apiserver: list once, then watches scripted per request ----

const node = (name: string, ip: string, rv: number) => ({
  metadata: { name, resourceVersion: String(rv) },
  status: { addresses: [{ type: 'InternalIP', address: ip }] },
});

type WatchScript = (res: ServerResponse, req: IncomingMessage) => void;
let server: Server;
let port: number;
const watches: WatchScript[] = [];
const watchRequests: URL[] = [];
let sentHuge = 0;
let hugeClosed: Promise<void> = Promise.resolve();

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.searchParams.get('watch') === 'true') {
      watchRequests.push(url);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders(); // as the apiserver does: the watch is open before its first event
      const script = watches.shift();
      if (script) script(res, req);
      return; // otherwise stay open and silent
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'NodeList', metadata: { resourceVersion: '10' }, items: [node('a', '10.0.0.1', 9)] }));
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
    users: [{ name: 'u', token: 'local-test-token' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

/** Writes one good event, then an endless line in 64 KiB chunks until the client goes away. */
const hugeLine: WatchScript = (res, req) => {
  res.write(`${JSON.stringify({ type: 'MODIFIED', object: node('b', '10.0.0.2', 11) })}\n`);
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  hugeClosed = new Promise<void>((resolve) => req.socket.once('close', () => resolve()));
  const pump = () => {
    while (!req.socket.destroyed && sentHuge < 64 * 1024 * 1024) {
      sentHuge += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
  };
  res.write('{"type":"MODIFIED","object":{"metadata":{"name":"b"},"pad":"');
  pump();
};

describe('createClientNodeApi().watch with an oversized line', () => {
  it('aborts that watch with KSB_KUBE_WATCH_LINE_TOO_LONG, without reading the rest', async () => {
    sentHuge = 0;
    watches.push(hugeLine);
    const api = createClientNodeApi(kubeConfig(), { label: 'local', watchInactivityMs: 60_000, maxWatchLineBytes: 1024 * 1024 });
    const events: string[] = [];
    const done = new Promise<unknown>((resolve) => {
      void api.watch(
        { resourceVersion: '10', allowWatchBookmarks: true, timeoutSeconds: 60 },
        (e) => events.push(`${e.type} ${(e.object as { metadata: { name: string } }).metadata.name}`),
        resolve,
      );
    });
    const err = (await done) as { code?: string; message?: string; retryable?: boolean };
    assert.equal(err.code, 'KSB_KUBE_WATCH_LINE_TOO_LONG');
    assert.equal(err.retryable, true);
    assert.match(err.message ?? '', /^cluster "local": watch nodes: an event line longer than 1048576 bytes/);
    assert.deepEqual(events, ['MODIFIED b'], 'the good event before it was delivered');
    await hugeClosed;
    assert.ok(sentHuge < 16 * 1024 * 1024, `the client hung up early (server wrote ${sentHuge} bytes)`);
  });
});

describe('createClientNodeApi().watch, other endings', () => {
  it('a silent stream ends with a timeout (KSB_KUBE_UNREACHABLE) after watchInactivityMs', async () => {
    const api = createClientNodeApi(kubeConfig(), { label: 'local', watchInactivityMs: 300 });
    const err = await new Promise<{ code?: string; message?: string } | undefined>((resolve) => {
      void api.watch(
        { resourceVersion: '10', allowWatchBookmarks: true, timeoutSeconds: 60 },
        () => {},
        (e) => resolve(e as { code?: string; message?: string } | undefined),
      );
    });
    assert.equal(err?.code, 'KSB_KUBE_UNREACHABLE');
    assert.match(err?.message ?? '', /watch nodes: timed out/);
  });

  it('the server ending the stream normally → onDone(null); a line that is not JSON → an error', async () => {
    watches.push((res) => res.end(`${JSON.stringify({ type: 'ADDED', object: node('c', '10.0.0.3', 12) })}\n`));
    watches.push((res) => res.end('this is not json\n'));
    const api = createClientNodeApi(kubeConfig(), { label: 'local', watchInactivityMs: 60_000 });
    const run = () =>
      new Promise<unknown>((resolve) => {
        void api.watch({ resourceVersion: '10', allowWatchBookmarks: true, timeoutSeconds: 60 }, () => {}, resolve);
      });
    assert.equal(await run(), null);
    const bad = (await run()) as { code?: string; message?: string };
    assert.equal(bad.code, 'KSB_KUBE_API');
    assert.match(bad.message ?? '', /not JSON/);
  });
});

describe('KubeNodeSource over the real client', () => {
  it('the oversized watch is restarted with backoff; the nodes known before stay', async () => {
    watches.push(hugeLine);
    const source = new KubeNodeSource({
      cluster: 'local',
      api: createClientNodeApi(kubeConfig(), { label: 'local', watchInactivityMs: 60_000, maxWatchLineBytes: 256 * 1024 }),
      backoff: { initialMs: 50, maxMs: 200, resetAfterMs: 60_000 },
      watchTimeoutSeconds: 60,
      watchdogMs: 60_000,
      relistIntervalMs: 0,
    });
    const before = watchRequests.length;
    await source.start();
    try {
      await source.whenSynced();
      const deadline = Date.now() + 20_000;
      while (watchRequests.length < before + 2 || source.stats().lastError?.code !== 'KSB_KUBE_WATCH_LINE_TOO_LONG') {
        assert.ok(Date.now() < deadline, `no restart: ${watchRequests.length - before} watches, ${JSON.stringify(source.stats().lastError)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const view = source.view();
      assert.equal(view.synced, true);
      assert.deepEqual([...view.nodes.keys()].sort(), ['a', 'b'], 'a from the list and b from the good event stay');
      assert.equal(view.nodes.get('a')!.addresses[0]!.address, '10.0.0.1');
      const resumed = watchRequests.at(-1)!;
      assert.equal(resumed.searchParams.get('resourceVersion'), '11', 'the restart resumes after the last good event');
      assert.ok(source.stats().errors >= 1);
    } finally {
      await source.stop();
    }
  });
});

// The bridge's HTTP endpoint, running for real (separate process, real kube-apiserver, a publish
// held by the safety policy) and attacked the ways a browser page or another local user could:
// a foreign Host (DNS rebinding), a cross-site POST (Origin, text/plain), no token, a wrong token,
// a body too big. None releases the hold; the right token through `kube-salt-bridge release`
// does. The bridge runs with --dry-run: what it would fire is its output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { HTTP_TOKEN, runBridgeCli, startBridge, type BridgeProc } from '../harness/bridge.ts';
import { testKeys } from '../harness/keys.ts';
import { stopInOrder, sleep, waitFor } from '../harness/proc.ts';
import type { SaltStack } from '../harness/salt.ts';

const KEYS = testKeys('trust-http e2e');
const TAG = 'kube-salt-bridge/cluster/guarded/nodes';
const NO_SALT = { apiUrl: 'http://127.0.0.1:9', apiCaFile: undefined, bridge: { username: 'ksb', password: 'unused-in-dry-run' } } as unknown as SaltStack;

let kube: KubeCluster;
let bridge: BridgeProc;
let port: number;

interface Reply {
  status: number;
  body: string;
}

/** A raw request: Host and every other header exactly as given (fetch would not let us set Host). */
function raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers }, setHost: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const heldCluster = async () => (await bridge.status()).clusters[0] as { held?: { digest: string; reasons: string[] }; nodes: number };
const wouldFire = () =>
  bridge.logs.filter((l) => (l as { dryRun?: boolean }).dryRun === true && (l as { event?: { tag: string } }).event?.tag === TAG) as Array<{
    event: { data: { ipv4: string[] } };
    msg: string;
  }>;

before(
  async () => {
    kube = await startKube('guarded');
    for (let i = 1; i <= 3; i++) await kube.createNode(`g${i}`, [{ type: 'InternalIP', address: `10.50.0.${i}` }]);
    // minNodes 5 with 3 nodes: the first publish is held until an operator releases it.
    bridge = await startBridge(
      {
        clusters: [{ name: 'guarded', kube, families: ['ipv4'], safety: { minNodes: 5, maxShrinkFraction: 0.5 } }],
        salt: NO_SALT,
        privateKey: KEYS.privateText,
        http: { allowedHosts: ['bridge.internal.test'] },
      },
      ['--dry-run'],
    );
    port = Number(new URL(bridge.url).port);
    // Held as 'unsynced' until the first list, then for 'min-nodes'.
    await waitFor('the publish is held for min-nodes', async () => (await heldCluster().catch(() => undefined))?.held?.reasons.includes('min-nodes'), 60_000);
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(bridge, kube));

test('the bridge holds the publish (minNodes) and names its digest', async () => {
  const c = await heldCluster();
  assert.deepEqual(c.held!.reasons, ['min-nodes']);
  assert.equal(c.nodes, 3);
  assert.equal(wouldFire().length, 0);
});

test('a foreign Host is refused on every endpoint; IP literals, localhost and allowedHosts are served', async () => {
  for (const host of ['evil.example', `rebind.evil.example:${port}`, `127.0.0.1.nip.evil:${port}`, `localhost.evil.example:${port}`]) {
    for (const path of ['/healthz', '/status', '/metrics']) {
      const r = await raw('GET', path, { host });
      assert.equal(r.status, 421, `${host} ${path}`);
      assert.match(r.body, /host not allowed/);
    }
    const rel = await raw('POST', '/release?cluster=guarded', { host, 'content-type': 'application/json', authorization: `Bearer ${HTTP_TOKEN}` }, '{}');
    assert.equal(rel.status, 421, `a rebinding page cannot release even with the token (${host})`);
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `bridge.internal.test:${port}`, 'BRIDGE.internal.test']) {
    assert.equal((await raw('GET', '/healthz', { host })).status, 200, host);
  }
  assert.equal((await heldCluster()).held !== undefined, true, 'still held');
});

test('a cross-site POST (Origin, text/plain, as a form or no-cors fetch sends it) is refused and the hold stays', async () => {
  const simple = await raw('POST', '/release?cluster=guarded', { origin: 'https://evil.example', 'content-type': 'text/plain' }, 'cluster=guarded');
  assert.equal(simple.status, 403);
  assert.match(simple.body, /cross-origin/);
  const withToken = await raw(
    'POST',
    '/release?cluster=guarded',
    { origin: 'https://evil.example', 'content-type': 'application/json', authorization: `Bearer ${HTTP_TOKEN}` },
    '{}',
  );
  assert.equal(withToken.status, 403, 'an Origin is refused even with the right token');
  const textPlain = await raw('POST', '/release?cluster=guarded', { 'content-type': 'text/plain', authorization: `Bearer ${HTTP_TOKEN}` }, '{}');
  assert.equal(textPlain.status, 415);
  await sleep(1000);
  assert.ok((await heldCluster()).held, 'the hold stays');
  assert.equal(wouldFire().length, 0, 'nothing would be fired');
});

test('no token or a wrong one: 401, also through the CLI; the hold stays', async () => {
  const none = await raw('POST', '/release?cluster=guarded', { 'content-type': 'application/json' }, '{}');
  assert.equal(none.status, 401);
  const wrong = await raw('POST', '/release?cluster=guarded', { 'content-type': 'application/json', authorization: 'Bearer guessed-token-0123456789' }, '{}');
  assert.equal(wrong.status, 401);
  assert.doesNotMatch(wrong.body, /guessed-token|harness-http-token/);
  const cli = await runBridgeCli(['release', 'guarded', '--url', bridge.url], {}, { timeoutMs: 30_000 });
  assert.equal(cli.code, 1, `${cli.stdout}${cli.stderr}`);
  assert.match(cli.stderr, /refused the release: HTTP 401/);
  assert.ok((await heldCluster()).held);
  assert.equal(wouldFire().length, 0);
});

test('a body over 4 KiB → 413', async () => {
  const big = JSON.stringify({ cluster: 'guarded', pad: 'x'.repeat(5000) });
  const r = await raw(
    'POST',
    '/release',
    { 'content-type': 'application/json', authorization: `Bearer ${HTTP_TOKEN}`, 'content-length': String(big.length) },
    big,
  );
  assert.equal(r.status, 413);
  const chunked = await raw(
    'POST',
    '/release',
    { 'content-type': 'application/json', authorization: `Bearer ${HTTP_TOKEN}`, 'transfer-encoding': 'chunked' },
    big,
  );
  assert.equal(chunked.status, 413);
  assert.ok((await heldCluster()).held);
  assert.equal(wouldFire().length, 0);
});

test('the right token through `kube-salt-bridge release --config` releases the held list', async () => {
  const config = JSON.parse(readFileSync(bridge.configFile, 'utf8')) as { http: { tokenFile: string } };
  assert.equal(readFileSync(config.http.tokenFile, 'utf8').trim(), HTTP_TOKEN, 'the token comes from http.tokenFile');
  const { held } = await heldCluster();
  const r = await runBridgeCli(['release', 'guarded', '--config', bridge.configFile, '--digest', held!.digest], {}, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /guarded: releasing held list sha256:/);
  assert.ok(!(r.stdout + r.stderr).includes(HTTP_TOKEN), 'the CLI never prints the token');
  const fired = (await bridge.waitLog('the released list', (l) => l.dryRun === true && (l as { event?: { tag: string } }).event?.tag === TAG, 30_000)) as {
    event: { data: { ipv4: string[] } };
  };
  assert.deepEqual(fired.event.data.ipv4, ['10.50.0.1', '10.50.0.2', '10.50.0.3']);
  await waitFor('the hold is gone', async () => ((await heldCluster()).held ? undefined : true), 10_000);
  assert.ok(!bridge.rawOutput().includes(HTTP_TOKEN), 'the token never reaches the bridge log');
});

import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { validate, type Config } from '../../src/config/index.ts';
import { Controller } from '../../src/controller/controller.ts';
import { StateStore } from '../../src/controller/stateStore.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { verifyPayload } from '../../src/plan/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { FakeNodeSource } from '../fakes/nodeSource.ts';
import { FakeSink } from '../fakes/sink.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('controller unit tests');

function makeConfig(dir: string, extra: Record<string, unknown> = {}): Config {
  const kc = join(dir, 'kc.yaml');
  writeFileSync(kc, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
    users: [{ name: 'u', user: { token: 'x' } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
  }));
  return validate({
    salt: { url: 'http://127.0.0.1:8000', username: 'u', eauth: 'file' },
    clusters: [{ name: 'prod', kubeconfig: kc, families: ['ipv4'], safety: { maxShrinkFraction: 0.5, minNodes: 1 } }],
    publish: { minIntervalMs: 100, maxDelayMs: 1000, resyncIntervalSeconds: 600, retry: { initialMs: 1000, maxMs: 10_000 } },
    state: { dir: join(dir, 'state') },
    http: { listen: '127.0.0.1:0' },
    ...extra,
  }, { source: join(dir, 'config.yaml'), env: { KSB_SALT_API_PASSWORD: 'pw', KSB_SIGNING_KEY: KEYS.privateText }, hostname: 'h' });
}

let dir: string;
let clock: FakeClock;
let source: FakeNodeSource;
let sink: FakeSink;
let metrics: ReturnType<typeof createMetrics>;

function makeController(opts: { dryRun?: boolean } = {}) {
  const config = makeConfig(dir);
  const c = new Controller({
    config,
    sources: new Map([['prod', source]]),
    sink,
    store: new StateStore(config.state.dir),
    metrics: (metrics = createMetrics(false)),
    log: pino({ level: 'silent' }),
    clock,
    dryRun: opts.dryRun ?? false,
    ackTimeoutMs: 5000,
  });
  c.start();
  return c;
}

/** An active controller that has published one node (a: 10.0.0.1). */
async function publishedOnce(): Promise<Controller> {
  const c = makeController();
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(2000);
  return c;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ksb-ctl-'));
  clock = new FakeClock();
  source = new FakeNodeSource('prod');
  sink = new FakeSink();
});

test('publishes the full signed list once synced, coalescing a burst into one event', async () => {
  const c = makeController();
  c.setActive(true);
  await clock.advance(1000);
  assert.equal(sink.fired.length, 0, 'an unsynced cluster is unknown: nothing is published');
  source.put('a', '10.0.0.1');
  source.put('b', '10.0.0.2');
  source.setSynced(true);
  source.put('c', '10.0.0.3');
  await clock.advance(2000);
  assert.equal(sink.fired.length, 1);
  const ev = sink.fired[0]!;
  assert.equal(ev.tag, 'kube-salt-bridge/cluster/prod/nodes');
  assert.deepEqual(ev.data.ipv4, ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  assert.equal(ev.data.nodes, 3);
  assert.ok(verifyPayload(ev.data, KEYS.signer));
  await c.stop();
});

test('same state → nothing more is published (idempotency), a real change publishes a higher generation', async () => {
  const c = makeController();
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.put('b', '10.0.0.2');
  source.setSynced(true);
  await clock.advance(2000);
  source.put('a', '10.0.0.1'); // e.g. a heartbeat that reached the controller anyway
  await clock.advance(2000);
  assert.equal(sink.fired.length, 1);
  source.put('c', '10.0.0.3');
  await clock.advance(2000);
  assert.equal(sink.fired.length, 2);
  const [first, second] = sink.fired;
  assert.ok(second!.data.generation > first!.data.generation);
  assert.deepEqual(second!.data.added, ['10.0.0.3']);
  await c.stop();
});

test('a shrink beyond the limit is held until released with the held digest', async () => {
  const c = makeController();
  c.setActive(true);
  for (const n of ['a', 'b', 'c', 'd']) source.put(n, `10.0.0.${n.charCodeAt(0) - 96}`);
  source.setSynced(true);
  await clock.advance(2000);
  source.remove('a');
  source.remove('b');
  source.remove('c');
  await clock.advance(2000);
  assert.equal(sink.fired.length, 1, 'shrinking 4 → 1 is held');
  const st = c.status().clusters[0]!;
  assert.deepEqual(st.held?.reasons, ['shrink']);
  assert.equal(c.release('prod', 'sha256:not-it').released, false);
  assert.equal(c.release('prod', st.held!.digest).released, true);
  await clock.advance(100);
  assert.equal(sink.fired.length, 2);
  assert.deepEqual(sink.fired[1]!.data.ipv4, ['10.0.0.4']);
  await c.stop();
});

test('losing sync publishes nothing (unknown is not zero nodes)', async () => {
  const c = await publishedOnce();
  source.setSynced(false);
  await clock.advance(5000);
  assert.equal(sink.fired.length, 1);
  assert.deepEqual(c.status().clusters[0]!.held?.reasons, ['unsynced']);
  await c.stop();
});

test('a failed publish is retried with backoff', async () => {
  const c = makeController();
  c.setActive(true);
  sink.failNext = 2;
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(200);
  assert.equal(sink.fired.length, 0);
  assert.equal(c.status().clusters[0]!.lastError?.code, 'KSB_SALT_UNREACHABLE');
  await clock.advance(30_000);
  assert.equal(sink.fired.length, 1);
  assert.equal(c.status().clusters[0]!.lastError, undefined);
  await c.stop();
});

test('generation survives a restart through the state store and keeps increasing', async () => {
  let c = await publishedOnce();
  await c.stop();
  const g1 = sink.fired[0]!.data.generation;
  clock = new FakeClock(Date.parse('2026-11-22T09:00:00Z')); // the clock even went backwards
  source = new FakeNodeSource('prod');
  c = makeController();
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.put('b', '10.0.0.2');
  source.setSynced(true);
  await clock.advance(2000);
  assert.ok(sink.fired[1]!.data.generation > g1);
  await c.stop();
});

test('on start-up with an unchanged list the last generation is re-sent, not a new one', async () => {
  let c = await publishedOnce();
  await c.stop();
  c = makeController();
  c.setActive(true);
  await clock.advance(2000);
  assert.equal(sink.fired.length, 2);
  assert.equal(sink.fired[1]!.data.generation, sink.fired[0]!.data.generation);
  assert.equal(sink.fired[1]!.data.digest, sink.fired[0]!.data.digest);
  await c.stop();
});

test('not active (not leader): computes but fires nothing', async () => {
  const c = makeController();
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(5000);
  assert.equal(sink.fired.length, 0);
  c.setActive(true);
  await clock.advance(100);
  assert.equal(sink.fired.length, 1);
  await c.stop();
});

test('dry run fires nothing and persists nothing', async () => {
  const c = makeController({ dryRun: true });
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(2000);
  assert.equal(sink.fired.length, 0);
  assert.equal(new StateStore(join(dir, 'state')).load('prod'), undefined);
  await c.stop();
});

test('a failed or silent minion gets a targeted re-send; a restarted minion gets the current list', async () => {
  const c = await publishedOnce();
  const gen = sink.fired[0]!.data.generation;
  c.onBus({ kind: 'apply-started', jid: '1', minions: ['m1', 'm2', 'm3'], cluster: 'prod', generation: gen });
  c.onBus({ kind: 'apply-result', jid: '1', minion: 'm1', cluster: 'prod', generation: gen, digest: 'd', ok: true, changed: true, reason: 'applied' });
  c.onBus({ kind: 'apply-result', jid: '1', minion: 'm2', cluster: 'prod', generation: gen, digest: 'd', ok: false, changed: false, reason: 'ipset failed' });
  assert.deepEqual(c.status().clusters[0]!.minionsBehind, ['m2', 'm3']);
  await clock.advance(6000);
  const resends = sink.fired.slice(1);
  const targets = resends.map((e) => e.data.target);
  assert.ok(targets.includes('( I@kube_allowlist:clusters:prod ) and L@m2') || targets.includes('( I@kube_allowlist:clusters:prod ) and L@m2,m3'), targets.join(' | '));
  assert.ok(targets.some((t) => t.includes('m3')), 'the silent minion is re-sent too');
  assert.ok(resends.every((e) => e.data.generation === gen && verifyPayload(e.data, KEYS.signer)));
  const before = sink.fired.length;
  c.onBus({ kind: 'minion-start', minion: 'm9' });
  await clock.advance(10);
  assert.equal(sink.fired[before]!.data.target, '( I@kube_allowlist:clusters:prod ) and L@m9');
  await c.stop();
});

test('the periodic resync republishes the same generation; salt-api errors are counted by code', async () => {
  const c = await publishedOnce();
  assert.equal(sink.fired.length, 1);
  await clock.advance(600_000); // publish.resyncIntervalSeconds
  assert.equal(sink.fired.length, 2);
  assert.equal(sink.fired[1]!.data.generation, sink.fired[0]!.data.generation);
  assert.equal(sink.fired[1]!.data.digest, sink.fired[0]!.data.digest);
  sink.failNext = 1;
  source.put('b', '10.0.0.2');
  await clock.advance(100);
  assert.match(await metrics.registry.metrics(), /ksb_salt_api_errors_total\{code="KSB_SALT_UNREACHABLE"\} 1/);
  await c.stop();
});

test('a lone change is published at once, also when the node appeared just before its addresses', async () => {
  const c = await publishedOnce();
  await clock.advance(10_000); // quiet
  source.put('b'); // ADDED without addresses yet: pending, nothing to publish
  await clock.advance(5);
  assert.equal(sink.fired.length, 1);
  source.put('b', '10.0.0.2'); // MODIFIED: the addresses arrive
  await clock.advance(1);
  assert.equal(sink.fired.length, 2, 'no minInterval wait after a run that fired nothing');
  assert.deepEqual(sink.fired[1]!.data.ipv4, ['10.0.0.1', '10.0.0.2']);
  await c.stop();
});

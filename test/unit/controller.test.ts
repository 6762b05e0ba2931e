import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Config } from '../../src/config/index.ts';
import { Controller, STREAM_WAIT_MS } from '../../src/controller/controller.ts';
import { MAX_JOB_REFIRES } from '../../src/controller/minions.ts';
import { StateStore } from '../../src/controller/stateStore.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { Writable } from 'node:stream';
import { buildPayload, verifyPayload } from '../../src/plan/index.ts';
import { interpretBusEvent } from '../../src/salt/index.ts';
import { formatStatus, type StatusDoc } from '../../src/commands/status.ts';
import type { AllowListPayload, BusEvent } from '../../src/seams.ts';
import { FakeClock } from '../fakes/clock.ts';
import { unitConfig } from '../fakes/config.ts';
import { FakeNodeSource } from '../fakes/nodeSource.ts';
import { FakeSink } from '../fakes/sink.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('controller unit tests');

function makeConfig(dir: string, extra: Record<string, unknown> = {}): Config {
  return unitConfig(dir, KEYS.privateText, (kc) => ({
    salt: { url: 'http://127.0.0.1:8000', username: 'u', eauth: 'file' },
    clusters: [{ name: 'prod', kubeconfig: kc, families: ['ipv4'], safety: { maxShrinkFraction: 0.5, minNodes: 1 } }],
    publish: { minIntervalMs: 100, maxDelayMs: 1000, resyncIntervalSeconds: 600, retry: { initialMs: 1000, maxMs: 10_000 } },
    state: { dir: join(dir, 'state') },
    http: { listen: '127.0.0.1:0' },
    ...extra,
  }));
}

let dir: string;
let clock: FakeClock;
let source: FakeNodeSource;
let sink: FakeSink;
let metrics: ReturnType<typeof createMetrics>;

let logs: Array<Record<string, unknown>>;

function makeController(opts: { dryRun?: boolean; config?: Record<string, unknown>; busStream?: boolean; signed?: (message: string) => void } = {}) {
  const validated = makeConfig(dir, opts.config);
  const signer = validated.signing.signer;
  const seen = opts.signed;
  const config: Config = seen
    ? { ...validated, signing: { ...validated.signing, signer: { ...signer, keyId: signer.keyId, sign: (m: string) => (seen(m), signer.sign(m)) } } }
    : validated;
  logs = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const c = new Controller({
    config,
    sources: new Map([['prod', source]]),
    sink,
    store: new StateStore(config.state.dir),
    metrics: (metrics = createMetrics(false)),
    log: pino({ level: 'debug' }, stream),
    clock,
    dryRun: opts.dryRun ?? false,
    ackTimeoutMs: 5000,
    busStream: opts.busStream ?? false,
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

/** Publishes a, b, c, d, then removes a, b and c: a 4 → 1 shrink the default limit holds. */
async function shrinkHeld(): Promise<Controller> {
  const c = makeController();
  c.setActive(true);
  for (const n of ['a', 'b', 'c', 'd']) source.put(n, `10.0.0.${n.charCodeAt(0) - 96}`);
  source.setSynced(true);
  await clock.advance(2000);
  source.remove('a');
  source.remove('b');
  source.remove('c');
  await clock.advance(2000);
  return c;
}

test('a shrink beyond the limit is held until released with the held digest', async () => {
  const c = await shrinkHeld();
  assert.equal(sink.fired.length, 1, 'shrinking 4 → 1 is held');
  const st = c.status().clusters[0]!;
  assert.deepEqual(st.held?.reasons, ['shrink']);
  assert.equal(c.release('prod', 'sha256:not-it').released, false);
  assert.equal(c.release('prod', st.held.digest).released, true);
  await clock.advance(100);
  assert.equal(sink.fired.length, 2);
  assert.deepEqual(sink.fired[1]!.data.ipv4, ['10.0.0.4']);
  await c.stop();
});

test('a held list keeps its since while its digest stays held, and status shows the latest plan', async () => {
  const c = await shrinkHeld();
  const first = c.status().clusters[0]!.held!;
  source.put('x', '10.0.0.4'); // same list (d and x share the address): the same digest, still held
  await clock.advance(2000);
  const again = c.status().clusters[0]!.held!;
  assert.equal(again.digest, first.digest);
  assert.equal(again.since, first.since, 'held since the first run that held this digest');
  source.put('a', '10.0.0.1');
  source.put('b', '10.0.0.2');
  source.put('c', '10.0.0.3');
  await clock.advance(2000);
  assert.equal(c.status().clusters[0]!.held, undefined, 'the list grew back: nothing held');
  assert.equal(sink.fired.length, 1, 'nothing new to publish: the list is the published one');
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

// ---- the bus: what is believed, and what is re-sent --------------------------------------------

const JID = '20261122100000000001';
/** What the bridge does with a raw bus event: interpret, then hand the signal to the controller. */
function bus(c: Controller, e: BusEvent): void {
  const s = interpretBusEvent(e);
  if (s) c.onBus(s);
}
/** salt/job/<jid>/new as the reactor's job shows it: the payload (with Salt's _stamp) as kwarg. */
function jobNew(jid: string, payload: unknown, minions: unknown[], missing: unknown[] = []): BusEvent {
  const withStamp = { ...(payload as object), _stamp: '2026-11-22T10:00:00.000000' };
  return {
    tag: `salt/job/${jid}/new`,
    data: {
      jid,
      fun: 'kube_allowlist.apply',
      tgt: 'I@kube_allowlist:clusters:prod',
      tgt_type: 'compound',
      user: 'root',
      arg: [{ __kwarg__: true, payload: withStamp }],
      minions,
      missing,
    },
  };
}
/** salt/job/<jid>/ret/<minion> of kube_allowlist.apply; `ret` patches the module's return dict. */
function jobRet(
  jid: string,
  minion: string,
  o: { ok?: boolean; changed?: boolean; ret?: Record<string, unknown>; data?: Record<string, unknown> } = {},
): BusEvent {
  const ok = o.ok ?? true;
  return {
    tag: `salt/job/${jid}/ret/${minion}`,
    data: {
      cmd: '_return',
      id: minion,
      jid,
      fun: 'kube_allowlist.apply',
      fun_args: [],
      retcode: ok ? 0 : 2,
      success: ok,
      return: { applied: ok, changed: o.changed ?? ok, reason: ok ? 'applied' : 'ipset failed', ...o.ret },
      ...o.data,
    },
  };
}
const startEvent = (id: string, data: Record<string, unknown> = { id }): BusEvent => ({ tag: `salt/minion/${id}/start`, data });
const published = (p: AllowListPayload, extra: Record<string, unknown> = {}): BusEvent => ({
  tag: 'kube-salt-bridge/cluster/prod/nodes',
  data: { ...p, _stamp: 'x', ...extra },
});
/** The payload without the unsigned routing hint. */
const signedPart = (p: AllowListPayload): AllowListPayload => {
  const { minions: _m, ...rest } = p;
  return rest;
};
const resendsSince = (from: number) => sink.fired.slice(from).filter((e) => e.data.minions !== undefined);
/** A payload of cluster prod signed with this bridge's key (as the other bridge of an HA pair would sign it). */
function peerPayload(generation: number, ipv4: string[]): AllowListPayload {
  return buildPayload(
    {
      cluster: 'prod',
      generation,
      list: { ipv4, ipv6: [] },
      nodes: ipv4.length,
      issuedAtMs: clock.now(),
      diff: { added: [], removed: [], added_truncated: false, removed_truncated: false, addedCount: 0, removedCount: 0 },
    },
    KEYS.signer,
  );
}
const minionRow = (c: Controller, m: string) => c.status().minions.find((r) => r.minion === m);

test('a failed or silent minion gets a targeted re-send of exactly the published payload', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, jobNew(JID, first, ['m1', 'm2'], ['m3']));
  bus(c, jobRet(JID, 'm1'));
  bus(c, jobRet(JID, 'm2', { ok: false }));
  assert.deepEqual(c.status().clusters[0]!.minionsBehind, ['m2', 'm3']);
  assert.equal(minionRow(c, 'm1')?.appliedGeneration, first.generation);
  await clock.advance(6000);
  const resends = resendsSince(1);
  assert.ok(resends.length >= 1);
  const hinted = resends.flatMap((e) => e.data.minions!);
  assert.ok(hinted.includes('m2') && hinted.includes('m3') && !hinted.includes('m1'), hinted.join(','));
  for (const e of resends) {
    assert.deepEqual(signedPart(e.data), first, 'the very payload that was published, not a new signature');
    assert.ok(verifyPayload(e.data, KEYS.signer));
  }
  await c.stop();
});

test('a restarted minion gets the published payload, its id as the only hint; starts together share one event', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, startEvent('m9', { id: 'm9', cmd: '_minion_event', tag: 'salt/minion/m9/start', data: 'Minion m9 started' }));
  bus(c, startEvent('m8'));
  await clock.advance(300);
  const r = resendsSince(1);
  assert.equal(r.length, 1);
  assert.deepEqual(r[0]!.data.minions, ['m8', 'm9']);
  assert.deepEqual(signedPart(r[0]!.data), first);
  assert.ok(logs.some((l) => l.msg === 'minion started; re-sending current lists' && l.minion === 'm9'));
  await c.stop();
});

test('forged starts: "x or *" fires nothing; "evil" gets at most a re-send hinted to evil alone', async () => {
  const c = await publishedOnce();
  for (const id of ['x or *', '*', 'a,b', 'I@x', 'a b', 'x'.repeat(129)]) bus(c, startEvent(id));
  bus(c, startEvent('m2', { id: 'm1', cmd: '_minion_event' })); // m1 announcing m2's start
  await clock.advance(1000);
  assert.equal(sink.fired.length, 1, 'no re-send at all');
  assert.ok(logs.some((l) => l.msg === 'ignored bus event (bad-id)'));
  assert.ok(logs.some((l) => l.msg === 'ignored bus event (id-mismatch)'));
  bus(c, startEvent('evil'));
  await clock.advance(1000);
  assert.deepEqual(
    sink.fired.slice(1).map((e) => e.data.minions),
    [['evil']],
  );
  await c.stop();
});

test("events a minion forwarded are ignored whatever the tag (return, cluster event, someone else's start)", async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, jobNew(JID, first, ['m1', 'm2']));
  // m1 runs `salt-call event.send salt/job/<jid>/ret/m2 ...`: the master marks it and nests the data.
  const forged = jobRet(JID, 'm2');
  bus(c, { tag: forged.tag, data: { id: 'm1', cmd: '_minion_event', pretag: null, tag: forged.tag, data: forged.data } });
  bus(c, { tag: forged.tag, data: { ...forged.data, cmd: '_minion_event' } });
  assert.equal(minionRow(c, 'm2')?.lastResult, 'pending', 'no credit for m2');
  // A forwarded cluster event with a genuine, newer payload does not move the floor.
  bus(c, published(peerPayload(first.generation + 1_000_000, ['10.0.0.1']), { cmd: '_minion_event', id: 'm1' }));
  source.put('b', '10.0.0.2');
  await clock.advance(2000);
  assert.equal(sink.fired.length, 2);
  assert.ok(sink.fired.at(-1)!.data.generation < first.generation + 1_000_000, 'the floor did not move');
  assert.ok(logs.some((l) => l.msg === 'ignored bus event (forwarded)'));
  await c.stop();
});

test("a return counts only for a verified job and a minion it targeted; the job's generation is credited", async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, jobRet('20261122099999999999', 'm1')); // a job never seen
  assert.equal(minionRow(c, 'm1'), undefined);
  bus(c, jobNew(JID, first, ['m1']));
  bus(c, jobRet(JID, 'other')); // not targeted (the unmarked batch form looks exactly like this)
  assert.equal(minionRow(c, 'other'), undefined, 'a non-targeted minion never appears, let alone as current');
  bus(c, jobRet(JID, 'm1', { ret: { generation: 10 ** 15, digest: 'sha256:forged', cluster: 'prod' } }));
  assert.equal(minionRow(c, 'm1')?.appliedGeneration, first.generation, "the job's generation, not the return's");
  assert.equal(minionRow(c, 'm1')?.appliedDigest, first.digest);
  assert.ok(logs.some((l) => l.msg === 'ignored bus event (not-targeted)'));
  // A job whose payload does not verify is not remembered: its returns credit nothing.
  const tampered = { ...first, ipv4: ['0.0.0.0'], generation: first.generation + 1 };
  bus(c, jobNew('20261122100000000002', tampered, ['m5']));
  bus(c, jobRet('20261122100000000002', 'm5'));
  assert.equal(minionRow(c, 'm5'), undefined);
  assert.ok(logs.some((l) => l.msg === 'ignored bus event (unverified)'));
  // The first word on a jid stands: a second `new` cannot add minions to a known job.
  bus(c, jobNew(JID, first, ['m1', 'm6']));
  bus(c, jobRet(JID, 'm6'));
  assert.equal(minionRow(c, 'm6'), undefined);
  await c.stop();
});

test('a forged new job naming 60,000 minions: no credit, the tracker stays bounded', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  const ids = Array.from({ length: 60_000 }, (_, i) => `forged-${i}`);
  bus(c, jobNew(JID, first, ids)); // a genuine payload replayed by whoever can fire on the master
  const st = c.status();
  assert.ok(st.minions.length <= 10_000, `${st.minions.length} tracked`);
  assert.ok(
    st.minions.every((m) => m.appliedGeneration === undefined && m.lastResult === 'pending'),
    'nobody is credited',
  );
  assert.ok(logs.some((l) => l.msg === 'ignored bus event (job-minions)'));
  // Unverified: nothing at all.
  bus(
    c,
    jobNew(
      '20261122100000000003',
      { ...first, signature: 'ed25519:AAAA' },
      ids.map((i) => `${i}-b`),
    ),
  );
  assert.ok(!c.status().minions.some((m) => m.minion.endsWith('-b')));
  // A return for an id beyond the kept 10,000 credits nothing either.
  bus(c, jobRet(JID, 'forged-59999'));
  assert.equal(minionRow(c, 'forged-59999'), undefined);
  await c.stop();
});

test('held shrink: a minion start re-sends the published 4-address list, not the held 1-address plan', async () => {
  const c = makeController();
  c.setActive(true);
  for (const n of ['a', 'b', 'c', 'd']) source.put(n, `10.0.0.${n.charCodeAt(0) - 96}`);
  source.setSynced(true);
  await clock.advance(2000);
  const first = sink.fired[0]!.data;
  source.remove('a');
  source.remove('b');
  source.remove('c');
  await clock.advance(2000);
  assert.deepEqual(c.status().clusters[0]!.held?.reasons, ['shrink']);
  bus(c, startEvent('m1'));
  await clock.advance(300);
  const r = resendsSince(1);
  assert.equal(r.length, 1);
  assert.deepEqual(r[0]!.data.ipv4, ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  assert.deepEqual(signedPart(r[0]!.data), first);
  assert.ok(verifyPayload(r[0]!.data, KEYS.signer));
  await c.stop();
});

test('a failed publish leaves re-sends on the last payload that was fired', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  sink.failNext = 1;
  source.put('b', '10.0.0.2');
  await clock.advance(150);
  assert.equal(sink.fired.length, 1);
  bus(c, startEvent('m1'));
  await clock.advance(250);
  const r = resendsSince(1);
  assert.ok(r.length >= 1);
  assert.deepEqual(signedPart(r[0]!.data), first);
  await c.stop();
});

test('a re-send to many minions is split: at most 1,000 ids per event, every id once', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  const ids = Array.from({ length: 2_500 }, (_, i) => `m-${String(i).padStart(4, '0')}`);
  for (const id of ids) bus(c, startEvent(id));
  await clock.advance(300);
  assert.equal(resendsSince(1).length, 1, 'the first round: 1,000 ids');
  await clock.advance(10_000); // rounds 5 s apart
  const r = resendsSince(1);
  assert.equal(r.length, 3);
  assert.ok(r.every((e) => e.data.minions!.length <= 1_000));
  assert.deepEqual(r.flatMap((e) => e.data.minions!).sort(), ids);
  assert.ok(r.every((e) => JSON.stringify(signedPart(e.data)) === JSON.stringify(first)));
  assert.ok(logs.some((l) => l.msg === 'minions started; re-sending current lists'));
  await c.stop();
});

test('generation floor: a verified event of another bridge raises it, an unverified one never', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  const ahead = first.generation + 3_600_000; // the peer's clock is an hour ahead
  bus(c, published({ ...peerPayload(ahead + 500, ['10.0.0.1']), nodes: 7 })); // tampered: the signature breaks
  bus(c, jobNew('20261122100000000004', { ...peerPayload(ahead + 600, ['10.0.0.1']), nodes: 99 }, ['m1'])); // tampered too
  bus(c, published(peerPayload(ahead, ['10.0.0.1'])));
  source.put('b', '10.0.0.2');
  await clock.advance(2000);
  assert.equal(sink.fired.at(-1)!.data.generation, ahead + 1, 'floor + 1, from the verified event only');
  // A verified job payload raises it too.
  bus(c, jobNew('20261122100000000005', peerPayload(ahead + 10_000, ['10.0.0.1']), []));
  source.put('c', '10.0.0.3');
  await clock.advance(2000);
  assert.equal(sink.fired.at(-1)!.data.generation, ahead + 10_001);
  // Our own event seen back changes nothing.
  bus(c, published(sink.fired.at(-1)!.data));
  source.put('d', '10.0.0.4');
  await clock.advance(2000);
  assert.equal(sink.fired.at(-1)!.data.generation, ahead + 10_002);
  await c.stop();
});

test('after another bridge published a newer generation, an unchanged list goes out above it (not our stale one)', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, published(peerPayload(first.generation + 50_000, ['10.0.0.1'])));
  c.setActive(false);
  c.setActive(true); // taking the lease back
  await clock.advance(100);
  const last = sink.fired.at(-1)!.data;
  assert.equal(sink.fired.length, 2);
  assert.equal(last.generation, first.generation + 50_001);
  assert.equal(last.digest, first.digest);
  assert.deepEqual(last.ipv4, first.ipv4);
  // From then on re-sends carry that new payload.
  bus(c, startEvent('m1'));
  await clock.advance(300);
  assert.deepEqual(signedPart(sink.fired.at(-1)!.data), last);
  await c.stop();
});

test('ignored bus events are logged once per reason, then at most once a minute with a count', async () => {
  const c = await publishedOnce();
  for (let i = 0; i < 100; i++) bus(c, startEvent(`x or ${i}`));
  assert.equal(logs.filter((l) => l.msg === 'ignored bus event (bad-id)').length, 1);
  await clock.advance(61_000);
  bus(c, startEvent('y or *'));
  const lines = logs.filter((l) => l.msg === 'ignored bus event (bad-id)');
  assert.equal(lines.length, 2);
  assert.equal((lines[1]!.bus as Record<string, unknown>).suppressed, 99);
  assert.ok(
    lines.every((l) => JSON.stringify(l).length < 1000),
    'short lines',
  );
  await c.stop();
});

// ---- refusals: a held state, not a retry loop ---------------------------------------------------

const SHRINK = 'refused: 3 of 4 entries would be removed (75.0%), more than max_shrink 0.5; re-run with force=True if intended';
/** A minion's refusal (retcode 1) as the module returns it. */
const refusedRet = (jid: string, minion: string, reason = SHRINK) => jobRet(jid, minion, { ok: false, ret: { reason }, data: { retcode: 1 } });
const staleRet = (jid: string, minion: string) =>
  jobRet(jid, minion, { ok: false, ret: { reason: 'stale: generation 5 is older than the applied generation 9' }, data: { retcode: 0, success: true } });
const hintedTo = (m: string, from = 1) => resendsSince(from).filter((e) => e.data.minions!.includes(m));

test('a refused list is held per minion and cluster, shown and counted, and never re-sent to it; a failure still is', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, jobNew(JID, first, ['m1', 'm2', 'm3']));
  bus(c, refusedRet(JID, 'm1'));
  bus(c, staleRet(JID, 'm2'));
  bus(c, jobRet(JID, 'm3', { ok: false })); // retcode 2: a failure
  const m1 = minionRow(c, 'm1')!;
  assert.deepEqual([m1.lastResult, m1.refusal?.reason, m1.refusal?.generation, m1.retryAt], ['refused', 'shrink', first.generation, undefined]);
  assert.equal(m1.refusal?.message, SHRINK);
  assert.deepEqual([minionRow(c, 'm2')!.lastResult, minionRow(c, 'm2')!.refusal?.reason], ['stale', 'stale']);
  assert.deepEqual(
    c.status().clusters[0]!.minionsRefusing?.map((r) => [r.minion, r.reason, r.generation]),
    [
      ['m1', 'shrink', first.generation],
      ['m2', 'stale', first.generation],
    ],
  );
  const text = await metrics.registry.metrics();
  assert.match(text, /ksb_minion_refusals\{cluster="prod",reason="shrink"\} 1/);
  assert.match(text, /ksb_minion_refusals\{cluster="prod",reason="stale"\} 1/);
  assert.match(text, /ksb_minion_refusals\{cluster="prod",reason="skew"\} 0/);
  assert.match(text, /ksb_minion_apply_results_total\{cluster="prod",result="refused"\} 1/);
  assert.match(text, /ksb_minion_apply_results_total\{cluster="prod",result="failed"\} 1/);
  const warned = logs.filter((l) => /refused the list \(shrink\); not re-sending this generation/.test(String(l.msg)));
  assert.equal(warned.length, 1);
  assert.match(String(warned[0]!.msg), /kube-salt-bridge release prod/);

  await clock.advance(120_000); // four ack timeouts and more
  assert.equal(hintedTo('m1').length, 0, 'the refusing minion is not re-sent the same generation');
  assert.equal(hintedTo('m2').length, 0, 'nor the stale one');
  assert.ok(hintedTo('m3').length >= 2, 'the failed one is re-sent with backoff');
  // A start of the refusing minion re-sends nothing to it either (the same list would be refused).
  bus(c, startEvent('m1'));
  await clock.advance(6_000);
  assert.equal(hintedTo('m1').length, 0);
  // The periodic resync goes to the whole target; a repeated refusal is not logged again.
  await clock.advance(600_000);
  assert.ok(
    sink.fired.some((e) => e.data.minions === undefined && e.data.generation === first.generation && sink.fired.indexOf(e) > 0),
    'resync',
  );
  bus(c, jobNew('20261122100000000010', first, ['m1']));
  bus(c, refusedRet('20261122100000000010', 'm1'));
  assert.equal(logs.filter((l) => /refused the list/.test(String(l.msg))).length, 1, 'logged once per minion and generation');
  assert.equal(minionRow(c, 'm1')!.refusal?.since, m1.refusal?.since, 'held since the first refusal');
  await c.stop();
});

test('the refusal gauge exists from the start, at 0 for every cluster and reason', async () => {
  const c = makeController();
  const text = await metrics.registry.metrics();
  for (const r of ['shrink', 'empty', 'conflict', 'skew', 'version', 'key', 'signature', 'tag', 'invalid', 'stale']) {
    assert.match(text, new RegExp(`ksb_minion_refusals\\{cluster="prod",reason="${r}"\\} 0`));
  }
  await c.stop();
});

test('a refusal clears with the next list the minion accepts', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, jobNew(JID, first, ['m1']));
  bus(
    c,
    refusedRet(
      JID,
      'm1',
      "refused: generation: 1795341600000 is 3600 s ahead of this minion's clock, more than max_generation_skew 300 s (is the bridge's clock right?)",
    ),
  );
  assert.equal(minionRow(c, 'm1')!.refusal?.reason, 'skew');
  source.put('b', '10.0.0.2');
  await clock.advance(1000);
  const second = sink.fired.at(-1)!.data;
  assert.ok(second.generation > first.generation);
  bus(c, jobNew('20261122100000000011', second, ['m1']));
  assert.equal(minionRow(c, 'm1')!.lastResult, 'pending', 'the new generation is owed an answer');
  assert.equal(minionRow(c, 'm1')!.refusal?.reason, 'skew', 'the refusal stays visible until then');
  bus(c, jobRet('20261122100000000011', 'm1'));
  assert.equal(minionRow(c, 'm1')!.refusal, undefined);
  assert.deepEqual(c.status().clusters[0]!.minionsRefusing, []);
  assert.match(await metrics.registry.metrics(), /ksb_minion_refusals\{cluster="prod",reason="skew"\} 0/);
  await c.stop();
});

test('release: with no held publish, re-sends the published list once to the minions that refused it', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  assert.deepEqual(c.release('prod'), { released: false, message: 'prod has no held publish and no minion refusing its list' });
  bus(c, jobNew(JID, first, ['m1', 'm2']));
  bus(c, refusedRet(JID, 'm1'));
  bus(c, jobRet(JID, 'm2'));
  assert.equal(c.release('prod', 'sha256:other').released, false, 'only for the published digest');
  const r = c.release('prod', first.digest);
  assert.equal(r.released, true);
  assert.match(r.message, /re-sending generation \d+ once to 1 minion\(s\) that refused it \(m1: shrink\)/);
  await clock.advance(10);
  assert.deepEqual(
    resendsSince(1).map((e) => e.data.minions),
    [['m1']],
  );
  assert.deepEqual(signedPart(resendsSince(1)[0]!.data), first);
  assert.equal(minionRow(c, 'm1')!.lastResult, 'pending');
  // It refuses again: held again, and nothing more goes to it.
  bus(c, jobNew('20261122100000000012', first, ['m1']));
  bus(c, refusedRet('20261122100000000012', 'm1'));
  await clock.advance(120_000);
  assert.equal(hintedTo('m1').length, 1);
  assert.equal(minionRow(c, 'm1')!.refusal?.reason, 'shrink');
  await c.stop();
});

// ---- start storms ---------------------------------------------------------------------------------

test('start storm: one minion firing starts over and over gets at most one re-send per 30 s', async () => {
  const c = await publishedOnce();
  for (let i = 0; i < 600; i++) {
    // a start every 100 ms for a minute
    bus(c, startEvent('m1'));
    await clock.advance(100);
  }
  const r = resendsSince(1);
  assert.equal(r.length, 2, 'at 0.2 s, then again once 30 s had passed');
  assert.ok(r.every((e) => JSON.stringify(signedPart(e.data)) === JSON.stringify(signedPart(sink.fired[0]!.data))));
  assert.ok(logs.some((l) => l.msg === 'ignored bus event (start-repeat)'));
  await c.stop();
});

test('start storm: many ids go out in rounds at least 5 s apart, at most 1,000 ids (one event) per round', async () => {
  const c = await publishedOnce();
  const times: number[] = [];
  const from = sink.fired.length;
  let n = 0;
  for (let t = 0; t < 30_000; t += 50) {
    for (let k = 0; k < 20; k++) bus(c, startEvent(`s-${n++}`)); // 400 fresh ids per second
    const before = sink.fired.length;
    await clock.advance(50);
    if (sink.fired.length > before) times.push(clock.now());
  }
  const r = sink.fired.slice(from);
  assert.ok(r.every((e) => e.data.minions!.length <= 1000));
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 5000, `rounds at ${times.join(', ')}`);
  assert.ok(r.length <= 7, `${r.length} events in 30 s for 12,000 starts`);
  await c.stop();
});

// ---- bursts -----------------------------------------------------------------------------------------

/** Publishes (full lists, not re-sends) since `from`, with the time each run signed it. */
const publishes = (from = 0) =>
  sink.fired
    .slice(from)
    .filter((e) => e.data.minions === undefined)
    .map((e) => ({ at: Date.parse(e.data.issued_at), ipv4: e.data.ipv4 }));

function assertBurst(
  changes: Array<{ at: number; seen: (ipv4: string[]) => boolean }>,
  pubs: Array<{ at: number; ipv4: string[] }>,
  o: { minIntervalMs: number; maxDelayMs: number },
): void {
  assert.equal(pubs[0]!.at, changes[0]!.at, 'the first change is published at once (leading edge)');
  assert.ok(pubs.filter((p) => p.at <= changes[0]!.at + o.minIntervalMs / 2).length === 1, 'exactly one immediate publish');
  for (let i = 1; i < pubs.length; i++)
    assert.ok(
      pubs[i]!.at - pubs[i - 1]!.at >= o.minIntervalMs,
      `publishes ${pubs[i - 1]!.at - changes[0]!.at} and ${pubs[i]!.at - changes[0]!.at} ms are ${o.minIntervalMs} ms apart`,
    );
  for (const [i, ch] of changes.entries()) {
    const p = pubs.find((x) => x.at >= ch.at && ch.seen(x.ipv4));
    assert.ok(p, `change #${i} is published`);
    assert.ok(p.at - ch.at <= o.maxDelayMs, `change #${i} waited ${p.at - ch.at} ms`);
  }
}

for (const o of [
  { minIntervalMs: 500, maxDelayMs: 2000 },
  { minIntervalMs: 100, maxDelayMs: 300 },
]) {
  test(`burst of 200 node joins 10 ms apart: one publish at once, then at most one per ${o.minIntervalMs} ms, none later than ${o.maxDelayMs} ms after a change`, async () => {
    const c = makeController({ config: { publish: { ...o, resyncIntervalSeconds: 600, retry: { initialMs: 1000, maxMs: 10_000 } } } });
    c.setActive(true);
    source.put('base', '10.1.0.1');
    source.setSynced(true);
    await clock.advance(10_000); // published, then quiet
    const from = sink.fired.length;
    const changes: Array<{ at: number; seen: (ipv4: string[]) => boolean }> = [];
    for (let i = 0; i < 200; i++) {
      const ip = `10.2.${i >> 8}.${i & 255}`;
      source.put(`n${i}`, ip);
      changes.push({ at: clock.now(), seen: (l) => l.includes(ip) });
      await clock.advance(10);
    }
    await clock.advance(o.maxDelayMs + 1000);
    const pubs = publishes(from);
    assertBurst(changes, pubs, o);
    assert.equal(pubs.at(-1)!.ipv4.length, 201, 'the last publish holds every node');
    assert.ok(pubs.length <= Math.ceil(2000 / o.minIntervalMs) + 1, `${pubs.length} publishes`);
    await clock.advance(60_000);
    assert.equal(publishes(from).length, pubs.length, 'nothing more once the burst is over');
    await c.stop();
  });

  test(`burst of 200 node deletions 10 ms apart with the guard allowing them (minIntervalMs ${o.minIntervalMs}, maxDelayMs ${o.maxDelayMs})`, async () => {
    const c = makeController({
      config: {
        clusters: [{ name: 'prod', kubeconfig: join(dir, 'kc.yaml'), families: ['ipv4'], safety: { maxShrinkFraction: 1, allowEmpty: true, minNodes: 0 } }],
        publish: { ...o, resyncIntervalSeconds: 600, retry: { initialMs: 1000, maxMs: 10_000 } },
      },
    });
    c.setActive(true);
    for (let i = 0; i < 200; i++) source.put(`n${i}`, `10.2.${i >> 8}.${i & 255}`);
    source.setSynced(true);
    await clock.advance(10_000);
    assert.equal(publishes().at(-1)!.ipv4.length, 200);
    const from = sink.fired.length;
    const changes: Array<{ at: number; seen: (ipv4: string[]) => boolean }> = [];
    for (let i = 0; i < 200; i++) {
      const ip = `10.2.${i >> 8}.${i & 255}`;
      source.remove(`n${i}`);
      changes.push({ at: clock.now(), seen: (l) => !l.includes(ip) });
      await clock.advance(10);
    }
    await clock.advance(o.maxDelayMs + 1000);
    const pubs = publishes(from);
    assertBurst(changes, pubs, o);
    assert.deepEqual(pubs.at(-1)!.ipv4, [], 'the last publish is the empty list the guard allows');
    assert.equal(c.status().clusters[0]!.held, undefined, 'nothing held');
    await c.stop();
  });
}

test('status (table and --json) shows who refuses which list and why', async () => {
  const c = await publishedOnce();
  const first = sink.fired[0]!.data;
  bus(c, jobNew(JID, first, ['m1', 'm2']));
  bus(c, refusedRet(JID, 'm1'));
  bus(c, jobRet(JID, 'm2'));
  await clock.advance(12_000);
  const doc = JSON.parse(JSON.stringify({ ...c.status(), ready: [] })) as StatusDoc; // as /status serves it
  assert.deepEqual(
    doc.clusters[0]!.minionsRefusing!.map((r) => [r.minion, r.reason]),
    [['m1', 'shrink']],
  );
  assert.equal(doc.minions.find((m) => m.minion === 'm1')!.refusal!.generation, first.generation);
  const lines = formatStatus(doc, clock.now()).split('\n');
  const header = lines.find((l) => l.startsWith('CLUSTER'))!;
  const row = lines.find((l) => l.startsWith('prod '))!;
  assert.equal(row.slice(header.indexOf('REFUSED BY')).split(/\s{2,}/)[0], 'm1 shrink');
  assert.match(
    lines.find((l) => l.startsWith('m1 '))!,
    /refused: shrink \(since 12s ago\)\s+behind \(current \d+\)\s+12s ago\s+refused: 3 of 4 entries would be removed/,
  );
  assert.match(
    lines.find((l) => l.startsWith('m2 '))!,
    /\sapplied\s+current\s/,
  );
  await c.stop();
});

test("its own event seen on the bus before salt-api answered is not taken for another bridge's", async () => {
  const fire = sink.fire.bind(sink);
  sink.fire = async (tag, data) => {
    bus(c, published(data)); // the SSE stream delivers the event before the HTTP answer
    await fire(tag, data);
  };
  const c = makeController();
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(2000);
  source.put('b', '10.0.0.2');
  await clock.advance(2000);
  assert.equal(sink.fired.length, 2);
  assert.ok(!logs.some((l) => /carries a newer generation than this bridge published/.test(String(l.msg))), 'no "another bridge" line');
  assert.ok(sink.fired[1]!.data.generation > sink.fired[0]!.data.generation);
  await c.stop();
});

test('at start-up a publish waits for the bus stream to open, so it goes out once and is seen', async () => {
  const c = makeController({ busStream: true });
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(1000);
  assert.equal(sink.fired.length, 0, 'waits while the stream connects');
  c.streamState(true);
  await clock.advance(10);
  assert.equal(sink.fired.length, 1, 'fired once the stream is open, and only once');
  bus(c, jobNew(JID, sink.fired[0]!.data, ['m1'])); // and its job and return are seen
  bus(c, jobRet(JID, 'm1'));
  await clock.advance(STREAM_WAIT_MS);
  assert.equal(sink.fired.length, 1, 'the end of the wait fires nothing more');
  // Seen from then on: a drop and a reopen with nothing fired meanwhile fire nothing.
  c.streamState(false);
  c.streamState(true);
  await clock.advance(1000);
  assert.equal(sink.fired.length, 1);
  // A publish during an outage goes out at once and is fired again when the stream is back.
  c.streamState(false);
  source.put('b', '10.0.0.2');
  await clock.advance(1000);
  assert.equal(sink.fired.length, 2);
  c.streamState(true);
  await clock.advance(10);
  assert.equal(sink.fired.length, 3);
  assert.equal(sink.fired[2]!.data.generation, sink.fired[1]!.data.generation);
  assert.ok(logs.some((l) => /the bus stream opened after this publish went out/.test(String(l.msg))));
  await c.stop();
});

test('a stream that never opens holds the first publish for at most STREAM_WAIT_MS; it is fired again once the stream opens', async () => {
  const c = makeController({ busStream: true });
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(STREAM_WAIT_MS - 100);
  assert.equal(sink.fired.length, 0);
  await clock.advance(200);
  assert.equal(sink.fired.length, 1, 'published unseen when the wait is over');
  c.streamState(true);
  await clock.advance(10);
  assert.equal(sink.fired.length, 2, 'its job may have been missed: fired once more');
  assert.deepEqual(sink.fired[1]!.data, sink.fired[0]!.data, 'the same payload, to the whole target');
  await c.stop();
});

test('a stream that reopens while a publish is in flight: that publish is fired again too', async () => {
  const fire = sink.fire.bind(sink);
  let reopen = false;
  sink.fire = async (tag, data) => {
    if (reopen) c.streamState(true); // reopened during the salt-api call
    reopen = false;
    await fire(tag, data);
  };
  const c = makeController({ busStream: true });
  c.streamState(true);
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(1000);
  assert.equal(sink.fired.length, 1);
  c.streamState(false);
  reopen = true;
  source.put('b', '10.0.0.2');
  await clock.advance(1000);
  assert.equal(sink.fired.length, 3, 'its job may have been missed: fired once more');
  assert.deepEqual(sink.fired[2]!.data, sink.fired[1]!.data);
  source.put('c', '10.0.0.3');
  await clock.advance(1000);
  assert.equal(sink.fired.length, 4, 'with the stream open throughout, once');
  await c.stop();
});

test('on the websocket (a lossy stream) a publish whose job never shows is fired again after the ack timeout, at most MAX_JOB_REFIRES times', async () => {
  const c = makeController({ busStream: true });
  c.streamState(true, true);
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(1000);
  assert.equal(sink.fired.length, 1);
  // Its job seen in time: nothing more.
  bus(c, jobNew(JID, sink.fired[0]!.data, ['m1']));
  bus(c, jobRet(JID, 'm1'));
  await clock.advance(30_000);
  assert.equal(sink.fired.length, 1, 'a seen job is owed nothing');
  // The next publish's job is lost by the stream: fired again, the same payload to the whole target.
  source.put('b', '10.0.0.2');
  await clock.advance(10);
  assert.equal(sink.fired.length, 2);
  await clock.advance(4900);
  assert.equal(sink.fired.length, 2, 'not before the ack timeout');
  await clock.advance(200);
  assert.equal(sink.fired.length, 3, 'fired again once the ack timeout passed');
  assert.deepEqual(sink.fired[2]!.data, sink.fired[1]!.data, 'exactly the payload published, to the whole target');
  assert.ok(logs.some((l) => /no job of this publish was seen on the bus stream within the ack timeout/.test(String(l.msg))));
  // Its job arrives at last: the waiting ends.
  bus(c, jobNew('20261122100000000002', sink.fired[2]!.data, ['m1']));
  bus(c, jobRet('20261122100000000002', 'm1'));
  await clock.advance(60_000);
  assert.equal(sink.fired.length, 3);
  // A job that never shows (no reactor): MAX_JOB_REFIRES re-fires, then a warning and the resync's turn.
  source.put('c', '10.0.0.3');
  await clock.advance(1000);
  const before = sink.fired.length;
  await clock.advance(300_000);
  const again = sink.fired.slice(before);
  assert.equal(again.length, MAX_JOB_REFIRES, 'bounded');
  for (const e of again) assert.deepEqual(e.data, sink.fired[before - 1]!.data);
  assert.ok(logs.some((l) => l.level === 40 && /after 3 re-fires: no minion targeted, no reactor/.test(String(l.msg))));
  assert.match(await metrics.registry.metrics(), new RegExp(`ksb_jobs_unseen_total\\{cluster="prod"\\} ${MAX_JOB_REFIRES + 2}`));
  await c.stop();
});

test('on SSE a publish whose job never shows is not fired again (no target or no reactor; SSE loses nothing)', async () => {
  const c = makeController({ busStream: true });
  c.streamState(true);
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(120_000);
  assert.equal(sink.fired.length, 1);
  await c.stop();
});

test('without a bus stream (once, dry-run) no job is awaited', async () => {
  const c = makeController();
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(120_000);
  assert.equal(sink.fired.length, 1);
  await c.stop();
});

// ---- the delta form ----------------------------------------------------------------------------

const DELTA_PUBLISH = { minIntervalMs: 100, maxDelayMs: 1000, resyncIntervalSeconds: 600, retry: { initialMs: 1000, maxMs: 10_000 }, deltaMinEntries: 0 };
const JID2 = '20261122100000000010';
const JID3 = '20261122100000000011';
type Fired = Record<string, unknown> & { generation: number; digest: string; minions?: string[] };
const firedAt = (i: number) => sink.fired.at(i)!.data as unknown as Fired;
/** A return of a minion that does not hold the list the delta applies to (retcode 0, applied false). */
const needFullRet = (jid: string, minion: string, reason = 'need_full: holds nothing, the delta is from sha256:x') =>
  jobRet(jid, minion, { ok: false, data: { retcode: 0, success: true }, ret: { need_full: true, reason } });

/** An active controller with delta on for any size, that has published 100 nodes once (in full). */
async function deltaPublishedOnce(publish: Record<string, unknown> = DELTA_PUBLISH): Promise<Controller> {
  const c = makeController({ config: { publish } });
  c.setActive(true);
  for (let i = 1; i <= 100; i++) source.put(`n${i}`, `10.0.0.${i}`);
  source.setSynced(true);
  await clock.advance(2000);
  return c;
}

test('delta: after a first full publish a one-node change goes out as its delta; the full payload of that generation is kept for re-sends', async () => {
  const c = await deltaPublishedOnce();
  assert.equal(sink.fired.length, 1);
  const first = firedAt(0);
  assert.equal((first.ipv4 as string[]).length, 100, 'the first publish of the process is full');
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  assert.equal(sink.fired.length, 2);
  const delta = firedAt(1);
  assert.equal(delta.base_digest, first.digest);
  assert.deepEqual([delta.added, delta.removed], [['10.0.1.1'], []]);
  for (const k of ['ipv4', 'ipv6', 'added_truncated', 'removed_truncated']) assert.equal(k in delta, false, k);
  assert.ok(verifyPayload(delta, KEYS.signer));
  assert.ok(delta.generation > first.generation);
  const line = logs.find((l) => typeof l.msg === 'string' && l.msg.includes('delta form'))!;
  const ev = line.event as Record<string, unknown>;
  assert.deepEqual(ev.added, { count: 1, first: ['10.0.1.1'] }, 'counts, not lists');
  assert.equal('ipv4' in ev, false);
  const st = c.status().clusters[0]!;
  assert.equal(st.generation, delta.generation);
  assert.equal(st.digest, delta.digest);
  assert.match(await metrics.registry.metrics(), /ksb_publish_forms_total\{cluster="prod",form="delta"\} 1/);
  assert.match(await metrics.registry.metrics(), /ksb_publish_forms_total\{cluster="prod",form="full"\} 1/);
  // A start re-sends the full payload of the delta's generation, never the delta.
  bus(c, startEvent('m1'));
  await clock.advance(300);
  const resend = firedAt(2);
  assert.deepEqual(resend.minions, ['m1']);
  assert.equal(resend.generation, delta.generation);
  assert.equal(resend.digest, delta.digest);
  assert.equal((resend.ipv4 as string[]).length, 101);
  assert.equal('base_digest' in resend, false);
  assert.ok(verifyPayload(resend, KEYS.signer));
  await c.stop();
});

test('delta: a generation fired as its delta signs only the delta; its full payload is signed once, when a re-send needs it', async () => {
  const signed: string[] = [];
  const c = makeController({ config: { publish: DELTA_PUBLISH }, signed: (m) => signed.push(m) });
  c.setActive(true);
  for (let i = 1; i <= 100; i++) source.put(`n${i}`, `10.0.0.${i}`);
  source.setSynced(true);
  await clock.advance(2000);
  assert.equal(signed.length, 1, 'the first publish: its full form');
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  const delta = firedAt(1);
  assert.equal(signed.length, 2, 'the delta only');
  assert.match(signed[1]!, /"base_digest"/);
  bus(c, startEvent('m1'));
  await clock.advance(300);
  bus(c, startEvent('m2'));
  await clock.advance(120_000);
  const resends = sink.fired.slice(2).map((f) => f.data as unknown as Fired);
  assert.deepEqual(
    resends.map((r) => [r.minions, r.generation]),
    [
      [['m1'], delta.generation],
      [['m2'], delta.generation],
    ],
  );
  for (const r of resends) assert.ok(verifyPayload(r, KEYS.signer));
  assert.equal(signed.length, 3, 'the full form of the delta’s generation, signed once for both re-sends');
  assert.doesNotMatch(signed[2]!, /"base_digest"/);
  await c.stop();
});

test('delta: a minion answering need_full gets the full list of that generation once, batched; the others apply the delta', async () => {
  const c = await deltaPublishedOnce();
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  const delta = firedAt(1);
  bus(c, jobNew(JID2, delta, ['m1', 'm2', 'm3']));
  bus(c, jobRet(JID2, 'm1'));
  bus(c, needFullRet(JID2, 'm2'));
  bus(c, needFullRet(JID2, 'm3', 'stale: the need_full flag decides, not the text'));
  assert.equal(minionRow(c, 'm2')?.lastResult, 'pending', 'need full is not an answer on the generation');
  assert.equal(minionRow(c, 'm3')?.lastResult, 'pending');
  assert.deepEqual(c.status().clusters[0]!.minionsRefusing, [], 'never held like stale');
  assert.equal(sink.fired.length, 2, 'answers arriving together wait for one round');
  await clock.advance(250);
  assert.equal(sink.fired.length, 3, 'one event for both');
  const full = firedAt(2);
  assert.deepEqual(full.minions, ['m2', 'm3']);
  assert.equal(full.generation, delta.generation);
  assert.equal((full.ipv4 as string[]).length, 101);
  assert.ok(verifyPayload(full, KEYS.signer));
  // A repeated (or forged) need_full of the same generation costs nothing more.
  bus(c, needFullRet(JID2, 'm2'));
  await clock.advance(1000);
  assert.equal(sink.fired.length, 3);
  assert.match(await metrics.registry.metrics(), /ksb_minion_need_full_total\{cluster="prod"\} 3/);
  assert.match(await metrics.registry.metrics(), /ksb_minion_apply_results_total\{cluster="prod",result="need_full"\} 3/);
  // The full re-send's job and returns make them current.
  bus(c, jobNew(JID3, full, ['m2', 'm3']));
  bus(c, jobRet(JID3, 'm2'));
  bus(c, jobRet(JID3, 'm3'));
  assert.deepEqual(c.status().clusters[0]!.minionsBehind, []);
  assert.equal(minionRow(c, 'm2')?.appliedGeneration, delta.generation);
  await c.stop();
});

test('delta: a need_full that is lost is still owed: the ack timeout re-sends the full list', async () => {
  const c = await deltaPublishedOnce();
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  const delta = firedAt(1);
  bus(c, jobNew(JID2, delta, ['m2']));
  bus(c, needFullRet(JID2, 'm2'));
  await clock.advance(250);
  assert.equal(sink.fired.length, 3);
  await clock.advance(6000); // ackTimeoutMs 5000: no answer to the full re-send (its job was lost too)
  const later = sink.fired.slice(3).map((e) => e.data as unknown as Fired);
  assert.ok(later.length >= 1);
  assert.ok(later.every((p) => Array.isArray(p.ipv4) && p.generation === delta.generation && p.minions?.includes('m2')));
  await c.stop();
});

test('delta: the periodic resync fires the check form of the last published generation, signed at resync time', async () => {
  const c = await deltaPublishedOnce();
  const first = firedAt(0);
  await clock.advance(600_000);
  assert.equal(sink.fired.length, 2);
  const check = firedAt(1);
  assert.equal(check.generation, first.generation);
  assert.equal(check.digest, first.digest);
  assert.equal(check.base_digest, first.digest);
  assert.deepEqual([check.added, check.removed], [[], []]);
  assert.notEqual(check.issued_at, first.issued_at);
  assert.ok(verifyPayload(check, KEYS.signer));
  assert.match(await metrics.registry.metrics(), /ksb_publish_forms_total\{cluster="prod",form="check"\} 1/);
  // A minion that lost its list answers need full and gets the full payload, as first published.
  bus(c, jobNew(JID2, check, ['m1', 'm2']));
  bus(c, jobRet(JID2, 'm1', { changed: false }));
  bus(c, needFullRet(JID2, 'm2'));
  await clock.advance(250);
  const full = firedAt(2);
  assert.deepEqual(full.minions, ['m2']);
  const { minions: _m, ...signed } = full;
  assert.deepEqual(signed, first);
  await c.stop();
});

test('delta: off (publish.delta false), too small a list, or a new leadership: every list travels in full', async () => {
  let c = await deltaPublishedOnce({ ...DELTA_PUBLISH, delta: false });
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  await clock.advance(600_000);
  assert.ok(
    sink.fired.every((e) => Array.isArray(e.data.ipv4)),
    'delta off: full changes and a full resync',
  );
  await c.stop();

  sink.fired.length = 0;
  source = new FakeNodeSource('prod');
  dir = mkdtempSync(join(tmpdir(), 'ksb-ctl-'));
  c = await deltaPublishedOnce({ ...DELTA_PUBLISH, deltaMinEntries: 102 });
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  assert.ok(Array.isArray(firedAt(1).ipv4), '101 entries < deltaMinEntries 102');
  source.put('n102', '10.0.1.2');
  await clock.advance(2000);
  assert.equal(firedAt(2).base_digest, firedAt(1).digest, '102 entries: a delta');
  // Losing and regaining leadership: the first publish of the new term is full.
  c.setActive(false);
  source.put('n103', '10.0.1.3');
  await clock.advance(2000);
  const before = sink.fired.length;
  c.setActive(true);
  await clock.advance(100);
  assert.equal(sink.fired.length, before + 1);
  assert.ok(Array.isArray(firedAt(-1).ipv4), 'full after becoming leader');
  source.put('n104', '10.0.1.4');
  await clock.advance(2000);
  assert.equal(firedAt(-1).base_digest, firedAt(-2).digest, 'then deltas again');
  await c.stop();
});

test('delta: a publish above another bridge newer generation is full (its minions may hold that bridge list), then deltas again', async () => {
  const c = await deltaPublishedOnce();
  const first = firedAt(0);
  const peerList = [...(first.ipv4 as string[]), '10.0.9.9'].sort();
  bus(c, published(peerPayload(first.generation + 50_000, peerList)));
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  const above = firedAt(1);
  assert.ok(above.generation > first.generation + 50_000);
  assert.ok(Array.isArray(above.ipv4), 'full: our last list is no base for what the minions hold');
  source.put('n102', '10.0.1.2');
  await clock.advance(2000);
  assert.equal(firedAt(2).base_digest, above.digest);
  await c.stop();
});

test('delta: a dry run logs the delta it would fire, unsigned', async () => {
  const c = makeController({ dryRun: true, config: { publish: DELTA_PUBLISH } });
  c.setActive(true);
  for (let i = 1; i <= 100; i++) source.put(`n${i}`, `10.0.0.${i}`);
  source.setSynced(true);
  await clock.advance(2000);
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  assert.equal(sink.fired.length, 0);
  const lines = logs.filter((l) => l.dryRun === true);
  assert.equal(lines.length, 2);
  const data = (lines[1]!.event as { data: Record<string, unknown> }).data;
  assert.equal(typeof data.base_digest, 'string');
  assert.deepEqual(data.added, ['10.0.1.1']);
  assert.equal(verifyPayload(data, KEYS.signer), false, 'never a payload that could be fired');
  await c.stop();
});

test('delta: after a restart the first publish is full, even of a list the state file already holds; the next change is a delta from it', async () => {
  let c = await deltaPublishedOnce();
  source.put('n101', '10.0.1.1');
  await clock.advance(2000);
  assert.equal(typeof firedAt(1).base_digest, 'string');
  await c.stop();
  c = makeController({ config: { publish: DELTA_PUBLISH } });
  c.setActive(true);
  await clock.advance(2000);
  const resent = firedAt(2);
  assert.ok(Array.isArray(resent.ipv4), 'the new process re-sends the stored generation in full');
  assert.equal(resent.generation, firedAt(1).generation);
  source.put('n102', '10.0.1.2');
  await clock.advance(2000);
  assert.equal(firedAt(3).base_digest, resent.digest, 'from the payload this process fired');
  await c.stop();
});

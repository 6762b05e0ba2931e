// The delta form with real packets (docs/event-contract.md, "Delta form"): after a first full
// publish, a node joining goes out as its delta; the shipped reactor hands it to both minions
// (ipset and nftables backends), which apply it to the list they hold, and TCP from the new
// address is accepted. A minion that lost its list (kube_allowlist.flush) answers the next delta
// with need_full, the bridge re-sends the full list of that generation to it alone, and it
// converges; the other minion applies the delta; the bridge's status shows both current.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab, type Host } from '../harness/netns.ts';
import { startSalt, type BusEvent, type SaltStack, type Minion } from '../harness/salt.ts';
import { startRedis, probe } from '../harness/redis.ts';
import { startBridge, type BridgeProc } from '../harness/bridge.ts';
import { stopInOrder, waitFor } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys();
const TAG = 'kube-salt-bridge/cluster/prod/nodes';
// 100 pod networks make the list large enough for a delta to pay (less than half the full payload).
const EXTRA = Array.from({ length: 100 }, (_, i) => `10.210.${i}.0/24`);

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let nodes: Host;
let bridge: BridgeProc;
let a: Minion; // ipset
let b: Minion; // nftables
let n: { v4: (i: number) => string; v6: (i: number) => string };

const reachable = async (src: string, m: Minion, family: 4 | 6 = 4) => (await probe(nodes, src, family === 4 ? m.host.ipv4 : m.host.ipv6, 2)).ok;

function pillar(backend: string) {
  return {
    kube_allowlist: {
      public_keys: [KEYS.publicText],
      backend,
      clusters: { prod: {} },
      rules: [{ name: 'redis', clusters: ['prod'], proto: 'tcp', ports: [6379], others: 'drop' }],
    },
  };
}

type Data = Record<string, unknown>;
const isFull = (d: Data) => Array.isArray(d.ipv4) && !('base_digest' in d);
const isDelta = (d: Data) => typeof d.base_digest === 'string' && !('ipv4' in d) && !('ipv6' in d);
const after_ = (since: number) => (e: BusEvent) => salt.events.indexOf(e) >= since;
/** The kwarg payload of a kube_allowlist.apply job's `new` event. */
const jobPayload = (e: BusEvent): Data | undefined => {
  const args = e.data.arg;
  if (!Array.isArray(args)) return undefined;
  const kw = args.find((x: unknown) => typeof x === 'object' && x !== null && (x as Data).__kwarg__ === true) as Data | undefined;
  return kw?.payload as Data | undefined;
};
const isJobNew = (e: BusEvent) => /^salt\/job\/[0-9_]+\/new$/.test(e.tag) && e.data.fun === 'kube_allowlist.apply';
const retOf = (jid: string, m: Minion) => (e: BusEvent) => e.tag === `salt/job/${jid}/ret/${m.id}`;

/** Waits until the bridge's status shows both minions at `generation` (their returns credited). */
async function bothCurrent(generation: number, what: string): Promise<void> {
  await waitFor(
    what,
    async () => {
      const st = await bridge.status();
      const cl = st.clusters[0]!;
      return (
        cl.generation === generation &&
        cl.minionsBehind.length === 0 &&
        [a, b].every((p) => st.minions.some((m) => m.minion === p.id && m.appliedGeneration === generation))
      );
    },
    60_000,
    200,
  );
}

before(
  async () => {
    kube = await startKube('prod');
    lab = await startLab();
    salt = await startSalt(lab, { minions: 2 });
    [a, b] = salt.minions as [Minion, Minion];
    await salt.setPillar({ [a.id]: pillar('ipset'), [b.id]: pillar('nftables') });
    for (const m of salt.minions) await startRedis(m.host);
    nodes = await lab.addHost('nodes');
    n = { v4: (i) => lab.nodeIp4(i), v6: (i) => lab.nodeIp6(i) };
    for (const i of [1, 2, 3, 4, 9]) {
      await nodes.addAddress(n.v4(i));
      await nodes.addAddress(n.v6(i));
    }
    for (const i of [1, 2]) {
      await kube.createNode(`p${i}`, [
        { type: 'InternalIP', address: n.v4(i) },
        { type: 'InternalIP', address: n.v6(i) },
      ]);
    }
    bridge = await startBridge({
      clusters: [{ name: 'prod', kube, extraEntries: EXTRA }],
      salt,
      privateKey: KEYS.privateText,
      publish: { delta: true, deltaMinEntries: 64 },
    });
    await bridge.waitReady();
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(bridge, salt, lab, kube));

let lastGeneration = 0;

test('the first publish is full; a node joining goes out as its delta, which both minions apply (TCP from the new address accepted)', async () => {
  const first = await salt.waitForEvent('the first, full publish', (e) => e.tag === TAG && isFull(e.data), 60_000);
  assert.equal((first.data.ipv4 as string[]).length, 102);
  await bothCurrent(first.data.generation as number, 'both minions current after the full publish');
  for (const m of [a, b]) {
    assert.equal(await reachable(n.v4(1), m), true, `p1 connects to ${m.id}`);
    assert.equal(await reachable(n.v4(3), m), false, `p3 (not a node yet) is dropped by ${m.id}`);
  }

  const since = salt.events.length;
  await kube.createNode('p3', [
    { type: 'InternalIP', address: n.v4(3) },
    { type: 'InternalIP', address: n.v6(3) },
  ]);
  const ev = await salt.waitForEvent('the delta of p3 joining', (e) => after_(since)(e) && e.tag === TAG, 30_000);
  const delta = ev.data;
  assert.ok(isDelta(delta), `a delta, not the full list: ${JSON.stringify(delta).slice(0, 300)}`);
  assert.equal(delta.base_digest, first.data.digest, 'computed from the list published before');
  assert.deepEqual(delta.added, [n.v4(3), n.v6(3)].sort());
  assert.deepEqual(delta.removed, []);
  const { _stamp: _s, ...signed } = delta;
  assert.ok(Buffer.byteLength(JSON.stringify(signed)) < 1024, 'a one-node delta is under 1 KiB');

  // The job the reactor started carries the delta, and both minions applied it.
  const job = await salt.waitForEvent("the delta's job", (e) => after_(since)(e) && isJobNew(e) && jobPayload(e)?.generation === delta.generation, 30_000);
  const kw = jobPayload(job)!;
  assert.ok(isDelta(kw), 'the job was given the delta form');
  assert.equal(kw.base_digest, first.data.digest);
  const jid = String(job.data.jid);
  for (const m of [a, b]) {
    const ret = await salt.waitForEvent(`${m.id} applies the delta`, retOf(jid, m), 30_000);
    const r = ret.data.return as Data;
    assert.equal(ret.data.retcode, 0, JSON.stringify(r));
    assert.equal(r.applied, true, JSON.stringify(r));
    assert.equal(r.need_full, false);
    assert.equal(r.digest, delta.digest, 'the list that results has the digest the delta names');
  }
  for (const m of [a, b]) {
    assert.equal(await reachable(n.v4(3), m), true, `p3 (IPv4) admitted by ${m.id}`);
    assert.equal(await reachable(n.v6(3), m, 6), true, `p3 (IPv6) admitted by ${m.id}`);
    assert.equal(await reachable(n.v4(9), m), false, `an outsider is still dropped by ${m.id}`);
  }
  lastGeneration = delta.generation as number;
  await bothCurrent(lastGeneration, 'both minions current after the delta');
  assert.match(await bridge.metrics(), /ksb_publish_forms_total\{cluster="prod",form="delta"\} [1-9]/);
});

test('a minion that lost its list answers need_full, gets the full list re-sent by the bridge and converges; the other applies the delta', async () => {
  assert.ok(lastGeneration > 0, 'needs the first test');
  const flushed = await salt.salt(b.id, 'kube_allowlist.flush', ['prod'], { timeoutS: 60 });
  assert.deepEqual((flushed[b.id] as Data).caches_removed, ['prod'], JSON.stringify(flushed));

  const since = salt.events.length;
  await kube.createNode('p4', [
    { type: 'InternalIP', address: n.v4(4) },
    { type: 'InternalIP', address: n.v6(4) },
  ]);
  const ev = await salt.waitForEvent('the delta of p4 joining', (e) => after_(since)(e) && e.tag === TAG, 30_000);
  const delta = ev.data;
  assert.ok(isDelta(delta), JSON.stringify(delta).slice(0, 300));
  assert.deepEqual(delta.added, [n.v4(4), n.v6(4)].sort());
  const generation = delta.generation as number;
  assert.ok(generation > lastGeneration);

  const job = await salt.waitForEvent("the delta's job", (e) => after_(since)(e) && isJobNew(e) && jobPayload(e)?.generation === generation, 30_000);
  assert.ok(isDelta(jobPayload(job)!));
  const jid = String(job.data.jid);
  const onA = await salt.waitForEvent(`${a.id} applies the delta`, retOf(jid, a), 30_000);
  assert.equal((onA.data.return as Data).applied, true, JSON.stringify(onA.data.return));
  const onB = await salt.waitForEvent(`${b.id} answers the delta`, retOf(jid, b), 30_000);
  const rb = onB.data.return as Data;
  assert.equal(onB.data.retcode, 0, JSON.stringify(rb));
  assert.equal(rb.applied, false, JSON.stringify(rb));
  assert.equal(rb.need_full, true, JSON.stringify(rb));
  assert.match(String(rb.reason), /^need_full: holds nothing, the delta is from sha256:/);

  // The bridge re-sends the full payload of that very generation to b alone.
  const resend = await salt.waitForEvent(
    'the full re-send to the minion that asked',
    (e) => after_(since)(e) && e.tag === TAG && isFull(e.data) && e.data.generation === generation,
    30_000,
  );
  assert.deepEqual(resend.data.minions, [b.id]);
  assert.equal(resend.data.digest, delta.digest);
  assert.equal((resend.data.ipv4 as string[]).length, 104);
  const fullJob = await salt.waitForEvent(
    "the full re-send's job",
    (e) => salt.events.indexOf(e) > salt.events.indexOf(resend) && isJobNew(e) && jobPayload(e)?.generation === generation && isFull(jobPayload(e)!),
    30_000,
  );
  assert.deepEqual(fullJob.data.minions, [b.id], 'targeted at b only (the hint narrows the pillar target)');
  const applied = await salt.waitForEvent(`${b.id} applies the full list`, retOf(String(fullJob.data.jid), b), 30_000);
  assert.equal((applied.data.return as Data).applied, true, JSON.stringify(applied.data.return));

  for (const m of [a, b]) {
    assert.equal(await reachable(n.v4(4), m), true, `p4 (IPv4) admitted by ${m.id}`);
    assert.equal(await reachable(n.v6(4), m, 6), true, `p4 (IPv6) admitted by ${m.id}`);
    assert.equal(await reachable(n.v4(1), m), true, `p1 still connects to ${m.id}`);
    assert.equal(await reachable(n.v4(9), m), false, `an outsider is dropped by ${m.id}`);
  }
  await bothCurrent(generation, 'the bridge shows both minions current');
  const st = await bridge.status();
  assert.deepEqual(st.clusters[0]!.minionsRefusing, [], 'need full is never held like a refusal');
  const metrics = await bridge.metrics();
  assert.match(metrics, /ksb_minion_need_full_total\{cluster="prod"\} 1\b/);
  assert.equal(salt.events.filter((e) => after_(since)(e) && e.tag === TAG && isFull(e.data)).length, 1, 'exactly one full re-send for that generation');
});

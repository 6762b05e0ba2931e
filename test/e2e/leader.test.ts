// Two bridges on the same cluster with Lease leader election (the Lease in kube-system, written with
// the bridge's restricted kubeconfig): only the holder publishes; a clean stop (SIGTERM) releases
// the Lease and the standby takes over at once; a crash (SIGKILL) leaves the Lease to expire and the
// standby takes over after the lease duration, never before. Every change is published exactly once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack } from '../harness/salt.ts';
import { busBarrier, payloadsOf, waitForAllowList } from '../harness/bus.ts';
import { runBridgeCli, spawnBridge, writeBridgeConfig, type BridgeProc } from '../harness/bridge.ts';
import { stopInOrder, sleep, waitFor } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';
import { verifyPayload } from '../../src/plan/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';

const KEYS = testKeys();
const TAG = 'kube-salt-bridge/cluster/alpha/nodes';
const LEASE_S = 4;

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
const configs: Record<'a' | 'b', { file: string; port: number }> = {} as never;
const procs: BridgeProc[] = [];
let a: BridgeProc;
let b: BridgeProc;

const published = (since = 0) => payloadsOf(salt, TAG, since);
const fired = (p: BridgeProc) => p.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(`fired ${TAG}`));
const startedLeading = (p: BridgeProc) => p.logs.filter((l) => l.msg === 'started leading');

function spawn(which: 'a' | 'b'): BridgeProc {
  const p = spawnBridge(configs[which].file, configs[which].port);
  procs.push(p);
  return p;
}

const barrier = () => busBarrier(salt);
const waitForList = (what: string, ipv4: string[], since: number, timeoutMs = 20_000) => waitForAllowList(salt, TAG, ipv4, { what, since, timeoutMs });

async function active(p: BridgeProc): Promise<boolean> {
  return (await p.status()).active;
}

/** Every generation on the bus appears once, and generations only go up. */
function assertOncePerGeneration(): void {
  const gens = published().map((p) => p.generation);
  assert.equal(new Set(gens).size, gens.length, `each generation fired once: ${gens.join(', ')}`);
  assert.deepEqual(
    gens,
    [...gens].sort((x, y) => x - y),
    'generations increase',
  );
}

before(
  async () => {
    kube = await startKube('leader');
    lab = await startLab();
    salt = await startSalt(lab, { minions: 0 });
    await kube.createNode('l1', [{ type: 'InternalIP', address: '10.40.0.1' }]);
    await kube.createNode('l2', [{ type: 'InternalIP', address: '10.40.0.2' }]);
    for (const id of ['a', 'b'] as const) {
      configs[id] = await writeBridgeConfig({
        clusters: [{ name: 'alpha', kube, families: ['ipv4'] }],
        salt,
        privateKey: KEYS.privateText,
        extra: {
          leaderElection: {
            enabled: true,
            identity: `bridge-${id}`,
            namespace: 'kube-system',
            name: 'kube-salt-bridge',
            leaseDurationSeconds: LEASE_S,
            renewDeadlineSeconds: 3,
            retryPeriodSeconds: 1,
          },
        },
      });
    }
    a = spawn('a');
    await a.waitReady();
    await a.waitLog('bridge-a leads', (l) => l.msg === 'started leading', 20_000);
    b = spawn('b');
    await b.waitReady();
    await b.waitLog('bridge-b sees bridge-a as leader', (l) => typeof l.msg === 'string' && l.msg === 'leader is bridge-a', 20_000);
  },
  { timeout: 300_000 },
);

after(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  await stopInOrder(salt, lab, kube);
});

test('only the lease holder publishes: one event per change, none from the standby', async () => {
  await waitForList('initial list from the leader', ['10.40.0.1', '10.40.0.2'], 0);
  assert.equal(await active(a), true);
  assert.equal(await active(b), false);
  const lease = await kube.admin.req<{ spec: { holderIdentity: string; leaseDurationSeconds: number } }>(
    'GET',
    '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-salt-bridge',
  );
  assert.equal(lease.spec.holderIdentity, 'bridge-a');
  assert.equal(lease.spec.leaseDurationSeconds, LEASE_S);

  const since = salt.events.length;
  await kube.createNode('l3', [{ type: 'InternalIP', address: '10.40.0.3' }]);
  const ev = await waitForList('l3 added', ['10.40.0.1', '10.40.0.2', '10.40.0.3'], since);
  assert.ok(verifyPayload(ev.data, KEYS.signer));
  await sleep(2000); // several retry periods and publish intervals for a second publisher to show up
  await barrier();
  assert.equal(published(since).length, 1, 'exactly one event for the change');
  assert.ok(fired(a).length >= 2, 'bridge-a fired the initial list and the change');
  assert.equal(fired(b).length, 0, 'the standby fired nothing');
  assert.equal(startedLeading(b).length, 0);

  const st = await runBridgeCli(['status', '--url', b.url], {}, { timeoutMs: 30_000 });
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /^bridge: standby \(not leader\)/);
  assert.match(st.stdout, /^alpha\s+yes\s+3\s/m, 'the standby keeps its view of the cluster current');
  assertOncePerGeneration();
});

test('SIGTERM on the leader: it releases the lease, the standby takes over promptly and publishes the next change', async (t) => {
  const lastA = published().at(-1)!;
  const since = salt.events.length;
  const killedAt = Date.now();
  assert.equal(await a.stop('SIGTERM'), 0);
  assert.ok(
    a.logs.some((l) => l.msg === 'released the lease'),
    'the leaving leader released the lease',
  );
  const took = await b.waitLog('bridge-b takes over', (l) => l.msg === 'started leading', 15_000);
  const takeoverMs = Number(took.time) - killedAt;
  t.diagnostic(`takeover after SIGTERM: ${takeoverMs} ms`);
  // Released lease: no need to wait for it to expire (retry period 1 s, jitter up to ×2.2).
  assert.ok(takeoverMs < LEASE_S * 1000, `took over in ${takeoverMs} ms, before the lease would have expired`);

  // The new leader publishes the current list (its own state is empty) with a higher generation.
  const first = (await waitForList('bridge-b publishes on takeover', ['10.40.0.1', '10.40.0.2', '10.40.0.3'], since)).data as unknown as AllowListPayload;
  assert.ok(first.generation > lastA.generation, 'generations keep increasing across leaders');

  const since2 = salt.events.length;
  await kube.createNode('l4', [{ type: 'InternalIP', address: '10.40.0.4' }]);
  await waitForList('l4 added, by bridge-b', ['10.40.0.1', '10.40.0.2', '10.40.0.3', '10.40.0.4'], since2);
  await sleep(1500);
  await barrier();
  assert.equal(published(since2).length, 1, 'exactly one event for the change');
  assert.ok(fired(b).length >= 2);
  assert.equal(await active(b), true);
  assertOncePerGeneration();
});

test('SIGKILL on the leader: the standby waits for the lease to expire, then takes over and publishes', async (t) => {
  // bridge-a comes back (same identity and state) as the standby.
  a = spawn('a');
  await a.waitReady();
  await a.waitLog('bridge-a sees bridge-b as leader', (l) => l.msg === 'leader is bridge-b', 20_000);
  assert.equal(await active(a), false);
  await sleep(2500); // let bridge-a observe a few renewals

  const since = salt.events.length;
  const killedAt = Date.now();
  assert.notEqual(await b.stop('SIGKILL'), 0);
  // A change while nobody leads: must be published by the new leader.
  await kube.deleteNode('l1');
  const took = await a.waitLog('bridge-a takes over', (l) => l.msg === 'started leading', 20_000);
  const takeoverMs = Number(took.time) - killedAt;
  t.diagnostic(`takeover after SIGKILL: ${takeoverMs} ms (lease ${LEASE_S} s)`);
  // bridge-a judges expiry from the local time it last saw the record change (client-go semantics),
  // polling every retryPeriod × [1, 2.2): it may see the last renewal up to ~2.2 s after the kill
  // and notice expiry up to ~2.2 s late, so takeover lands in about [LEASE_S - 2.2, LEASE_S + 4.4] s.
  assert.ok(takeoverMs >= (LEASE_S - 2.5) * 1000, `did not steal a live-looking lease (${takeoverMs} ms)`);
  assert.ok(takeoverMs < (LEASE_S + 7) * 1000, `took over within the lease duration plus two jittered retry periods (${takeoverMs} ms)`);

  await waitForList('l1 removal, by bridge-a', ['10.40.0.2', '10.40.0.3', '10.40.0.4'], since);
  await sleep(1500);
  await barrier();
  assert.equal(published(since).length, 1, 'one event: the list without l1');
  const lease = await kube.admin.req<{ spec: { holderIdentity: string; leaseTransitions: number } }>(
    'GET',
    '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-salt-bridge',
  );
  assert.equal(lease.spec.holderIdentity, 'bridge-a');
  assert.ok(lease.spec.leaseTransitions >= 2, `transitions counted: ${lease.spec.leaseTransitions}`);
  assertOncePerGeneration();
});

/** The `ksb_leader` gauge as the bridge serves it on /metrics. */
async function leaderGauge(p: BridgeProc): Promise<number> {
  const m = /^ksb_leader (\S+)$/m.exec(await p.metrics());
  assert.ok(m, 'ksb_leader is exported');
  return Number(m[1]);
}

test('apiserver down: the leader cannot renew and stops leading within the renew deadline; after it returns exactly one bridge leads and publishes the next change once', async (t) => {
  const RENEW_DEADLINE_MS = 3000; // as configured in before()
  // bridge-b comes back as the standby, so both bridges run through the outage.
  b = spawn('b');
  await b.waitReady();
  await b.waitLog('bridge-b sees bridge-a as leader', (l) => l.msg === 'leader is bridge-a', 20_000);
  assert.equal(await active(a), true);
  assert.equal(await leaderGauge(a), 1);
  assert.equal(await leaderGauge(b), 0);
  const stoppedBefore = { a: a.logs.filter((l) => l.msg === 'stopped leading').length, b: b.logs.filter((l) => l.msg === 'stopped leading').length };
  const startedBefore = { a: startedLeading(a).length, b: startedLeading(b).length };

  // The Lease lives in this apiserver: from here on nobody can renew (or publish — nodes come from
  // it too). While it shuts down, probe it back to back: the last renewal we read back is one the
  // leader did send, and the first probe that fails was sent after the apiserver stopped answering.
  const LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-salt-bridge';
  let lastRenew = 0;
  let firstFailAt: number | undefined;
  let stopping = true;
  const probing = (async () => {
    while (stopping) {
      const sentAt = Date.now();
      try {
        const l = await kube.admin.req<{ spec: { holderIdentity: string; renewTime: string } }>('GET', LEASE_PATH);
        if (l.spec.holderIdentity === 'bridge-a') lastRenew = Date.parse(l.spec.renewTime);
        firstFailAt = undefined; // it answered after all
      } catch {
        firstFailAt ??= sentAt;
      }
      await sleep(25);
    }
  })();
  const downAt = Date.now();
  const stoppingApiserver = kube.stopApiserver().finally(() => {
    stopping = false;
  });
  try {
    const stopped = await a.waitLog('bridge-a stops leading', (l) => l.msg === 'stopped leading' && Number(l.time) >= downAt, RENEW_DEADLINE_MS + 5000);
    const stoppedAt = Number(stopped.time);
    await waitFor('the apiserver no longer answers', () => firstFailAt !== undefined, 5000, 25);
    t.diagnostic(
      `bridge-a stopped leading ${stoppedAt - lastRenew} ms after its last renewal, ${stoppedAt - firstFailAt!} ms after the apiserver stopped answering (renew deadline ${RENEW_DEADLINE_MS} ms)`,
    );
    assert.ok(lastRenew > 0, 'the probe read a renewal by bridge-a');
    // The safety property: it stopped leading before its lease could expire for the standby. (The
    // margin between renew deadline and lease duration absorbs timer slack on a busy machine.)
    assert.ok(stoppedAt - lastRenew < LEASE_S * 1000, `stepped down ${stoppedAt - lastRenew} ms after its last renewal (lease ${LEASE_S} s)`);
    // …and not before the deadline had passed since the last renewal it made.
    assert.ok(stoppedAt - lastRenew >= RENEW_DEADLINE_MS - 200, `stepped down only ${stoppedAt - lastRenew} ms after its last renewal`);
    await a.waitLog('the controller paused publishing', (l) => l.msg === 'publishing paused (not leader)' && Number(l.time) >= downAt, 2000);
    // Both processes keep running, and neither claims to lead while the lease cannot be renewed.
    await sleep(1000);
    for (const p of [a, b]) {
      assert.equal(p.child.exitCode, null, 'the bridge keeps running through the outage');
      assert.equal(await active(p), false, `${p === a ? 'bridge-a' : 'bridge-b'} status: not active`);
      assert.equal(await leaderGauge(p), 0, `${p === a ? 'bridge-a' : 'bridge-b'}: ksb_leader 0`);
    }
    const st = await runBridgeCli(['status', '--url', a.url], {}, { timeoutMs: 30_000 });
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /^bridge: standby \(not leader\)/);
    assert.equal(startedLeading(b).length, startedBefore.b, 'bridge-b did not take over a lease it cannot write');
  } finally {
    await stoppingApiserver;
    await probing;
    t.diagnostic(`apiserver stop took ${Date.now() - downAt} ms`);
    await kube.startApiserver();
  }

  // Exactly one of the two takes the lease (bridge-a renews its own record or bridge-b finds it expired).
  const leader = await waitFor('a leader after the outage', async () => ((await active(a)) ? a : (await active(b)) ? b : undefined), 30_000, 200);
  const follower = leader === a ? b : a;
  const leaderId = leader === a ? 'bridge-a' : 'bridge-b';
  t.diagnostic(`after the outage ${leaderId} leads`);
  await sleep(LEASE_S * 1000); // a full lease duration: the other one does not take over as well
  assert.equal(await active(leader), true);
  assert.equal(await active(follower), false);
  assert.equal(await leaderGauge(leader), 1);
  assert.equal(await leaderGauge(follower), 0);
  const newStarts = startedLeading(a).length - startedBefore.a + startedLeading(b).length - startedBefore.b;
  assert.equal(newStarts, 1, 'one "started leading" across both bridges');
  assert.equal(follower.logs.filter((l) => l.msg === 'stopped leading').length - (follower === a ? stoppedBefore.a + 1 : stoppedBefore.b), 0, 'no flapping');
  const lease = await kube.admin.req<{ spec: { holderIdentity: string } }>(
    'GET',
    '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-salt-bridge',
  );
  assert.equal(lease.spec.holderIdentity, leaderId);

  // Both node sources have re-listed; anything the takeover republished is on the bus before `since`.
  for (const p of [a, b]) {
    await waitFor(
      'cluster synced again',
      async () => {
        const c = (await p.status()).clusters[0] as { synced: boolean; nodes: number };
        return c.synced && c.nodes === 3;
      },
      30_000,
    );
  }
  await sleep(1000);
  await barrier();
  const since = salt.events.length;
  const followerFired = fired(follower).length;
  await kube.createNode('l5', [{ type: 'InternalIP', address: '10.40.0.5' }]);
  const ev = await waitForList('l5 added, by the leader', ['10.40.0.2', '10.40.0.3', '10.40.0.4', '10.40.0.5'], since);
  assert.ok(verifyPayload(ev.data, KEYS.signer));
  await sleep(1500);
  await barrier();
  assert.equal(published(since).length, 1, 'exactly one event for the change');
  assert.equal(fired(follower).length, followerFired, 'the follower fired nothing');
  // A takeover without a change re-sends the last list under its generation (same digest, nothing
  // for a minion to do); a change gets a new generation, higher than any before, fired once.
  const gens = published().map((p) => p.generation);
  assert.deepEqual(
    gens,
    [...gens].sort((x, y) => x - y),
    'generations never go down',
  );
  const g = (ev.data as unknown as AllowListPayload).generation;
  assert.equal(gens.filter((x) => x === g).length, 1, 'the change has a generation of its own');
  assert.equal(gens.at(-2)! < g, true, 'and a higher one than anything fired before');
});

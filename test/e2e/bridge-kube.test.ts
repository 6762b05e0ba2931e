// The bridge against a real kube-apiserver (with only list/watch RBAC on nodes) and a real
// salt-api: node changes become signed events on the master bus; noise does not; an apiserver
// restart with a forced etcd compaction (410 Gone on resume) converges without an empty publish.
// Lists go one Node per page, so that each is paginated (the next page requested ahead).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack } from '../harness/salt.ts';
import { payloadsOf, waitForAllowList } from '../harness/bus.ts';
import { startBridge, type BridgeProc } from '../harness/bridge.ts';
import { stopInOrder, sleep } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';
import { verifyPayload } from '../../src/plan/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';

const KEYS = testKeys();
const TAG = 'kube-salt-bridge/cluster/alpha/nodes';

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let bridge: BridgeProc;

const published = () => payloadsOf(salt, TAG);
const waitForList = (what: string, ipv4: string[], timeoutMs = 15_000) => waitForAllowList(salt, TAG, ipv4, { what, timeoutMs });

before(
  async () => {
    kube = await startKube('alpha');
    lab = await startLab();
    salt = await startSalt(lab, { minions: 0 });
    await kube.createNode('a1', [
      { type: 'InternalIP', address: '10.20.0.1' },
      { type: 'Hostname', address: 'a1' },
    ]);
    await kube.createNode('a2', [
      { type: 'InternalIP', address: '10.20.0.2' },
      { type: 'ExternalIP', address: '203.0.113.2' },
    ]);
    // One Node per list page: every list (the first, the relist after 410) is paginated and pipelined.
    bridge = await startBridge({
      clusters: [
        { name: 'alpha', kube, families: ['ipv4'], more: { watch: { timeoutSeconds: 60, watchdogSeconds: 90, relistIntervalSeconds: 1800, listPageSize: 1 } } },
      ],
      salt,
      privateKey: KEYS.privateText,
    });
    await bridge.waitReady();
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(bridge, salt, lab, kube));

test('the initial list is published as a signed event with the documented tag', async () => {
  const ev = await waitForList('initial list', ['10.20.0.1', '10.20.0.2']);
  const p = ev.data as unknown as AllowListPayload;
  assert.equal(p.cluster, 'alpha');
  assert.equal(p.nodes, 2);
  assert.equal(p.version, 2);
  assert.equal('target' in p, false, 'the event names no target: the reactor derives it from the tag');
  assert.equal(p.key_id, KEYS.keyId);
  assert.ok(verifyPayload(p, KEYS.signer), "signature verifies with the bridge's public key");
  assert.ok(!verifyPayload(p, testKeys('another key').signer), 'and not with another key');
});

test('adding, re-addressing and deleting nodes is seen and published with a higher generation', async () => {
  const g0 = Math.max(...published().map((p) => p.generation));
  await kube.createNode('a3', [{ type: 'InternalIP', address: '10.20.0.3' }]);
  const added = (await waitForList('a3 added', ['10.20.0.1', '10.20.0.2', '10.20.0.3'])).data as unknown as AllowListPayload;
  assert.deepEqual(added.added, ['10.20.0.3']);
  assert.ok(added.generation > g0);

  await kube.setAddresses('a2', [{ type: 'InternalIP', address: '10.20.0.22' }]);
  const moved = (await waitForList('a2 re-addressed', ['10.20.0.1', '10.20.0.22', '10.20.0.3'])).data as unknown as AllowListPayload;
  assert.deepEqual(moved.removed, ['10.20.0.2']);
  assert.deepEqual(moved.added, ['10.20.0.22']);
  assert.ok(moved.generation > added.generation);

  await kube.deleteNode('a3');
  const gone = (await waitForList('a3 deleted', ['10.20.0.1', '10.20.0.22'])).data as unknown as AllowListPayload;
  assert.deepEqual(gone.removed, ['10.20.0.3']);
  assert.ok(gone.generation > moved.generation);
});

test('200 status-only updates (heartbeats) and label changes publish nothing', async () => {
  await sleep(1500); // let any earlier publish land
  const before = published().length;
  for (let i = 0; i < 200; i++) await kube.heartbeat(i % 2 ? 'a1' : 'a2');
  await kube.setLabels('a1', { 'example.com/touched': 'yes' });
  await sleep(3000); // several maxDelay periods
  assert.equal(published().length, before, 'no event for heartbeats or labels');
  const metrics = await bridge.metrics();
  assert.match(metrics, /ksb_publishes_total\{cluster="alpha",reason="publish"\} \d+/);
});

test('apiserver restart with a forced compaction: watch gets 410, relists, converges with no empty publish', async () => {
  const metricsBefore = await bridge.metrics();
  await kube.admin.req('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'bump' }, data: { a: 'b' } });
  await kube.compact();
  await kube.stopApiserver();
  await sleep(2000);
  await kube.startApiserver();
  await kube.createNode('a4', [{ type: 'InternalIP', address: '10.20.0.4' }]);
  await waitForList('a4 after restart', ['10.20.0.1', '10.20.0.22', '10.20.0.4'], 60_000);
  for (const p of published()) assert.ok(p.ipv4.length > 0, `no empty list was ever published (generation ${p.generation})`);
  const gone = (m: string) => Number(/ksb_watch_restarts_total\{cluster="alpha",reason="gone"\} (\d+)/.exec(m)?.[1] ?? 0);
  const metricsAfter = await bridge.metrics();
  assert.ok(
    gone(metricsAfter) > gone(metricsBefore),
    `a 410 Gone was seen and handled by a relist:\n${metricsAfter
      .split('\n')
      .filter((l) => l.startsWith('ksb_watch') || l.startsWith('ksb_relists'))
      .join('\n')}`,
  );
});

test('only list/watch on nodes is needed: the bridge ran all of the above with the restricted kubeconfig', async () => {
  const st = await bridge.status();
  const alpha = st.clusters.find((c) => c.cluster === 'alpha')!;
  assert.equal(alpha.synced, true);
  assert.equal(alpha.nodes, 3);
  assert.equal(bridge.logs.filter((l) => /forbidden/i.test(String(l.msg))).length, 0);
});

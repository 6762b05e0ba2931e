// What one node can put into the allow-list, against a real kube-apiserver: Node statuses patched
// through the status subresource with a network as InternalIP, 300 addresses on one node, an
// address outside allowedNetworks and a 5,000-character value. Each bad node is left out on its
// own, the rest of the cluster is published, every rejection is counted once and logged once
// (cut to 64 characters), however often the cluster is re-planned. The bridge runs for real
// (separate process, restricted kubeconfig) with --dry-run: what it would fire is its output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type KubeCluster, type NodeAddress } from '../harness/kube.ts';
import { startBridge, type BridgeProc } from '../harness/bridge.ts';
import { testKeys } from '../harness/keys.ts';
import { stopInOrder, sleep } from '../harness/proc.ts';
import type { SaltStack } from '../harness/salt.ts';

const KEYS = testKeys('trust-kube e2e');
const TAG = 'kube-salt-bridge/cluster/trust/nodes';
// --dry-run fires nothing; salt-api is never called for an event, so none is started.
const NO_SALT = { apiUrl: 'http://127.0.0.1:9', apiCaFile: undefined, bridge: { username: 'ksb', password: 'unused-in-dry-run' } } as unknown as SaltStack;

let kube: KubeCluster;
let bridge: BridgeProc;

const internal = (...ips: string[]): NodeAddress[] => ips.map((address) => ({ type: 'InternalIP', address }));
const HUGE = `10.${'9'.repeat(4997)}`;

type DryRun = { event: { tag: string; data: { ipv4: string[]; nodes: number; generation: number } } };
const wouldFire = () => bridge.logs.filter((l) => (l as { dryRun?: boolean }).dryRun === true && (l as DryRun).event?.tag === TAG) as unknown as DryRun[];
const rejections = () =>
  bridge.logs.filter((l) => l.rejected !== undefined) as Array<{ rejected: { node: string; value: string; reason: string; source: string }; msg: string }>;

async function waitForList(what: string, ipv4: string[]): Promise<DryRun> {
  const want = JSON.stringify(ipv4);
  const l = await bridge.waitLog(what, (x) => (x as { dryRun?: boolean }).dryRun === true && JSON.stringify((x as DryRun).event?.data?.ipv4) === want, 30_000);
  return l as unknown as DryRun;
}

async function rejectedCounts(): Promise<Record<string, number>> {
  const text = await bridge.metrics();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^ksb_addresses_rejected_total\{cluster="trust",reason="([a-z-]+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

before(
  async () => {
    kube = await startKube('trust');
    await kube.createNode('good-1', internal('10.40.0.1'));
    await kube.createNode('good-2', internal('10.40.0.2'));
    await kube.createNode('net-as-ip', internal('198.51.0.0/16'));
    await kube.createNode('flood', internal(...Array.from({ length: 300 }, (_, i) => `10.41.${i >> 8}.${i & 255}`)));
    await kube.createNode('outsider', internal('203.0.113.7'));
    await kube.createNode('long-value', internal(HUGE, '10.40.0.5'));
    bridge = await startBridge(
      {
        clusters: [{ name: 'trust', kube, families: ['ipv4'], safety: { maxShrinkFraction: 0.9, minNodes: 1 }, more: { allowedNetworks: ['10.0.0.0/8'] } }],
        salt: NO_SALT,
        privateKey: KEYS.privateText,
      },
      ['--dry-run'],
    );
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(bridge, kube));

test('the apiserver stored the hostile statuses as given (the bridge is the one that must refuse them)', async () => {
  const nodes = await kube.listNodes();
  const addrs = (n: string) => (nodes.find((x) => x.metadata.name === n)?.status as { addresses: NodeAddress[] }).addresses.map((a) => a.address);
  assert.deepEqual(addrs('net-as-ip'), ['198.51.0.0/16']);
  assert.equal(addrs('flood').length, 300);
  assert.equal(addrs('long-value')[0]!.length, 5000);
});

test('each bad node is left out on its own; the rest of the cluster is published', async () => {
  const ev = await waitForList('the good nodes', ['10.40.0.1', '10.40.0.2', '10.40.0.5']);
  assert.equal(ev.event.data.nodes, 3, 'good-1, good-2 and the good address of long-value');
  for (const e of wouldFire()) {
    assert.ok(
      !e.event.data.ipv4.some((a) => a.includes('/') || a.startsWith('10.41.') || a === '203.0.113.7'),
      `never published: ${e.event.data.ipv4.join(',')}`,
    );
  }
  const st = await bridge.status();
  const c = st.clusters[0] as { pending: string[]; synced: boolean };
  assert.equal(c.synced, true);
  assert.deepEqual(c.pending, ['flood', 'net-as-ip', 'outsider']);
});

test('every rejection is logged once, with its reason, the value cut to 64 characters, and counted once', async () => {
  await bridge.waitLog('the flood rejection', (l) => (l.rejected as { node?: string } | undefined)?.node === 'flood');
  const seen = rejections()
    .map((r) => `${r.rejected.node} ${r.rejected.reason}`)
    .sort();
  assert.deepEqual(seen, ['flood too-many', 'long-value invalid', 'net-as-ip not-host', 'outsider outside-allowed']);
  const long = rejections().find((r) => r.rejected.node === 'long-value')!;
  assert.equal(long.rejected.value, `${HUGE.slice(0, 64)}…`);
  assert.ok(!bridge.rawOutput().includes(HUGE.slice(0, 200)), 'the 5,000-character value never reaches the log whole');
  assert.equal(rejections().find((r) => r.rejected.node === 'flood')!.rejected.value, '300 ipv4 addresses');
  assert.deepEqual(await rejectedCounts(), { invalid: 1, 'not-host': 1, 'too-many': 1, 'outside-allowed': 1 });
});

test('re-planning (nodes joining, leaving, heartbeats) neither logs nor counts them again', async () => {
  await kube.createNode('good-3', internal('10.40.0.3'));
  await waitForList('good-3 joined', ['10.40.0.1', '10.40.0.2', '10.40.0.3', '10.40.0.5']);
  for (let i = 0; i < 20; i++) await kube.heartbeat(i % 2 ? 'flood' : 'net-as-ip');
  await kube.setAddresses('good-3', internal('10.40.0.4'));
  await waitForList('good-3 re-addressed', ['10.40.0.1', '10.40.0.2', '10.40.0.4', '10.40.0.5']);
  await kube.deleteNode('good-3');
  await waitForList('good-3 left', ['10.40.0.1', '10.40.0.2', '10.40.0.5']);
  await sleep(1000);
  assert.equal(
    rejections().length,
    4,
    rejections()
      .map((r) => r.msg)
      .join('\n'),
  );
  assert.deepEqual(await rejectedCounts(), { invalid: 1, 'not-host': 1, 'too-many': 1, 'outside-allowed': 1 });
});

test('a node that fixes its status is published; a bad node that is gone is forgotten, and reported again if it returns', async () => {
  await kube.setAddresses('net-as-ip', internal('10.40.0.9'));
  await waitForList('net-as-ip fixed', ['10.40.0.1', '10.40.0.2', '10.40.0.5', '10.40.0.9']);
  await kube.deleteNode('outsider');
  await sleep(1500); // a run without the node
  await kube.createNode('outsider', internal('203.0.113.7'));
  await bridge.waitLog('outsider reported again', () => rejections().filter((r) => r.rejected.node === 'outsider').length === 2);
  assert.equal((await rejectedCounts())['outside-allowed'], 2);
  assert.equal(rejections().filter((r) => r.rejected.node === 'net-as-ip').length, 1);
});

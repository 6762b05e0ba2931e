// The live demo: a real kube-apiserver + etcd, a real salt-master + salt-api, two salt-minions in
// their own network namespaces each running redis-server, the bridge, and real TCP connections
// from "node hosts" — showing a node being admitted and dropped within a second of its Node object
// appearing or going. Run through scripts/demo.sh (which does the set-up). `--keep` leaves the
// stack running until Ctrl-C.
import { spawn } from 'node:child_process';
import { startKube } from '../test/harness/kube.ts';
import { startLab, type Host } from '../test/harness/netns.ts';
import { startSalt, type SaltStack } from '../test/harness/salt.ts';
import { startRedis, probe } from '../test/harness/redis.ts';
import { startBridge, runBridgeCli } from '../test/harness/bridge.ts';
import { teardownAll, sleep } from '../test/harness/proc.ts';
import { testKeys } from '../test/harness/keys.ts';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold('==>')} ${bold(s)}`);
const KEYS = testKeys('demo');

async function matrix(from: Host, sources: Array<[string, string]>, salt: SaltStack): Promise<void> {
  const rows: string[] = [];
  for (const [label, ip] of sources) {
    const cells: string[] = [];
    for (const m of salt.minions) cells.push(`${m.id}: ${(await probe(from, ip, m.host.ipv4, 0.5)).ok ? 'ACCEPTED' : 'dropped '}`);
    rows.push(`   ${label.padEnd(22)} ${ip.padEnd(16)} → ${cells.join('   ')}`);
  }
  console.log(rows.join('\n'));
}

async function timeUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await fn()) return Math.round(performance.now() - t0);
    await sleep(20);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  step('starting a real kube-apiserver + etcd (cluster "demo")');
  const kube = await startKube('demo');
  console.log(`   API ${kube.url}; the bridge uses a kubeconfig that may only get/list/watch nodes`);

  step('starting salt-master, salt-api (TLS) and two salt-minions, each in its own network namespace');
  const lab = await startLab();
  const salt = await startSalt(lab, { minions: 2 });
  const [db, other] = salt.minions as [SaltStack['minions'][0], SaltStack['minions'][0]];
  console.log(`   ${db.id} at ${db.host.ipv4} declares cluster "demo" in pillar (rule: tcp/6379 from the cluster's nodes)`);
  console.log(`   ${other.id} at ${other.host.ipv4} declares nothing: it must stay untouched`);
  console.log(`   the bridge signs with Ed25519 key ${KEYS.keyId}; ${db.id}'s pillar holds only its public key`);
  await salt.setPillar({
    [db.id]: {
      kube_allowlist: {
        public_keys: [KEYS.publicText],
        backend: 'ipset',
        clusters: { demo: {} },
        rules: [{ name: 'redis', clusters: ['demo'], proto: 'tcp', ports: [6379], others: 'drop', families: ['ipv4'] }],
      },
    },
    [other.id]: {},
  });
  for (const m of salt.minions) await startRedis(m.host);
  const applied = await salt.salt(db.id, 'state.apply', ['kube_allowlist'], { timeoutS: 120 });
  console.log(
    `   highstate of the formula on ${db.id}: ${Object.values((applied[db.id] ?? {}) as Record<string, { result: boolean }>).every((s) => s.result) ? 'ok' : JSON.stringify(applied)}`,
  );

  const nodes = await lab.addHost('nodes');
  const ip = (n: number) => lab.nodeIp4(n);
  for (const n of [1, 2, 3, 50]) await nodes.addAddress(ip(n));

  step('creating two Node objects, then starting kube-salt-bridge');
  await kube.createNode('demo-node-1', [{ type: 'InternalIP', address: ip(1) }]);
  await kube.createNode('demo-node-2', [{ type: 'InternalIP', address: ip(2) }]);
  const bridge = await startBridge({
    clusters: [{ name: 'demo', kube, families: ['ipv4'] }],
    salt,
    privateKey: KEYS.privateText,
    extra: { log: { level: 'info' } },
  });
  await bridge.waitReady();
  // Redis is open to everyone until the first list is applied: wait until outsiders are dropped.
  await timeUntil('first list applied', async () => !(await probe(nodes, ip(50), db.host.ipv4, 0.3)).ok, 30_000);
  console.log('   real TCP connections (redis PING) from the node hosts:');
  await matrix(
    nodes,
    [
      ['demo-node-1', ip(1)],
      ['demo-node-2', ip(2)],
      ['not a node', ip(50)],
    ],
    salt,
  );

  step('a node joins: creating Node demo-node-3 (the bus, as `salt-run state.event pretty=True` shows it)');
  const bus = spawn('salt-run', ['-c', salt.configDir, 'state.event', 'pretty=True', 'tagmatch=kube-salt-bridge/*'], {
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  let busText = '';
  bus.stdout.on('data', (d: Buffer) => (busText += d.toString()));
  await sleep(1500);
  await kube.createNode('demo-node-3', [{ type: 'InternalIP', address: ip(3) }]);
  const joinMs = await timeUntil('node-3 admitted', async () => (await probe(nodes, ip(3), db.host.ipv4, 0.2)).ok);
  console.log(`   demo-node-3 could connect ${joinMs} ms after its Node object was created`);
  await sleep(500);
  bus.kill();
  console.log(
    busText
      .split('\n')
      .slice(0, 40)
      .map((l) => `   ${l}`)
      .join('\n'),
  );

  step('a node leaves: deleting Node demo-node-1');
  await kube.deleteNode('demo-node-1');
  const leaveMs = await timeUntil('node-1 dropped', async () => !(await probe(nodes, ip(1), db.host.ipv4, 0.2)).ok);
  console.log(`   demo-node-1 was dropped ${leaveMs} ms after its Node object was deleted`);
  await matrix(
    nodes,
    [
      ['demo-node-1 (deleted)', ip(1)],
      ['demo-node-2', ip(2)],
      ['demo-node-3', ip(3)],
      ['not a node', ip(50)],
    ],
    salt,
  );

  step('the cluster becomes unreachable: stopping kube-apiserver — the last good list stays');
  await kube.stopApiserver();
  await sleep(2000);
  await matrix(
    nodes,
    [
      ['demo-node-2', ip(2)],
      ['demo-node-3', ip(3)],
    ],
    salt,
  );
  await kube.startApiserver();

  step('kube-salt-bridge status');
  await sleep(1500);
  const st = await runBridgeCli(['status', '--url', bridge.url]);
  console.log(
    st.stdout
      .split('\n')
      .map((l) => `   ${l}`)
      .join('\n'),
  );

  step(`what ${db.id}'s firewall holds (ipset + its own iptables chain), and the status runner`);
  console.log(
    (await db.host.exec('ipset', ['list', '-o', 'save'])).stdout
      .split('\n')
      .filter((l) => l.includes('ksb'))
      .map((l) => `   ${l}`)
      .join('\n'),
  );
  console.log(
    (await db.host.exec('iptables-save', [])).stdout
      .split('\n')
      .filter((l) => /KSB/.test(l))
      .map((l) => `   ${l}`)
      .join('\n'),
  );
  const runner = await salt.cli('salt-run', ['kube_allowlist.status']);
  console.log(
    runner.stdout
      .split('\n')
      .map((l) => `   ${l}`)
      .join('\n'),
  );
  const untouched = await other.firewall();
  console.log(`   ${other.id}: ${/KSB|ksb/.test(untouched.iptables + untouched.ipset) ? 'HAS our rules (unexpected!)' : 'no rules of ours (not targeted)'}`);

  if (keep) {
    step(`stack is up; salt config dir ${salt.configDir}; bridge ${bridge.url}. Ctrl-C to stop.`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  step('tearing down');
  await bridge.stop();
  await salt.stop();
  await lab.stop();
  await kube.stop();
  teardownAll();
  console.log(`\n   summary: join admitted in ${joinMs} ms, leave dropped in ${leaveMs} ms (real packets, real Kubernetes and Salt)`);
}

main().catch((err: Error) => {
  console.error(`demo failed: ${err.message}`);
  teardownAll();
  process.exit(1);
});

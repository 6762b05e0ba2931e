// Proves the test stack is real: a real kube-apiserver + etcd, a real salt-master, salt-api and a
// salt-minion in its own network namespace, and the real kernel firewall in that namespace.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab, type Host } from '../harness/netns.ts';
import { startSalt, type SaltStack } from '../harness/salt.ts';
import { startRedis, probe } from '../harness/redis.ts';
import { httpsJson } from '../harness/https.ts';
import { stopInOrder, leftovers } from '../harness/proc.ts';

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let nodes: Host;

before(
  async () => {
    kube = await startKube('smoke');
    lab = await startLab();
    salt = await startSalt(lab, { minions: 1, reactor: false });
    nodes = await lab.addHost('nodes');
  },
  { timeout: 300_000 },
);

let stopped = false;
after(() => (stopped ? undefined : stopInOrder(salt, lab, kube)));

test('a Node created through the API is seen by a watch with the restricted kubeconfig', async () => {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.bridgeKubeconfig);
  const seen = new Promise<string[]>((resolve, reject) => {
    const w = new k8s.Watch(kc);
    const timer = setTimeout(() => reject(new Error('no ADDED event within 20 s')), 20_000);
    w.watch(
      '/api/v1/nodes',
      {},
      (type, obj: k8s.V1Node) => {
        if ((type === 'ADDED' || type === 'MODIFIED') && obj.metadata?.name === 'smoke-node-1' && obj.status?.addresses?.length) {
          clearTimeout(timer);
          resolve(obj.status.addresses.map((a) => a.address));
        }
      },
      (err) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
      },
    ).catch(reject);
  });
  await kube.createNode('smoke-node-1', [{ type: 'InternalIP', address: lab.nodeIp4(1) }]);
  assert.deepEqual(await seen, [lab.nodeIp4(1)]);

  // ...and the restricted user really is restricted.
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await assert.rejects(core.listNamespacedSecret({ namespace: 'default' }), (err: unknown) => (err as { code?: number }).code === 403);
});

test('an event fired through salt-api is seen on the master bus', async () => {
  const ca = readFileSync(salt.apiCaFile);
  const login = await httpsJson<{ return: Array<{ token: string }> }>(`${salt.apiUrl}/login`, {
    method: 'POST',
    ca,
    body: { username: salt.bridge.username, password: salt.bridge.password, eauth: 'file' },
  });
  const token = login.return[0]!.token;
  const tag = 'kube-salt-bridge/cluster/smoke/nodes';
  const res = await httpsJson<{ return: unknown[] }>(`${salt.apiUrl}/`, {
    method: 'POST',
    ca,
    headers: { 'X-Auth-Token': token },
    body: [{ client: 'runner', fun: 'event.send', tag, data: { hello: 'bus' } }],
  });
  assert.deepEqual(res.return, [true]);
  const ev = await salt.waitForEvent(tag, (e) => e.tag === tag);
  assert.equal(ev.data.hello, 'bus');
});

test('the minion in its own namespace answers test.ping', async () => {
  const m = salt.minions[0]!;
  assert.deepEqual(await salt.salt(m.id, 'test.ping'), { [m.id]: true });
  const ips = (await salt.salt(m.id, 'network.ip_addrs')) as Record<string, string[]>;
  assert.deepEqual(ips[m.id], [m.host.ipv4], 'the minion sees only its own namespace address');
});

test('an iptables rule in the minion namespace drops, then accepts, a real TCP connection from a node host', async () => {
  const m = salt.minions[0]!;
  await startRedis(m.host);
  const nodeIp = lab.nodeIp4(1);
  await nodes.addAddress(nodeIp);
  assert.equal((await probe(nodes, nodeIp, m.host.ipv4)).ok, true, 'open before any rule');

  await m.host.exec('iptables', ['-I', 'INPUT', '-p', 'tcp', '--dport', '6379', '-j', 'DROP']);
  const dropped = await probe(nodes, nodeIp, m.host.ipv4);
  assert.equal(dropped.ok, false);
  assert.match(dropped.error ?? '', /timed out|TimeoutError/);

  await m.host.exec('iptables', ['-I', 'INPUT', '-p', 'tcp', '-s', nodeIp, '--dport', '6379', '-j', 'ACCEPT']);
  assert.equal((await probe(nodes, nodeIp, m.host.ipv4)).ok, true, 'accepted once the node IP is allowed');
  const other = lab.nodeIp4(2);
  await nodes.addAddress(other);
  assert.equal((await probe(nodes, other, m.host.ipv4)).ok, false, 'another source is still dropped');
});

test('stopping the stack leaves no process, namespace or link behind', async () => {
  stopped = true;
  // Each part's own stop(), before the catch-all teardown: Salt's daemons fork workers, and one that
  // outlives its parent keeps its socket on the lab address.
  for (const part of [salt, lab, kube]) await part.stop();
  const left = leftovers();
  await stopInOrder(); // the catch-all, so that a failure here leaves nothing behind either
  assert.deepEqual(left, { pids: [], netns: [], links: [] });
});

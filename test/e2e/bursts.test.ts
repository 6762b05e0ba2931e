// Bursts, scale-downs and refusals on the real stack: a real kube-apiserver holding two
// label-selected clusters (east: pool=east, west: pool=west), a real salt-master + salt-api, one
// protected minion (ipset, redis on 6379) whose single pillar rule names both clusters, node hosts
// holding the Node IPs, and the bridge as its own process. Every claim about the firewall is a real
// TCP connection from a node address; every wait is bounded by an event (an apply return, a
// re-send), and a failed test prints the timeline of bus events and bridge log lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab, type Host } from '../harness/netns.ts';
import { startSalt, type SaltStack, type BusEvent, type Minion } from '../harness/salt.ts';
import { startRedis, probe } from '../harness/redis.ts';
import { runBridgeCli, startBridge, type BridgeProc } from '../harness/bridge.ts';
import { run, stopInOrder, waitFor } from '../harness/proc.ts';
import { freePort } from '../harness/tools.ts';
import { testKeys } from '../harness/keys.ts';
import { printTimelineOnFailure } from '../harness/timeline.ts';
import { SaltApiClient, createEventStream, type SaltEventStream } from '../../src/salt/index.ts';

const KEYS = testKeys();
const CLUSTERS = ['east', 'west'] as const;
const tagOf = (c: string) => `kube-salt-bridge/cluster/${c}/nodes`;

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let nodes: Host;
let bridge: BridgeProc;
let db: Minion;
let readyAt = 0;
let wsPort = 0;

printTimelineOnFailure(() => ({
  events: salt?.events ?? [],
  bridgeLogs: bridge ? [bridge.logs] : [],
  origin: readyAt || undefined,
  // Salt puts log_file under root_dir: <root_dir>/<log_file>.
  files: salt
    ? [join(salt.rootDir, dirname(salt.configDir), 'master.log'), join(dirname(salt.configDir), db.id, 'root', dirname(salt.configDir), db.id, 'minion.log')]
    : [],
}));

const ip = (n: number) => lab.nodeIp4(n);
const reachable = async (n: number) => (await probe(nodes, ip(n), db.host.ipv4, 2)).ok;
const isApplyJob = (e: BusEvent) => /^salt\/job\/[^/]+\/new$/.test(e.tag) && e.data.fun === 'kube_allowlist.apply' && !('cmd' in e.data);
const applyRet = (e: BusEvent, jid: string, id: string) => e.tag === `salt/job/${jid}/ret/${id}` && e.data.cmd === '_return';
const isResend = (e: BusEvent) => CLUSTERS.some((c) => e.tag === tagOf(c)) && e.data.minions !== undefined;
const jobPayload = (e: BusEvent) =>
  ((e.data.arg as Array<Record<string, unknown>> | undefined)?.find((a) => a.__kwarg__ === true)?.payload ?? {}) as Record<string, unknown>;

/** The first event after index `from` that matches one of `cases`; resolves with the case's name. */
function first<K extends string>(from: number, cases: Record<K, (e: BusEvent) => boolean>, timeoutMs = 120_000): Promise<{ which: K; e: BusEvent }> {
  return salt
    .waitForEvent(
      `one of: ${Object.keys(cases).join(', ')}`,
      (e) => salt.events.indexOf(e) >= from && Object.values<(e: BusEvent) => boolean>(cases).some((f) => f(e)),
      timeoutMs,
    )
    .then((e) => ({ which: (Object.keys(cases) as K[]).find((k) => cases[k](e))!, e }));
}

function pillar(extra: Record<string, unknown> = {}) {
  return {
    kube_allowlist: {
      public_keys: [KEYS.publicText],
      backend: 'ipset',
      // west may shrink to nothing (the burst test deletes its nodes); east keeps max_shrink (default 0.5)
      clusters: { east: {}, west: { max_shrink: 1 } },
      ...extra,
      rules: [{ name: 'db', clusters: [...CLUSTERS], proto: 'tcp', ports: [6379], others: 'drop' }],
    },
  };
}

let startFrom = 0;
/** Node addresses of the burst (lab node addresses 20..59), on the node host so that they can connect. */
const BURST = Array.from({ length: 40 }, (_, i) => 20 + i);
const MIN_INTERVAL_MS = 100; // the harness bridge's publish.minIntervalMs
/** Full publishes (not re-sends) of cluster `c` since index `from`, one per generation. */
const publishesOf = (c: string, from: number) => {
  const seen = new Set<unknown>();
  return salt.events
    .slice(from)
    .filter((e) => e.tag === tagOf(c) && e.data.minions === undefined && !seen.has(e.data.generation) && seen.add(e.data.generation));
};
/** The return of minion `id` for the job that carried `ev` (a cluster event). */
async function appliedBy(ev: BusEvent, id: string): Promise<BusEvent> {
  const job = await salt.waitForEvent(
    `the apply job of generation ${String(ev.data.generation)}`,
    (e) =>
      isApplyJob(e) &&
      jobPayload(e).signature === ev.data.signature &&
      (ev.data.minions === undefined ? jobPayload(e).minions === undefined : JSON.stringify(jobPayload(e).minions) === JSON.stringify(ev.data.minions)),
    60_000,
  );
  return salt.waitForEvent(`${id}'s return of job ${String(job.data.jid)}`, (e) => applyRet(e, String(job.data.jid), id), 60_000);
}

before(
  async () => {
    kube = await startKube('bursts');
    lab = await startLab();
    wsPort = await freePort();
    salt = await startSalt(lab, { minions: 1, masterConfig: { rest_tornado: { port: wsPort, address: '127.0.0.1', disable_ssl: true, websockets: true } } });
    db = salt.minions[0]!;
    await salt.setPillar({ [db.id]: pillar() });
    await startRedis(db.host);
    nodes = await lab.addHost('nodes');
    for (const n of [1, 2, 3, 9, ...BURST]) await nodes.addAddress(ip(n));
    await kube.createNode('east-1', [{ type: 'InternalIP', address: ip(1) }], { labels: { pool: 'east' } });
    await kube.createNode('west-1', [{ type: 'InternalIP', address: ip(2) }], { labels: { pool: 'west' } });
    startFrom = salt.events.length;
    bridge = await startBridge({
      // west: the guard allows scaling down to nothing; east: the harness's 0.9.
      clusters: CLUSTERS.map((name) => ({
        name,
        kube,
        families: ['ipv4'],
        labelSelector: `pool=${name}`,
        ...(name === 'west' ? { safety: { maxShrinkFraction: 1, minNodes: 0 } } : {}),
      })),
      salt,
      privateKey: KEYS.privateText,
      // The websocket is configured, eventStream left at auto: the bridge must still read SSE.
      saltExtra: { websocketUrl: `http://127.0.0.1:${wsPort}` },
    });
    await bridge.waitReady();
    readyAt = Date.now();
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(bridge, salt, lab, kube));

test('two clusters, one rule naming both: enforced as soon as the first publish of each has been applied, with no re-send', async () => {
  // The first publish of each cluster, the job that carried it to the minion, and that job's return.
  const applied = new Map<string, BusEvent>();
  for (const c of CLUSTERS) {
    const published = await salt.waitForEvent(`first ${c} publish`, (e) => salt.events.indexOf(e) >= startFrom && e.tag === tagOf(c), 60_000);
    assert.equal(published.data.minions, undefined, `the first ${c} event is a publish, not a re-send`);
    const job = await salt.waitForEvent(
      `the apply job of the first ${c} publish`,
      (e) => isApplyJob(e) && jobPayload(e).signature === published.data.signature,
      60_000,
    );
    // Whatever comes first: that job's return, or a re-send (the bridge gave up waiting for it).
    const r = await first(salt.events.indexOf(job), { ret: (e) => applyRet(e, String(job.data.jid), db.id), resend: isResend });
    assert.equal(r.which, 'ret', `${c}: the first job's return came before any re-send`);
    assert.equal(r.e.data.retcode, 0, JSON.stringify(r.e.data.return));
    applied.set(c, r.e);
  }
  const last = [...applied.values()].sort((a, b) => a.at - b.at).at(-1)!;
  assert.match(String((last.data.return as Record<string, unknown>).reason), /^applied generation \d+$/, 'the second apply leaves nothing pending');
  // Both returns seen: the rule is in force now, from both clusters' nodes and for nobody else.
  assert.equal(await reachable(1), true, 'an east node connects');
  assert.equal(await reachable(2), true, 'a west node connects');
  assert.equal(await reachable(9), false, 'an outsider is dropped');
  assert.ok(!salt.events.slice(startFrom).some(isResend), 'nothing had to be re-sent');
  // The bridge heard both returns as well: the minion is current for both clusters in its status
  // before any re-send (a return lost on the way to the bridge shows as a 30 s ack-timeout re-send).
  const from = salt.events.indexOf(last);
  const seen = await Promise.race([
    waitFor(
      'the bridge to show the minion current for both clusters',
      async () => {
        const st = await bridge.status();
        return (
          CLUSTERS.every((c) =>
            st.minions.some(
              (m) => m.cluster === c && m.minion === db.id && m.appliedGeneration === (applied.get(c)!.data.return as Record<string, unknown>).generation,
            ),
          ) && 'status'
        );
      },
      60_000,
      100,
    ),
    salt.waitForEvent('a re-send', (e) => salt.events.indexOf(e) > from && isResend(e), 60_000).then(() => 'resend'),
  ]);
  assert.equal(seen, 'status', 'the bridge saw both returns (no re-send was needed)');
  assert.equal(
    bridge.logs.find((l) => l.msg === 'salt event stream open')?.salt &&
      (bridge.logs.find((l) => l.msg === 'salt event stream open')!.salt as Record<string, unknown>).transport,
    'sse',
    'with websocketUrl set and eventStream auto the bridge reads SSE',
  );
});

test("why the bridge reads SSE: rest_tornado's websocket drops bus events that arrive back to back, SSE delivers them all", async () => {
  const log = pino({ level: 'silent' });
  const clientFor = (url: string, ca?: string) =>
    new SaltApiClient({
      url,
      username: salt.bridge.username,
      password: () => salt.bridge.password,
      eauth: 'file',
      caPem: ca,
      timeoutMs: 10_000,
      logger: log,
    });
  const cherry = clientFor(salt.apiUrl, readFileSync(salt.apiCaFile, 'utf8'));
  const tornado = clientFor(`http://127.0.0.1:${wsPort}`);
  const got = { sse: 0, ws: 0 };
  const done = { sse: false, ws: false };
  const streams: SaltEventStream[] = [];
  try {
    for (const mode of ['sse', 'ws'] as const) {
      const s = createEventStream(cherry, { mode, wsClient: tornado, logger: log });
      s.onEvent((e) => {
        if (typeof e.tag !== 'string') return;
        if (e.tag.startsWith('ksb-test/burst/')) got[mode] += 1;
        if (e.tag === 'ksb-test/burst-end') done[mode] = true;
      });
      streams.push(s);
      await s.start();
      assert.equal(await s.waitForOpen(30_000), true, `${mode} stream open`);
    }
    // 200 events fired on the master back to back (one Python process, the master's own event socket).
    const script = join(dirname(salt.configDir), 'burst-events.py');
    writeFileSync(
      script,
      [
        'import sys, salt.config, salt.utils.event',
        "opts = salt.config.client_config(sys.argv[1] + '/master')",
        "bus = salt.utils.event.get_master_event(opts, opts['sock_dir'], listen=False)",
        'for i in range(200):',
        "    bus.fire_event({'i': i}, 'ksb-test/burst/%03d' % i)",
        'bus.destroy()',
      ].join('\n') + '\n',
    );
    const fired = await run(join(process.env.KSB_VENV ?? '', 'bin', 'python'), [script, salt.configDir]);
    assert.equal(fired.code, 0, fired.stderr);
    await salt.waitForEvent('the 200th event on the harness bus', (e) => e.tag === 'ksb-test/burst/199', 30_000);
    // The barrier: one more event, fired alone; a stream that has it has had its chance at all before it.
    await salt.saltRun('event.send', ['ksb-test/burst-end']);
    await waitFor('both streams to read the barrier', () => done.sse && done.ws, 30_000, 50);
    assert.equal(salt.events.filter((e) => e.tag.startsWith('ksb-test/burst/')).length, 200, 'the master fired 200');
    assert.equal(got.sse, 200, 'SSE delivered every event');
    assert.ok(
      got.ws < 200,
      `the websocket delivered ${got.ws} of 200 (if this fails, rest_tornado no longer drops events and eventStream auto could prefer it again)`,
    );
  } finally {
    for (const s of streams) await s.stop();
  }
});

test('a burst of 40 joins then 40 deletions (guard allowing them): publishes spaced by minIntervalMs, every node admitted then dropped', async () => {
  const from = salt.events.length;
  await Promise.all(BURST.map((n) => kube.createNode(`west-b${n}`, [{ type: 'InternalIP', address: ip(n) }], { labels: { pool: 'west' } })));
  const all = [ip(2), ...BURST.map(ip)].sort();
  const full = await salt.waitForEvent(
    'west with every burst node',
    (e) =>
      salt.events.indexOf(e) >= from &&
      e.tag === tagOf('west') &&
      e.data.minions === undefined &&
      JSON.stringify([...(e.data.ipv4 as string[])].sort()) === JSON.stringify(all),
    60_000,
  );
  const ret = await appliedBy(full, db.id);
  assert.equal(ret.data.retcode, 0, JSON.stringify(ret.data.return));
  for (const n of [BURST[0]!, BURST.at(-1)!, 2, 1]) assert.equal(await reachable(n), true, `node ${n} connects`);
  const issued = publishesOf('west', from).map((e) => Date.parse(String(e.data.issued_at)));
  for (let i = 1; i < issued.length; i++)
    assert.ok(issued[i]! - issued[i - 1]! >= MIN_INTERVAL_MS, `publishes ${issued.join(', ')} are ${MIN_INTERVAL_MS} ms apart`);

  const gone = salt.events.length;
  await Promise.all(BURST.map((n) => kube.deleteNode(`west-b${n}`)));
  const back = await salt.waitForEvent(
    'west back to one node',
    (e) => salt.events.indexOf(e) >= gone && e.tag === tagOf('west') && e.data.minions === undefined && JSON.stringify(e.data.ipv4) === JSON.stringify([ip(2)]),
    60_000,
  );
  const ret2 = await appliedBy(back, db.id);
  assert.equal(ret2.data.retcode, 0, JSON.stringify(ret2.data.return));
  assert.equal(await reachable(BURST[0]!), false, 'a deleted node is dropped');
  assert.equal(await reachable(BURST.at(-1)!), false, 'the last deleted node is dropped');
  assert.equal(await reachable(2), true, 'the remaining west node still connects');
  const leaves = publishesOf('west', gone).map((e) => Date.parse(String(e.data.issued_at)));
  for (let i = 1; i < leaves.length; i++)
    assert.ok(leaves[i]! - leaves[i - 1]! >= MIN_INTERVAL_MS, `publishes ${leaves.join(', ')} are ${MIN_INTERVAL_MS} ms apart`);
  assert.equal((await bridge.status()).clusters.find((c) => c.cluster === 'west')?.held ?? undefined, undefined, 'the bridge held nothing');
});

test('a scale-down the minion refuses is held, shown and counted, never re-sent; release after the pillar allows it applies it', async () => {
  // east: five nodes, then the minion's own limit tightens to 10 % while the bridge allows 90 %:
  // however coalescing splits the scale-down, every step is refused against the five it holds.
  const grow = salt.events.length;
  for (const n of [3, 4, 5, 6]) await kube.createNode(`east-${n}`, [{ type: 'InternalIP', address: ip(n) }], { labels: { pool: 'east' } });
  const five = await salt.waitForEvent(
    'east with five nodes',
    (e) => salt.events.indexOf(e) >= grow && e.tag === tagOf('east') && e.data.minions === undefined && (e.data.ipv4 as string[]).length === 5,
    60_000,
  );
  assert.equal((await appliedBy(five, db.id)).data.retcode, 0);
  await salt.setPillar({ [db.id]: pillar({ max_shrink: 0.1 }) });

  const shrink = salt.events.length;
  await Promise.all([3, 4, 5, 6].map((n) => kube.deleteNode(`east-${n}`)));
  const one = await salt.waitForEvent(
    'east back to one node',
    (e) =>
      salt.events.indexOf(e) >= shrink && e.tag === tagOf('east') && e.data.minions === undefined && JSON.stringify(e.data.ipv4) === JSON.stringify([ip(1)]),
    60_000,
  );
  const refusal = await appliedBy(one, db.id);
  assert.equal(refusal.data.retcode, 1, 'the minion refuses the scale-down');
  assert.match(String((refusal.data.return as Record<string, unknown>).reason), /^refused: 4 of 5 entries would be removed/);
  assert.equal(await reachable(3), true, 'it keeps its larger list');

  // The bridge holds it as a state: per minion, per cluster, in the metric and the CLI table.
  const row = await waitFor(
    'the refusal in /status',
    async () => {
      const st = await bridge.status();
      const m = st.minions.find((x) => x.minion === db.id && x.cluster === 'east');
      return m?.lastResult === 'refused' && m.refusal?.generation === one.data.generation ? { st, m } : undefined;
    },
    15_000,
    100,
  );
  assert.equal(row.m.refusal?.reason, 'shrink');
  assert.equal(row.m.refusal.generation, one.data.generation);
  assert.equal(row.m.retryAt ?? undefined, undefined, 'no re-send is owed');
  const east = row.st.clusters.find((c) => c.cluster === 'east');
  assert.deepEqual(
    east?.minionsRefusing?.map((r) => [r.minion, r.reason]),
    [[db.id, 'shrink']],
  );
  assert.match(await bridge.metrics(), /ksb_minion_refusals\{cluster="east",reason="shrink"\} 1/);
  const table = await runBridgeCli(['status', '--url', bridge.url], {}, { timeoutMs: 30_000 });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, new RegExp(`^east .*${db.id} shrink`, 'm'));
  assert.match(table.stdout, new RegExp(`^${db.id} +east .*refused: shrink \\(since`, 'm'));

  // A start of that minion re-sends east (which it refuses) nothing, west (which it holds) as
  // usual; a later start of another id is the positive control that east's rounds went out.
  const starts = salt.events.length;
  const fired = await db.host.exec('salt-call', ['-c', join(dirname(salt.configDir), db.id), 'event.send', `salt/minion/${db.id}/start`]);
  assert.equal(fired.code, 0, fired.stderr);
  await salt.waitForEvent(`${db.id}'s start`, (e) => salt.events.indexOf(e) >= starts && e.tag === `salt/minion/${db.id}/start`, 30_000);
  await salt.saltRun('event.send', ['salt/minion/ksb-control/start', 'data={"id": "ksb-control"}']);
  const hinted = (c: string, id: string) => (e: BusEvent) => e.tag === tagOf(c) && isResend(e) && (e.data.minions as string[]).includes(id);
  const control = await salt.waitForEvent(
    'east re-sent to the control id',
    (e) => salt.events.indexOf(e) >= starts && hinted('east', 'ksb-control')(e),
    30_000,
  );
  const upToControl = salt.events.slice(starts, salt.events.indexOf(control) + 1);
  assert.deepEqual(
    upToControl.filter(hinted('east', db.id)).map((e) => e.data.generation),
    [],
    `east is not re-sent to the refusing ${db.id}`,
  );
  assert.equal(upToControl.filter(hinted('west', db.id)).length, 1, `west, which ${db.id} does not refuse, is re-sent to it once`);

  // The operator allows the shrink on the minion and releases: one re-send, applied.
  await salt.setPillar({ [db.id]: pillar({ max_shrink: 0.9 }) });
  const rel = salt.events.length;
  const r = await runBridgeCli(['release', 'east', '--config', bridge.configFile], {}, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, new RegExp(`re-sending generation ${String(one.data.generation)} once to 1 minion\\(s\\) that refused it \\(${db.id}: shrink\\)`));
  const resent = await salt.waitForEvent('the release re-send', (e) => salt.events.indexOf(e) >= rel && isResend(e) && e.tag === tagOf('east'), 30_000);
  assert.deepEqual(resent.data.minions, [db.id]);
  assert.equal(resent.data.signature, one.data.signature, 'the very payload that was published');
  const applied = await appliedBy(resent, db.id);
  assert.equal(applied.data.retcode, 0, JSON.stringify(applied.data.return));
  assert.equal(await reachable(3), false, 'the deleted node is dropped now');
  assert.equal(await reachable(1), true, 'the remaining east node connects');
  await waitFor(
    'the refusal cleared in /status',
    async () => {
      const st = await bridge.status();
      const m = st.minions.find((x) => x.minion === db.id && x.cluster === 'east');
      return m !== undefined && m.refusal === undefined && m.appliedGeneration === one.data.generation;
    },
    15_000,
    100,
  );
  assert.match(await bridge.metrics(), /ksb_minion_refusals\{cluster="east",reason="shrink"\} 0/);
});

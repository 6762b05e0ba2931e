// What the bridge believes from the bus (docs/event-contract.md), attacked through a real
// salt-master + salt-api, three real minions, a real kube-apiserver and the real bridge process.
// minion-1 and minion-2 protect cluster gamma; minion-3 is a real, connected minion whose pillar
// names another cluster only (an outsider that would run kube_allowlist.apply if it were targeted).
//
// - forged minion starts ("x or *", "*", a minion announcing another's start) fire no re-send; a
//   start for minion-3 or a made-up "evil" is at most re-sent with the hint [that id], and the
//   reactor's intersection with the pillar target leaves nobody to run it;
// - forged job returns (forwarded by a minion, the unmarked batch form, master-side) credit
//   nothing: the status never shows a minion the job did not target, nor a forged generation;
// - a restarted minion while a shrink is held gets the published 4-address payload, not the held
//   1-address plan, and finds it current;
// - a forged `new` event naming 60,000 minions (master-side, replaying a genuine payload) credits
//   nobody, the tracker keeps at most 10,000, and the bridge's re-sends to them are split into
//   events of at most 1,000 ids that salt-api accepts.
// Every "nothing happened" is judged after a positive control sent later has gone all the way
// through (the bridge and the reactor handle bus events in order).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack, type BusEvent, type Minion } from '../harness/salt.ts';
import { saltApi } from '../harness/bus.ts';
import { startBridge, runBridgeCli, type BridgeProc } from '../harness/bridge.ts';
import { stopInOrder, waitFor } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';
import { verifyPayload } from '../../src/plan/index.ts';
import { START_LIMITS } from '../../src/controller/starts.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const KEYS = testKeys();
const CLUSTER = 'gamma';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
const PROTECTED = ['minion-1', 'minion-2'];
const OUTSIDER = 'minion-3';
const FOUR = ['10.50.0.1', '10.50.0.2', '10.50.0.3', '10.50.0.4'];

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let bridge: BridgeProc;
let ca: Buffer;
let adminToken = '';
/** The bridge's first publish (4 addresses) as it appeared on the bus, and the job that carried it. */
let published4: Record<string, unknown>;
let firstJid = '';

function pillar(clusters: string[]) {
  return {
    kube_allowlist: {
      public_keys: [KEYS.publicText],
      backend: 'ipset',
      clusters: Object.fromEntries(clusters.map((c) => [c, {}])),
      rules: clusters.map((c) => ({ name: `db-${c}`, clusters: [c], proto: 'tcp', ports: [5432], others: 'drop' })),
    },
  };
}

// ---- helpers ---------------------------------------------------------------------------------

const api = (path: string, body: unknown, token?: string) => saltApi(salt, ca, 'POST', path, { body, token, timeoutMs: 120_000 });

/** A master-side `event.send` (what `salt-run event.send` does), through salt-api as the admin: no size limit of a command line. */
async function masterSend(tag: string, data: Record<string, unknown>): Promise<void> {
  const r = await api('/', { client: 'runner', fun: 'event.send', tag, data }, adminToken);
  assert.equal(r.status, 200, `event.send ${tag}: ${r.text.slice(0, 300)}`);
  assert.deepEqual((r.json as { return: unknown[] }).return, [true]);
}

async function saltRun(args: string[]): Promise<void> {
  const r = await salt.cli('salt-run', args);
  assert.equal(r.code, 0, `salt-run ${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
}

function minionCall(m: Minion, args: string[]) {
  return m.host.exec('salt-call', ['-c', join(dirname(salt.configDir), m.id), '--out=json', ...args], { timeoutMs: 120_000 });
}

const minion = (id: string) => salt.minions.find((m) => m.id === id)!;
const isApplyJob = (e: BusEvent) => /^salt\/job\/[^/]+\/new$/.test(e.tag) && e.data.fun === 'kube_allowlist.apply' && !('cmd' in e.data);
const applyRet = (e: BusEvent, id: string) => e.tag.endsWith(`/ret/${id}`) && e.data.fun === 'kube_allowlist.apply' && e.data.cmd === '_return';
/** The bridge's own events under our tag (what it fired through salt-api), from index `from`. */
const bridgeEvents = (from = 0) => salt.events.slice(from).filter((e) => e.tag === TAG && !('cmd' in e.data));
const hinted = (from: number) => bridgeEvents(from).filter((e) => Array.isArray(e.data.minions));
const signedPart = (d: Record<string, unknown>) => {
  const { _stamp: _s, minions: _m, ...rest } = d;
  return rest;
};
const since = (from: number, match: (e: BusEvent) => boolean) => salt.events.slice(from).filter(match);
const waitSince = (what: string, from: number, match: (e: BusEvent) => boolean, timeoutMs = 60_000) =>
  salt.waitForEvent(what, (e) => salt.events.indexOf(e) >= from && match(e), timeoutMs);

/** The apply job that carries a bridge event (the reactor passes the event data as kwarg payload). */
function jobCarrying(ev: BusEvent, from: number): Promise<BusEvent> {
  const sig = String(ev.data.signature);
  const hint = JSON.stringify(ev.data.minions ?? null);
  return waitSince(`the apply job of ${hint}`, from, (e) => {
    if (!isApplyJob(e)) return false;
    const p = (e.data.arg as Array<{ payload?: Record<string, unknown> }> | undefined)?.[0]?.payload;
    return p?.signature === sig && JSON.stringify(p?.minions ?? null) === hint;
  });
}

/**
 * The positive control: a start event for `id` fired on the master. The bridge must re-send to it
 * (hint [id]), the reactor must start the job and the minion must answer; everything sent before
 * has then been handled by both. Returns the bridge's re-send event.
 */
const lastControl = new Map<string, number>();
async function control(from: number, id: string): Promise<BusEvent> {
  // The bridge answers one start per minion id per START_LIMITS.perMinionMs (a start storm is
  // bounded): a second control for the same minion waits that bound out.
  const last = lastControl.get(id);
  // Measured from when the re-send was seen: rounds go out roundSpacingMs apart, so a re-send can
  // follow its start by a few seconds.
  if (last !== undefined) await sleep(Math.max(0, last + START_LIMITS.perMinionMs + 1_000 - Date.now()));
  await saltRun(['event.send', `salt/minion/${id}/start`, JSON.stringify({ id })]);
  const ev = await waitSince(
    `the bridge re-sends to ${id} (control)`,
    from,
    (e) => e.tag === TAG && !('cmd' in e.data) && JSON.stringify(e.data.minions) === JSON.stringify([id]),
  );
  lastControl.set(id, Date.now());
  const job = await jobCarrying(ev, from);
  assert.deepEqual(job.data.minions, [id], 'the control reached its minion');
  await waitSince(`${id} answers the control`, from, (e) => applyRet(e, id) && e.data.jid === job.data.jid);
  return ev;
}

/** Waits until the bridge has credited `id`'s answer to a job that started after `t0` (bridge clock = ours). */
function creditedAfter(id: string, t0: number) {
  return waitFor(
    `the bridge credits ${id}'s answer`,
    async () => {
      const row = (await bridge.status()).minions.find((m) => m.minion === id);
      return row && typeof row.lastSeenAt === 'number' && row.lastSeenAt >= t0 ? row : undefined;
    },
    30_000,
    200,
  );
}

const logged = (msg: string) => bridge.logs.some((l) => l.msg === msg);

// ---- the stack -------------------------------------------------------------------------------

before(
  async () => {
    const kubeP = startKube(CLUSTER);
    lab = await startLab();
    salt = await startSalt(lab, { minions: 3 });
    kube = await kubeP;
    ca = readFileSync(salt.apiCaFile);
    await salt.setPillar({ 'minion-1': pillar([CLUSTER]), 'minion-2': pillar([CLUSTER]), [OUTSIDER]: pillar(['other']) });
    const login = await api('/login', { username: salt.admin.username, password: salt.admin.password, eauth: 'file' });
    assert.equal(login.status, 200, login.text.slice(0, 200));
    adminToken = (login.json as { return: Array<{ token: string }> }).return[0]!.token;
    for (const [i, ip] of FOUR.entries()) await kube.createNode(`g${i + 1}`, [{ type: 'InternalIP', address: ip }]);
    bridge = await startBridge({
      // Losing one node of four (25 %) is already held: the shrink of the held-shrink test is held at every step.
      clusters: [{ name: CLUSTER, kube, families: ['ipv4'], safety: { maxShrinkFraction: 0.2, minNodes: 1 } }],
      salt,
      privateKey: KEYS.privateText,
    });
    await bridge.waitReady();
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(bridge, salt, lab, kube));

// ---- tests -----------------------------------------------------------------------------------

test('the published list reaches the protected minions and the bridge credits them', async () => {
  const ev = await waitSince(
    'the first publish',
    0,
    (e) => e.tag === TAG && !('cmd' in e.data) && e.data.minions === undefined && JSON.stringify(e.data.ipv4) === JSON.stringify(FOUR),
  );
  assert.ok(verifyPayload(ev.data, KEYS.signer));
  const job = await jobCarrying(ev, 0);
  assert.deepEqual([...(job.data.minions as string[])].sort(), PROTECTED);
  for (const m of PROTECTED) {
    const ret = await waitSince(`${m} applies it`, 0, (e) => applyRet(e, m) && e.data.jid === job.data.jid);
    assert.equal(ret.data.retcode, 0, JSON.stringify(ret.data.return));
  }
  published4 = ev.data;
  firstJid = String(job.data.jid);
  await waitFor(
    'both minions current in the bridge status',
    async () => {
      const st = await bridge.status();
      return PROTECTED.every((m) => st.minions.some((r) => r.minion === m && r.appliedGeneration === ev.data.generation));
    },
    30_000,
  );
});

test('forged starts ("x or *", "*", a minion naming another) start no apply job; only the control runs', async () => {
  const from = salt.events.length;
  await saltRun(['event.send', 'salt/minion/x or */start', '{"id": "x or *"}']);
  await saltRun(['event.send', 'salt/minion/*/start', '{"id": "*"}']);
  await saltRun(['event.send', 'salt/minion/minion-1,minion-3/start', '{"id": "minion-1,minion-3"}']);
  // minion-3 announces minion-1's start: the master marks it with minion-3's id.
  const r = await minionCall(minion(OUTSIDER), ['event.send', 'salt/minion/minion-1/start', 'data={"id": "minion-1"}']);
  assert.equal(r.code, 0, r.stderr.slice(0, 300));
  await waitSince('the minion-forwarded start on the bus', from, (e) => e.tag === 'salt/minion/minion-1/start' && e.data.id === OUTSIDER);
  const ctl = await control(from, 'minion-1');

  const jobs = since(from, isApplyJob);
  assert.ok(
    jobs.every((j) => (j.data.minions as string[]).every((m) => PROTECTED.includes(m))),
    `jobs only on protected minions: ${JSON.stringify(jobs.map((j) => j.data.minions))}`,
  );
  assert.deepEqual(
    hinted(from).map((e) => e.data.minions),
    [['minion-1']],
    "the one re-send is the control's",
  );
  assert.equal(since(from, (e) => applyRet(e, OUTSIDER)).length, 0);
  assert.deepEqual(signedPart(ctl.data), signedPart(published4), 'the re-send is the published payload');
  assert.ok(logged('ignored bus event (bad-id)'), 'the invalid ids were logged');
  assert.ok(logged('ignored bus event (id-mismatch)'), 'the minion naming another was logged');
});

test('a start for an outsider ("minion-3", "evil") is re-sent with that hint only, and nobody runs apply', async () => {
  const from = salt.events.length;
  for (const id of [OUTSIDER, 'evil']) {
    await saltRun(['event.send', `salt/minion/${id}/start`, JSON.stringify({ id })]);
    const ev = await waitSince(
      `the re-send hinted to ${id}`,
      from,
      (e) => e.tag === TAG && !('cmd' in e.data) && JSON.stringify(e.data.minions) === JSON.stringify([id]),
    );
    assert.deepEqual(signedPart(ev.data), signedPart(published4));
  }
  await control(from, 'minion-2');
  const jobs = since(from, isApplyJob);
  assert.ok(!jobs.some((j) => (j.data.minions as string[]).includes(OUTSIDER)), 'no job targets minion-3');
  assert.ok(jobs.every((j) => (j.data.minions as string[]).every((m) => PROTECTED.includes(m))));
  assert.equal(since(from, (e) => applyRet(e, OUTSIDER)).length, 0, 'minion-3 never ran kube_allowlist.apply');
  assert.deepEqual(
    hinted(from).map((e) => e.data.minions),
    [[OUTSIDER], ['evil'], ['minion-2']],
  );
});

test('forged job returns credit nothing: no minion the job did not target, no forged generation', async () => {
  const generation = Number(published4.generation);
  const forgedRet = (id: string, jid: string) => ({
    cmd: '_return',
    id,
    jid,
    fun: 'kube_allowlist.apply',
    fun_args: [],
    retcode: 0,
    success: true,
    return: { cluster: CLUSTER, generation: 10 ** 15, digest: 'sha256:forged', applied: true, changed: true, reason: 'applied' },
  });
  const from = salt.events.length;
  const attacker = minion(OUTSIDER);
  const attempts: Array<[string, string[]]> = [
    // forwarded (marked): minion-3 claims minion-2's and its own return of the genuine job
    ['event.send ret of minion-2', ['event.send', `salt/job/${firstJid}/ret/minion-2`, `data=${JSON.stringify(forgedRet('minion-2', firstJid))}`]],
    ['event.send ret of minion-3', ['event.send', `salt/job/${firstJid}/ret/${OUTSIDER}`, `data=${JSON.stringify(forgedRet(OUTSIDER, firstJid))}`]],
    // the unmarked batch form: indistinguishable from the master's own, judged by the job
    [
      'batch ret of minion-3 and of an unknown job',
      [
        'event.send',
        'ksb-test/ignored',
        `preload=${JSON.stringify({
          events: [
            { tag: `salt/job/${firstJid}/ret/${OUTSIDER}`, data: forgedRet(OUTSIDER, firstJid) },
            { tag: 'salt/job/20991231235959000301/ret/evil-9', data: forgedRet('evil-9', '20991231235959000301') },
          ],
        })}`,
      ],
    ],
  ];
  for (const [what, args] of attempts) {
    const r = await minionCall(attacker, args);
    assert.equal(r.code, 0, `${what}: ${r.stderr.slice(0, 300)}`);
  }
  await masterSend(`salt/job/${firstJid}/ret/${OUTSIDER}`, forgedRet(OUTSIDER, firstJid));
  await waitSince('the unmarked forged return on the bus', from, (e) => e.tag === `salt/job/${firstJid}/ret/${OUTSIDER}` && !('pretag' in e.data));
  const t0 = Date.now();
  await control(from, 'minion-2');
  await creditedAfter('minion-2', t0);

  const st = await bridge.status();
  const rows = st.minions.filter((m) => m.cluster === CLUSTER);
  assert.deepEqual(rows.map((m) => m.minion).sort(), PROTECTED, 'only the targeted minions are tracked');
  for (const m of rows) assert.equal(m.appliedGeneration, generation, `${m.minion}: the job's generation, never the forged one`);
  assert.equal(st.clusters[0]!.generation, generation);
  const cli = await runBridgeCli(['status', '--config', bridge.configFile]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.doesNotMatch(cli.stdout, /minion-3|evil-9|1000000000000000/, cli.stdout);
  assert.match(cli.stdout, /minion-1/);
  assert.ok(logged('ignored bus event (forwarded)'));
  assert.ok(logged('ignored bus event (not-targeted)'));
});

test('held shrink: a restarted minion gets the published 4-address payload and finds it current', async () => {
  for (const n of ['g1', 'g2', 'g3']) await kube.deleteNode(n);
  await waitFor(
    'the shrink to one address is held',
    async () => {
      const c = (await bridge.status()).clusters[0]!;
      return c.ipv4 === 1 && (c.held as { reasons?: string[] } | undefined)?.reasons?.includes('shrink');
    },
    30_000,
  );
  assert.equal(
    bridgeEvents()
      .filter((e) => e.data.minions === undefined)
      .at(-1)?.data.signature,
    published4.signature,
    'nothing was published since the 4 addresses',
  );
  const from = salt.events.length;
  const m1 = minion('minion-1');
  await m1.stop();
  await m1.start();
  await waitSince('minion-1 starts', from, (e) => e.tag === 'salt/minion/minion-1/start' && e.data.id === 'minion-1', 90_000);
  const ev = await waitSince('the re-send to minion-1', from, (e) => e.tag === TAG && !('cmd' in e.data) && JSON.stringify(e.data.minions) === '["minion-1"]');
  assert.deepEqual(ev.data.ipv4, FOUR, 'the published list, not the held one');
  assert.deepEqual(signedPart(ev.data), signedPart(published4));
  assert.ok(verifyPayload(ev.data, KEYS.signer));
  const job = await jobCarrying(ev, from);
  assert.deepEqual(job.data.minions, ['minion-1']);
  const ret = await waitSince('minion-1 answers', from, (e) => applyRet(e, 'minion-1') && e.data.jid === job.data.jid);
  assert.equal(ret.data.retcode, 0, JSON.stringify(ret.data.return));
  const r = ret.data.return as Record<string, unknown>;
  assert.equal(r.applied, true);
  assert.equal(r.changed, false, `already current: ${String(r.reason)}`);
  const shown = (await salt.salt('minion-1', 'kube_allowlist.show'))['minion-1'] as {
    clusters: Record<string, { digest: string; ipv4: number; generation: number }>;
  };
  assert.equal(shown.clusters[CLUSTER]?.digest, published4.digest, JSON.stringify(shown));
  assert.equal(shown.clusters[CLUSTER]?.ipv4, 4);
  const fw = await m1.firewall();
  for (const ip of FOUR) assert.ok(fw.ipset.includes(ip), `${ip} is still in minion-1's set`);
  assert.equal(bridgeEvents(from).filter((e) => e.data.minions === undefined).length, 0, 'nothing new was published');
});

test('a forged new job naming 60,000 minions: nobody credited, at most 10,000 tracked, re-sends split at 1,000 ids', async () => {
  const ids = (p: string) => Array.from({ length: 60_000 }, (_, i) => `${p}${i}`);
  const jobData = (jid: string, payload: Record<string, unknown>, minions: string[]) => ({
    jid,
    fun: 'kube_allowlist.apply',
    tgt: `I@kube_allowlist:clusters:${CLUSTER}`,
    tgt_type: 'compound',
    user: 'root',
    arg: [{ __kwarg__: true, payload }],
    minions,
    missing: [],
  });
  const from = salt.events.length;
  // A payload that does not verify: ignored outright.
  await masterSend('salt/job/20991231235959000401/new', jobData('20991231235959000401', { ...published4, nodes: 99 }, ids('u')));
  // The genuine published payload, replayed: the job verifies, its 60,000 ids are capped at 10,000.
  await masterSend('salt/job/20991231235959000402/new', jobData('20991231235959000402', published4, ids('f')));
  const st = await waitFor(
    'the forged job is tracked',
    async () => {
      const s = await bridge.status();
      return s.minions.some((m) => m.minion === 'f0') ? s : undefined;
    },
    60_000,
  );
  const rows = st.minions.filter((m) => m.cluster === CLUSTER) as Array<{ minion: string; appliedGeneration?: number; lastResult: string }>;
  assert.ok(rows.length <= 10_000, `${rows.length} minions tracked`);
  assert.equal(rows.filter((m) => m.minion.startsWith('f')).length, 10_000);
  assert.ok(!rows.some((m) => m.minion.startsWith('u')), 'the unverified job added nobody');
  assert.ok(
    rows.filter((m) => m.minion.startsWith('f')).every((m) => m.appliedGeneration === undefined && m.lastResult === 'pending'),
    'nobody credited',
  );
  assert.ok(!rows.some((m) => m.minion === 'f10000'), 'ids beyond the cap are not kept');
  assert.ok(logged('ignored bus event (unverified)'));
  assert.ok(logged('ignored bus event (job-minions)'));

  // Nobody answers: after the ack timeout the bridge re-sends to them, in events of at most
  // 1,000 ids, each accepted by salt-api, each carrying exactly the published payload.
  const want = new Set(Array.from({ length: 10_000 }, (_, i) => `f${i}`));
  await waitFor(
    're-sends cover the 10,000 tracked ids',
    () => {
      const seen = new Set(hinted(from).flatMap((e) => e.data.minions as string[]));
      return [...want].every((id) => seen.has(id));
    },
    120_000,
    500,
  );
  const resends = hinted(from).filter((e) => (e.data.minions as string[]).some((id) => want.has(id)));
  assert.ok(resends.length >= 10, `${resends.length} events`);
  for (const e of resends) {
    assert.ok((e.data.minions as string[]).length <= 1_000);
    assert.deepEqual(signedPart(e.data), signedPart(published4));
  }
  const st2 = await bridge.status();
  assert.ok(st2.minions.filter((m) => m.cluster === CLUSTER).length <= 10_000, 'still bounded');
  assert.ok(!st2.minions.some((m) => String(m.minion).startsWith('f') && m.appliedGeneration !== undefined), 'still nobody credited');
  assert.equal(since(from, (e) => applyRet(e, OUTSIDER)).length, 0);
});

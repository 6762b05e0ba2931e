// Whom the master's reactor believes, through a real salt-master + salt-api and three real minions:
// minion-1 and minion-2 protect cluster alpha (pillar kube_allowlist:clusters:alpha), minion-3 only
// beta. Payloads are signed here with Node's crypto per docs/event-contract.md (Ed25519, a fixed
// test seed); no bridge daemon runs. Every "nothing starts" claim is checked on the bus over a
// window closed by a positive control: a genuine event sent afterwards whose job is seen starting
// and answered, so the reactor has long dealt with everything sent before it.
//
// (b) a genuine event through salt-api's runner event.send, as the bridge's user, starts exactly
//     one kube_allowlist.apply job, targeting exactly the minions whose pillar names the cluster;
// (a) minion-3 replays that captured payload with salt-call event.send / event.fire_master, with
//     preload tricks (target, cmd, a spoofed id, the unmarked batch form `events`, a forged runner
//     return): no job starts;
// (c) the `minions` hint only narrows; an invalid hint starts nothing;
// (d) a master-side salt-run event.send with a tag whose cluster is not a DNS label starts nothing.
// Test (a) also records what else a minion can forge unmarked (another minion's job return and
// start event, not a job start), which the bridge must not take at face value.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack, type BusEvent, type Minion } from '../harness/salt.ts';
import { saltApi } from '../harness/bus.ts';
import { stopInOrder } from '../harness/proc.ts';

const CLUSTER = 'alpha';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
const TARGET = `I@kube_allowlist:clusters:${CLUSTER}`;
const PROTECTED = ['minion-1', 'minion-2'];
const ATTACKER = 'minion-3';

// ---- signing, from the contract alone -------------------------------------------------------

const SEED = createHash('sha256').update('trust-salt e2e signing seed', 'utf8').digest();
const PRIVATE = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), SEED]), format: 'der', type: 'pkcs8' });
const PUBLIC_RAW = Buffer.from(createPublicKey(PRIVATE).export({ format: 'jwk' }).x!, 'base64url');
const KEY_ID = createHash('sha256').update(PUBLIC_RAW).digest('hex').slice(0, 16);
const SIGNED = [
  'version',
  'cluster',
  'generation',
  'digest',
  'ipv4',
  'ipv6',
  'added',
  'removed',
  'nodes',
  'issued_at',
  'key_id',
  'added_truncated',
  'removed_truncated',
];

const canonical = (o: Record<string, unknown>) =>
  JSON.stringify(
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    ),
  );

type Payload = Record<string, unknown> & { signature: string; generation: number };

let lastGeneration = 0;
/** A genuine payload for `cluster`: a new generation (so a new signature) each call. */
function genuine(cluster = CLUSTER, ipv4 = ['10.40.0.1', '10.40.0.2']): Payload {
  const generation = Math.max(lastGeneration + 1, Date.now());
  lastGeneration = generation;
  const body: Record<string, unknown> = {
    version: 2,
    cluster,
    generation,
    digest:
      'sha256:' +
      createHash('sha256')
        .update(canonical({ ipv4, ipv6: [] }))
        .digest('hex'),
    ipv4,
    ipv6: [],
    added: ipv4,
    removed: [],
    nodes: ipv4.length,
    issued_at: new Date(generation).toISOString(),
    key_id: KEY_ID,
  };
  const signed = Object.fromEntries(SIGNED.filter((k) => k in body).map((k) => [k, body[k]]));
  const signature = 'ed25519:' + sign(null, Buffer.from(canonical(signed), 'ascii'), PRIVATE).toString('base64');
  return { ...body, signature } as Payload;
}

// ---- the stack ------------------------------------------------------------------------------

let lab: Lab;
let salt: SaltStack;
let ca: Buffer;
let bridgeToken = '';
/** The genuine payload of test (b), as captured from the bus (what an eavesdropper could replay). */
let captured: Record<string, unknown> | undefined;
/** The jid of that genuine job. */
let genuineJid = '';

const api = (path: string, body: unknown, token?: string) => saltApi(salt, ca, 'POST', path, { body, token, timeoutMs: 60_000 });

/** What the bridge does: runner event.send through salt-api with its own restricted user. */
async function sendAsBridge(tag: string, data: Record<string, unknown>): Promise<void> {
  const r = await api('/', { client: 'runner', fun: 'event.send', tag, data }, bridgeToken);
  assert.equal(r.status, 200, `runner event.send as the bridge: ${r.text.slice(0, 300)}`);
  assert.deepEqual((r.json as { return: unknown[] }).return, [true]);
}

const isApplyJob = (e: BusEvent) => /^salt\/job\/\d+\/new$/.test(e.tag) && e.data.fun === 'kube_allowlist.apply';
const carries = (e: BusEvent, signature: string) => JSON.stringify(e.data.arg ?? null).includes(signature);
/** Every kube_allowlist.apply job the master started so far, whatever it carries. */
const applyJobs = () => salt.events.filter(isApplyJob);

/** Waits for the one job that carries `signature` and for every minion it targets to answer. */
async function jobFor(what: string, signature: string): Promise<BusEvent> {
  const job = await salt.waitForEvent(`${what}: its kube_allowlist.apply job starts`, (e) => isApplyJob(e) && carries(e, signature), 60_000);
  const jid = String(job.data.jid);
  for (const m of job.data.minions as string[]) {
    await salt.waitForEvent(`${what}: ${m} answers job ${jid}`, (e) => e.tag === `salt/job/${jid}/ret/${m}`, 60_000);
  }
  return job;
}

/**
 * Closes a "nothing starts" window: a genuine event sent now must start its job and be answered;
 * the reactor handles events in bus order, so by then it has rendered everything sent before.
 * Returns the apply jobs started since `from` other than the control's own.
 */
async function closeWindow(from: number, what: string): Promise<BusEvent[]> {
  const control = genuine();
  await sendAsBridge(TAG, control);
  const job = await jobFor(`positive control after ${what}`, control.signature);
  assert.deepEqual([...(job.data.minions as string[])].sort(), PROTECTED, 'the control reached the protected minions');
  return salt.events.slice(from).filter((e) => isApplyJob(e) && e !== job);
}

function minionCall(m: Minion, args: string[]) {
  return m.host.exec('salt-call', ['-c', join(dirname(salt.configDir), m.id), '--out=json', ...args], { timeoutMs: 120_000 });
}

before(
  async () => {
    lab = await startLab();
    salt = await startSalt(lab, { minions: 3 });
    ca = readFileSync(salt.apiCaFile);
    const publicKey = PUBLIC_RAW.toString('hex');
    await salt.setPillar({
      'minion-1': { kube_allowlist: { public_keys: [publicKey], clusters: { [CLUSTER]: {} } } },
      'minion-2': { kube_allowlist: { public_keys: [publicKey], clusters: { [CLUSTER]: {} } } },
      'minion-3': { kube_allowlist: { public_keys: [publicKey], clusters: { beta: {} } } },
    });
    // The shipped eauth (salt/conf/master.d/eauth.conf: a `file` user with a hashed password) lets the bridge in.
    assert.match(salt.bridgeAclSource, /^salt\/conf\/master\.d\/eauth\.conf \(external_auth:file:kube-salt-bridge\)$/);
    const login = await api('/login', { username: salt.bridge.username, password: salt.bridge.password, eauth: 'file' });
    assert.equal(login.status, 200, `bridge login: ${login.text.slice(0, 200)}`);
    const session = (login.json as { return: Array<{ token: string; perms: unknown }> }).return[0]!;
    assert.deepEqual(session.perms, salt.bridgeAcl, 'the bridge user holds exactly the shipped ACL');
    bridgeToken = session.token;
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(salt, lab));

// ---- tests ------------------------------------------------------------------------------------

test('(b) a genuine event from the bridge user starts exactly one job, on exactly the minions whose pillar names the cluster', async () => {
  const from = salt.events.length;
  const p = genuine();
  await sendAsBridge(TAG, p);
  const job = await jobFor('genuine event', p.signature);
  assert.equal(job.data.tgt, TARGET);
  assert.equal(job.data.tgt_type, 'compound');
  assert.deepEqual([...(job.data.minions as string[])].sort(), PROTECTED, 'minion-3 (pillar: beta only) is not targeted');
  const kwargs = (job.data.arg as Array<Record<string, unknown>>)[0]!;
  const { _stamp: _ignored, ...sent } = kwargs.payload as Record<string, unknown>;
  assert.deepEqual(sent, p, 'the payload is passed through as the event data');

  const started = await closeWindow(from, 'the genuine event');
  assert.deepEqual(
    started.map((e) => e.data.jid),
    [job.data.jid],
    'exactly one job for the event',
  );
  assert.equal(
    salt.events.slice(from).filter((e) => /^salt\/job\/\d+\/ret\/minion-3$/.test(e.tag) && e.data.fun === 'kube_allowlist.apply').length,
    0,
    'minion-3 never ran kube_allowlist.apply',
  );
  genuineJid = String(job.data.jid);
  captured = salt.events.slice(from).find((e) => e.tag === TAG && e.data.signature === p.signature)?.data;
  assert.ok(captured, 'the event itself was on the bus with the documented tag');
});

test('(a) a minion cannot start a job: replays of the captured payload with salt-call and preload tricks start nothing', async () => {
  assert.ok(captured, 'needs the payload captured by test (b)');
  const { _stamp: _s, ...replay } = captured;
  const sig = String(replay.signature);
  const attacker = salt.minions.find((m) => m.id === ATTACKER)!;
  const data = JSON.stringify(replay);
  const fakeJid = '20991231235959000001';
  const runnerRet = { fun: 'runner.event.send', jid: fakeJid, user: salt.bridge.username, fun_args: [{ tag: TAG, data: replay }], return: true, success: true };
  const from = salt.events.length;
  const attempts: Array<[string, string[]]> = [
    ['event.send', ['event.send', TAG, `data=${data}`]],
    ['event.send preload target', ['event.send', TAG, `data=${data}`, `preload=${JSON.stringify({ target: '*', tgt: '*', tgt_type: 'glob' })}`]],
    ['event.send preload cmd', ['event.send', TAG, `data=${data}`, `preload=${JSON.stringify({ cmd: '_minion_event', fun: 'runner.event.send' })}`]],
    ['event.send preload id', ['event.send', TAG, `data=${data}`, `preload=${JSON.stringify({ id: 'minion-1' })}`]],
    ['event.send preload events (unmarked batch form)', ['event.send', TAG, `preload=${JSON.stringify({ events: [{ tag: TAG, data: replay }] })}`]],
    ['event.send forged runner return', ['event.send', `salt/run/${fakeJid}/ret`, `preload=${JSON.stringify(runnerRet)}`]],
    [
      'event.send forged runner return, batch form',
      ['event.send', 'ksb-test/ignored', `preload=${JSON.stringify({ events: [{ tag: `salt/run/${fakeJid}/ret`, data: runnerRet }] })}`],
    ],
    ['event.fire_master', ['event.fire_master', data, TAG]],
    // Not about the reactor: what else the batch form forges, unmarked (docs/event-contract.md,
    // "What the bridge believes from the bus").
    [
      'forged job return and minion start, batch form',
      [
        'event.send',
        'ksb-test/ignored',
        `preload=${JSON.stringify({
          events: [
            {
              tag: `salt/job/${genuineJid}/ret/minion-2`,
              data: { cmd: '_return', id: 'minion-2', jid: genuineJid, fun: 'kube_allowlist.apply', retcode: 0, return: { applied: true } },
            },
            { tag: 'salt/minion/minion-1/start', data: { id: 'minion-1', data: 'forged' } },
            { tag: 'salt/job/20991231235959000002/new', data: { fun: 'kube_allowlist.apply', minions: ['minion-2'] } },
          ],
        })}`,
      ],
    ],
  ];
  for (const [what, args] of attempts) {
    const r = await minionCall(attacker, args);
    assert.equal(r.code, 0, `${what}: salt-call failed: ${r.stderr.slice(0, 300)}`);
  }
  const started = await closeWindow(from, 'the minion replays');
  assert.deepEqual(
    started.map((e) => e.data.tgt),
    [],
    'no kube_allowlist.apply job started for any replay',
  );
  // They all reached the master bus (seen before the control's events, which came later).
  const busTags = salt.events.slice(from).filter((e) => e.tag === TAG);
  const marked = busTags.filter((e) => e.data.cmd === '_minion_event' && e.data.id === ATTACKER);
  assert.equal(marked.length, 5, `five marked forwards under our tag (the id cannot be spoofed): ${JSON.stringify(busTags.map((e) => e.data.id))}`);
  const unmarked = busTags.filter((e) => !('cmd' in e.data) && !('id' in e.data) && e.data.signature === sig);
  assert.equal(unmarked.length, 1, 'the batch form put the replay on the bus under our tag with no mark at all');
  const { _stamp: _u, ...unmarkedData } = unmarked[0]!.data;
  assert.deepEqual(unmarkedData, replay, 'byte for byte the genuine payload');
  assert.ok(
    salt.events.slice(from).some((e) => e.tag === `salt/run/${fakeJid}/ret` && e.data.cmd === '_minion_event'),
    'the single-form forged runner return is marked',
  );

  assert.equal(
    salt.events.slice(from).filter((e) => e.tag === `salt/run/${fakeJid}/ret` && !('cmd' in e.data)).length,
    0,
    'the master dropped the batch-form salt/run/* event (MINION_EVENT_BLACKLIST)',
  );
  assert.equal(applyJobs().filter((e) => carries(e, sig)).length, 1, 'the captured payload still has only its one genuine job');
  const forgedRet = salt.events
    .slice(from)
    .filter((e) => e.tag === `salt/job/${genuineJid}/ret/minion-2` && e.data.return !== undefined && JSON.stringify(e.data.return) === '{"applied":true}');
  assert.equal(forgedRet.length, 1, 'a minion can fire an unmarked return in the name of another minion');
  assert.ok(
    salt.events.slice(from).some((e) => e.tag === 'salt/minion/minion-1/start' && e.data.data === 'forged'),
    'and a start event for another minion',
  );
  assert.ok(!salt.events.some((e) => e.tag === 'salt/job/20991231235959000002/new'), 'but not a job start (blacklisted)');
});

test('(c) the minions hint only narrows the target; an invalid hint starts nothing', async () => {
  const from = salt.events.length;
  const narrowed = { ...genuine(), minions: ['minion-2', 'minion-3'] };
  await sendAsBridge(TAG, narrowed);
  const job = await jobFor('hinted re-send', narrowed.signature);
  assert.equal(job.data.tgt, `${TARGET} and L@minion-2,minion-3`);
  assert.deepEqual(job.data.minions, ['minion-2'], 'the hint intersects with the pillar target: minion-3 is not added');

  const invalid: unknown[] = [['*'], ['x or *'], ['E@.*'], ['minion-1', 'G@os:*'], [], 'minion-1', ['minion-1,minion-3']];
  const sigs: string[] = [];
  for (const minions of invalid) {
    const p = { ...genuine(), minions };
    sigs.push(p.signature);
    await sendAsBridge(TAG, p);
  }
  const started = await closeWindow(from, 'the invalid hints');
  assert.deepEqual(
    started.filter((e) => e.data.jid !== job.data.jid).map((e) => e.data.tgt),
    [],
    'no job for any invalid hint',
  );
  assert.deepEqual(
    sigs.filter((s) => applyJobs().some((e) => carries(e, s))),
    [],
  );
});

test('(d) a master-side salt-run event.send whose tag names no valid cluster starts nothing', async () => {
  const from = salt.events.length;
  const bad = [
    'kube-salt-bridge/cluster/x or */nodes',
    'kube-salt-bridge/cluster/*/nodes',
    'kube-salt-bridge/cluster/Alpha/nodes',
    'kube-salt-bridge/cluster/alpha/nodes/x',
    'kube-salt-bridge/cluster/-alpha/nodes',
    'kube-salt-bridge/check',
  ];
  const sigs: string[] = [];
  for (const tag of bad) {
    const p = genuine();
    sigs.push(p.signature);
    const r = await salt.cli('salt-run', ['event.send', tag, `data=${JSON.stringify(p)}`]);
    assert.equal(r.code, 0, `salt-run event.send ${tag}: ${r.stderr.slice(0, 300)}`);
    assert.ok(
      salt.events.slice(from).some((e) => e.tag === tag),
      `${tag} reached the bus`,
    );
  }
  // The operator's documented manual send (a valid tag, data as the `data` keyword) does start a job.
  const manual = genuine();
  const r = await salt.cli('salt-run', ['event.send', TAG, `data=${JSON.stringify(manual)}`]);
  assert.equal(r.code, 0, r.stderr.slice(0, 300));
  const job = await jobFor('salt-run event.send with a valid tag', manual.signature);
  assert.deepEqual([...(job.data.minions as string[])].sort(), PROTECTED);

  const started = await closeWindow(from, 'the invalid tags');
  assert.deepEqual(
    started.filter((e) => e.data.jid !== job.data.jid).map((e) => e.data.tgt),
    [],
    'no job for an invalid tag',
  );
  assert.deepEqual(
    sigs.filter((s) => applyJobs().some((e) => carries(e, s))),
    [],
  );
});

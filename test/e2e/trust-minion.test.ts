// The minion is the last line of defence: whatever reaches it through the real master must pass
// its own checks, even when it comes by the strongest path there is, a master-side runner
// `event.send` with our cluster tag (`salt-run event.send <tag> data='{...}'` as root, or the
// bridge's salt-api user for a body too large for one command-line argument), to which the shipped
// reactor does react. Two protected minions (ipset and nftables backends) guard redis on port 6379
// for cluster prod; a "listed" node host is in the genuine list, an "attacker" host is not.
// Payloads are signed here with Node's Ed25519 and the harness's test key (test/harness/keys.ts),
// exactly as docs/event-contract.md (version 2) says; no bridge daemon runs. Bytes, which event
// data cannot carry past the reactor, are also sent the one way they reach a minion: root on the
// master calling `kube_allowlist.apply` directly.
//
// Each hostile payload is answered by both minions (the job returns on the bus, or the job cache
// for the direct job, bound every wait) with the documented refusal, and real TCP connections from
// the two hosts plus each minion's `kube_allowlist.show` prove that nothing changed. Positive
// controls on both paths: a genuine newer list that admits the attacker is applied, and one that
// removes it again is too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { startLab, type Lab, type Host } from '../harness/netns.ts';
import { startSalt, type SaltStack, type BusEvent, type Minion } from '../harness/salt.ts';
import { startRedis, probe } from '../harness/redis.ts';
import { httpsJson } from '../harness/https.ts';
import { requireTools } from '../harness/tools.ts';
import { stopInOrder } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys();
const CLUSTER = 'prod';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
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
/** One command-line argument is at most 128 KiB on Linux; larger bodies go through salt-api. */
const ARG_LIMIT = 100_000;
const SKEW_REASON = /^refused: generation: \d+ is \d+ s ahead of this minion's clock, more than max_generation_skew 300 s/;

let lab: Lab;
let salt: SaltStack;
let protectedMinions: Minion[];
let listed: Host;
let attacker: Host;
/** An address in every genuine list that no host holds: keeps removals within the shrink policy. */
let filler: string;
let bridgeToken = '';

// ---- payloads, from the contract alone ------------------------------------------------------

type Payload = Record<string, unknown> & { signature: string; generation: number };

const canonical = (o: Record<string, unknown>) =>
  JSON.stringify(
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    ),
  );
const digestOf = (ipv4: string[], ipv6: string[] = []) => 'sha256:' + createHash('sha256').update(canonical({ ipv4, ipv6 })).digest('hex');
const signedView = (body: Record<string, unknown>) => Object.fromEntries(SIGNED.filter((k) => k in body).map((k) => [k, body[k]]));

let lastGeneration = 0;
/** What the minions hold: the list of the last genuine payload they applied. */
let held: string[] = [];

/** The unsigned body of a version 2 payload for `ipv4` (sorted here), `added`/`removed` against what is held. */
function body(ipv4: string[], generation?: number): Record<string, unknown> {
  const list = [...ipv4].sort();
  const gen = generation ?? Math.max(lastGeneration + 1, Date.now());
  if (generation === undefined) lastGeneration = gen;
  const added = list.filter((e) => !held.includes(e));
  const removed = held.filter((e) => !list.includes(e));
  return {
    version: 2,
    cluster: CLUSTER,
    generation: gen,
    digest: digestOf(list),
    ipv4: list,
    ipv6: [],
    added: added.slice(0, 1000),
    removed: removed.slice(0, 1000),
    ...(added.length > 1000 ? { added_truncated: true } : {}),
    ...(removed.length > 1000 ? { removed_truncated: true } : {}),
    nodes: list.length,
    issued_at: new Date().toISOString(),
    key_id: KEYS.keyId,
  };
}

/** Signed with the genuine test key (the bridge's): a new generation per call unless one is given. */
function genuine(ipv4: string[], generation?: number): Payload {
  const b = body(ipv4, generation);
  return { ...b, signature: KEYS.signer.sign(canonical(signedView(b))) } as Payload;
}

// ---- firing master-side, and the job it starts ----------------------------------------------

async function sendAsBridge(data: Record<string, unknown>): Promise<void> {
  const r = await httpsJson<{ return: unknown[] }>(`${salt.apiUrl}/`, {
    method: 'POST',
    ca: readFileSync(salt.apiCaFile),
    headers: { 'X-Auth-Token': bridgeToken },
    timeoutMs: 120_000,
    body: { client: 'runner', fun: 'event.send', tag: TAG, data },
  });
  assert.deepEqual(r.return, [true], 'runner event.send through salt-api as the bridge user');
}

/**
 * Fires `data` under the cluster tag from the master: `salt-run event.send <tag> data=<text>` (the
 * text is read as YAML by Salt's CLI, so JSON works), or salt-api's runner event.send as the
 * bridge user when the body does not fit one argument. Returns the bus index before the send.
 */
async function fire(data: Record<string, unknown> | string): Promise<number> {
  const from = salt.events.length;
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  if (text.length <= ARG_LIMIT) {
    const r = await salt.cli('salt-run', ['event.send', TAG, `data=${text}`, '--out=json']);
    assert.equal(r.code, 0, `salt-run event.send: ${r.stderr.slice(0, 300)}`);
    assert.equal(r.stdout.trim(), 'true', `salt-run event.send returned ${r.stdout.slice(0, 200)}`);
  } else {
    assert.equal(typeof data, 'object', 'a text payload must fit one command-line argument');
    await sendAsBridge(data as Record<string, unknown>);
  }
  return from;
}

const isApplyJob = (e: BusEvent) => /^salt\/job\/\d+\/new$/.test(e.tag) && e.data.fun === 'kube_allowlist.apply';
const since = (from: number, e: BusEvent) => salt.events.indexOf(e) >= from;

interface Answer {
  minion: string;
  retcode: number;
  ret: Record<string, unknown>;
  raw: string;
}

/**
 * Waits for the apply job started after bus index `from` whose payload carries `marker` (its
 * signature), checks that it targets exactly the protected minions, and returns each one's answer.
 */
async function answers(what: string, from: number, marker: string): Promise<Answer[]> {
  const job = await salt.waitForEvent(
    `${what}: its kube_allowlist.apply job starts`,
    (e) => isApplyJob(e) && since(from, e) && JSON.stringify(e.data.arg ?? null).includes(marker),
    120_000,
  );
  assert.deepEqual(
    [...(job.data.minions as string[])].sort(),
    protectedMinions.map((m) => m.id),
    `${what}: targets the protected minions`,
  );
  const jid = String(job.data.jid);
  const out: Answer[] = [];
  for (const m of protectedMinions) {
    const e = await salt.waitForEvent(`${what}: ${m.id} answers job ${jid}`, (x) => x.tag === `salt/job/${jid}/ret/${m.id}`, 120_000);
    out.push({ minion: m.id, retcode: Number(e.data.retcode), ret: e.data.return as Record<string, unknown>, raw: JSON.stringify(e.data) });
  }
  return out;
}

/** Every protected minion refused it: `applied` false, the retcode and a reason, cleanly. */
function assertRefused(what: string, got: Answer[], retcode: number, reason: RegExp): void {
  for (const a of got) {
    assert.equal(typeof a.ret, 'object', `${what}: ${a.minion} returned a dict: ${a.raw.slice(0, 400)}`);
    assert.equal(a.ret.applied, false, `${what}: ${a.minion} did not apply it: ${a.raw.slice(0, 400)}`);
    assert.equal(a.ret.changed, false, `${what}: ${a.minion} changed nothing`);
    assert.equal(a.retcode, retcode, `${what}: ${a.minion} retcode: ${a.raw.slice(0, 400)}`);
    assert.match(String(a.ret.reason), reason, `${what}: ${a.minion} reason`);
    assert.ok(String(a.ret.reason).length <= 600, `${what}: ${a.minion} reason is truncated`);
    assert.doesNotMatch(a.raw, /Traceback|File "[^"]*", line \d+|Exception:/, `${what}: ${a.minion} answered without a traceback`);
  }
}

/** Every protected minion applied it (the positive controls). */
function assertApplied(what: string, got: Answer[], generation: number): void {
  for (const a of got) {
    assert.equal(a.retcode, 0, `${what}: ${a.minion} retcode: ${a.raw.slice(0, 400)}`);
    assert.equal(a.ret.applied, true, `${what}: ${a.minion} applied it`);
    assert.equal(a.ret.changed, true, `${what}: ${a.minion} changed its firewall`);
    assert.equal(a.ret.generation, generation);
  }
}

// ---- what the minions enforce -----------------------------------------------------------------

// A dropped SYN shows as a timeout: long enough for a loaded machine to answer an allowed one.
const connects = async (from: Host, m: Minion) => (await probe(from, from.ipv4, m.host.ipv4, 2)).ok;

async function generations(): Promise<Record<string, unknown>> {
  const r = await salt.salt(protectedMinions.map((m) => m.id).join(','), 'kube_allowlist.show', [], { tgtType: 'list', timeoutS: 60 });
  return Object.fromEntries(
    protectedMinions.map((m) => [m.id, (r[m.id] as { clusters?: Record<string, { generation?: unknown }> } | undefined)?.clusters?.[CLUSTER]?.generation]),
  );
}

/** Real TCP from both hosts to every protected minion, and each minion's own view of its generation. */
async function assertEnforced(what: string, generation: number, attackerAdmitted: boolean): Promise<void> {
  await Promise.all(
    protectedMinions.map(async (m) => {
      const [l, a] = await Promise.all([connects(listed, m), connects(attacker, m)]);
      assert.equal(l, true, `${what}: the listed host connects to redis on ${m.id}`);
      assert.equal(a, attackerAdmitted, `${what}: the attacker host is ${attackerAdmitted ? 'admitted' : 'dropped'} by ${m.id}`);
    }),
  );
  assert.deepEqual(
    await generations(),
    Object.fromEntries(protectedMinions.map((m) => [m.id, generation])),
    `${what}: kube_allowlist.show reports generation ${generation} on every protected minion`,
  );
}

/** The generation the minions enforce, whose list admits the listed host and drops the attacker. */
let current = 0;
/** The genuine payload of that generation. */
let currentPayload: Payload | undefined;
const unchanged = (what: string) => assertEnforced(`${what} (firewall unchanged)`, current, false);

/** Fires a genuine list master-side and checks that both minions applied it. */
async function applyGenuine(what: string, ipv4: string[]): Promise<Payload> {
  const p = genuine(ipv4);
  assertApplied(what, await answers(what, await fire(p), p.signature), p.generation);
  held = [...(p.ipv4 as string[])];
  return p;
}

function pillar(backend: string) {
  return {
    kube_allowlist: {
      public_keys: [KEYS.publicText],
      backend,
      clusters: { [CLUSTER]: {} },
      rules: [{ name: 'redis', clusters: [CLUSTER], proto: 'tcp', ports: [6379], others: 'drop' }],
    },
  };
}

/** The genuine payload that admitted the attacker, as an eavesdropper captured it from the bus. */
let captured: Record<string, unknown> | undefined;

before(
  async () => {
    lab = await startLab();
    salt = await startSalt(lab, { minions: 2 });
    protectedMinions = salt.minions;
    await salt.setPillar({ 'minion-1': pillar('ipset'), 'minion-2': pillar('nftables') });
    for (const m of protectedMinions) await startRedis(m.host);
    listed = await lab.addHost('listed');
    attacker = await lab.addHost('attacker');
    filler = lab.nodeIp4(50);
    const login = await httpsJson<{ return: Array<{ token: string }> }>(`${salt.apiUrl}/login`, {
      method: 'POST',
      ca: readFileSync(salt.apiCaFile),
      body: { username: salt.bridge.username, password: salt.bridge.password, eauth: 'file' },
    });
    bridgeToken = login.return[0]!.token;
  },
  { timeout: 300_000 },
);

after(() => stopInOrder(salt, lab));

// ---- tests ------------------------------------------------------------------------------------

test('set-up: genuine signed lists fired master-side are applied by both protected minions: the listed host connects, the attacker is dropped', async () => {
  // An older genuine list that admitted the attacker too: captured from the bus for the replay below.
  const old = await applyGenuine('the older genuine list (listed, attacker)', [listed.ipv4, attacker.ipv4, filler]);
  await assertEnforced('the older genuine list', old.generation, true);
  const seen = salt.events.find((e) => e.tag === TAG && e.data.signature === old.signature);
  assert.ok(seen, 'the genuine payload was on the bus under the cluster tag');
  const { _stamp: _ignored, ...replay } = seen.data;
  captured = replay;

  const p = await applyGenuine('the current genuine list (listed only)', [listed.ipv4, filler]);
  current = p.generation;
  currentPayload = p;
  await assertEnforced('the current genuine list', current, false);
});

test("forged signature: a protected minion's pillar holds only public keys; a list signed with a key the minion generated itself (unknown key_id), or with the genuine key_id and another key's signature, is refused by every protected minion and changes nothing", async () => {
  assert.ok(current > 0, 'needs the set-up');
  // What the minion knows: its pillar, as the master renders it for it.
  // Salt 3008 masks pillar values in pillar.get's output unless asked (unmask=True, new in 3008).
  const got = await salt.salt('minion-1', 'pillar.get', ['kube_allowlist', ...(salt.version.major >= 3008 ? ['unmask=True'] : [])]);
  const own = got['minion-1'] as Record<string, unknown>;
  assert.deepEqual(Object.keys(own).sort(), ['backend', 'clusters', 'public_keys', 'rules'], JSON.stringify(own));
  assert.deepEqual(own.public_keys, [KEYS.publicText], 'only the public key');
  const text = JSON.stringify(own);
  assert.doesNotMatch(text, /seed|private|signing_key|secret/i, "no private key field in the minion's pillar");
  for (const secret of [KEYS.privateText, KEYS.privateHex, Buffer.from(KEYS.privateText, 'base64').toString('base64url')]) {
    assert.ok(!text.includes(secret), "the private key is nowhere in the minion's pillar");
  }

  // Root on minion-1 makes its own key with the minion's own Python and signs a list admitting the
  // attacker: once under its own key id, once under the genuine key id.
  const python = readFileSync(requireTools(['salt-minion'])['salt-minion']!, 'utf8')
    .split('\n')[0]!
    .replace(/^#!\s*/, '')
    .trim();
  const script = [
    'import base64, hashlib, json, sys',
    'from cryptography.hazmat.primitives import serialization',
    'from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey',
    'req = json.load(sys.stdin)',
    'key = Ed25519PrivateKey.generate()',
    'raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)',
    'own = hashlib.sha256(raw).digest()[:8].hex()',
    'out = {}',
    'for name, kid in (("own", own), ("genuine", req["genuine"])):',
    '    p = dict(req["body"], key_id=kid)',
    '    msg = json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")',
    '    out[name] = dict(p, signature="ed25519:" + base64.b64encode(key.sign(msg)).decode("ascii"))',
    'print(json.dumps({"key_id": own, "payloads": out}))',
  ].join('\n');
  const { key_id: _k, ...template } = body([listed.ipv4, attacker.ipv4, filler]);
  const r = await protectedMinions[0]!.host.exec(python, ['-c', script], { input: JSON.stringify({ body: template, genuine: KEYS.keyId }) });
  assert.equal(r.code, 0, r.stderr.slice(0, 500));
  const made = JSON.parse(r.stdout) as { key_id: string; payloads: { own: Payload; genuine: Payload } };
  assert.notEqual(made.key_id, KEYS.keyId);

  const ownKey = made.payloads.own;
  assertRefused(
    "a list signed with the minion's own key",
    await answers('own key', await fire(ownKey), ownKey.signature),
    1,
    new RegExp(`^refused: key_id: ${made.key_id} is not one of this minion's public keys \\(${KEYS.keyId};`),
  );
  await unchanged('own key');

  const borrowed = made.payloads.genuine;
  assert.equal(borrowed.key_id, KEYS.keyId);
  assertRefused(
    "the genuine key id with another key's signature",
    await answers('borrowed key id', await fire(borrowed), borrowed.signature),
    1,
    new RegExp(`^refused: signature: does not verify with key ${KEYS.keyId}`),
  );
  await unchanged('borrowed key id');
});

test('version 1: an HMAC-signed payload as the old bridge made it, admitting the attacker, is refused by every protected minion by its version and changes nothing', async () => {
  assert.ok(current > 0, 'needs the set-up');
  const ipv4 = [listed.ipv4, attacker.ipv4, filler].sort();
  const generation = Math.max(lastGeneration + 1, Date.now());
  lastGeneration = generation;
  const v1: Record<string, unknown> = {
    version: 1,
    cluster: CLUSTER,
    generation,
    digest: digestOf(ipv4),
    ipv4,
    ipv6: [],
    added: [attacker.ipv4],
    removed: [],
    nodes: 3,
    target: `I@kube_allowlist:clusters:${CLUSTER}`,
    issued_at: new Date(generation).toISOString(),
  };
  v1.signature = 'hmac-sha256:' + createHmac('sha256', Buffer.from('the shared key of contract version 1', 'utf8')).update(canonical(v1)).digest('hex');
  const sig = String(v1.signature);
  assertRefused(
    'a version 1 payload',
    await answers('version 1', await fire(v1), sig),
    1,
    /^refused: version: 1 \(HMAC-SHA256 with a shared key\) is no longer accepted/,
  );
  await unchanged('version 1');
});

test('generation skew: genuine payloads admitting the attacker with a generation an hour ahead of the minion clock, or 10^15, are refused by every protected minion and change nothing', async () => {
  assert.ok(current > 0, 'needs the set-up');
  const ahead = genuine([listed.ipv4, attacker.ipv4, filler], Date.now() + 3_600_000);
  assertRefused('a generation an hour ahead', await answers('an hour ahead', await fire(ahead), ahead.signature), 1, SKEW_REASON);
  await unchanged('an hour ahead');

  const far = genuine([listed.ipv4, attacker.ipv4, filler], 10 ** 15);
  assertRefused('generation 10^15', await answers('10^15', await fire(far), far.signature), 1, /^refused: generation: 1000000000000000 is \d+ s ahead/);
  await unchanged('generation 10^15');
});

test('address space: a genuine list of 20,000 /16 networks, or a single 0.0.0.0/1, covering the attacker, is refused by every protected minion and changes nothing', async () => {
  assert.ok(current > 0, 'needs the set-up');
  // 20,000 distinct /16s (the lab's among them): within max_entries (20,000) and max_prefix (/16),
  // but 2^30.3 addresses, beyond max_address_space (2^24).
  const lab16 = listed.ipv4.split('.').slice(0, 2).join('.') + '.0.0/16';
  const nets = new Set<string>([lab16]);
  for (let a = 1; nets.size < 20_000; a++) for (let b = 0; b < 256 && nets.size < 20_000; b++) nets.add(`${a}.${b}.0.0/16`);
  const wide = genuine([...nets]);
  assert.equal((wide.ipv4 as string[]).length, 20_000);
  assertRefused(
    '20,000 /16 networks',
    await answers('20,000 /16', await fire(wide), wide.signature),
    1,
    /^refused: ipv4: the entries cover 1310720000 addresses \(2\^30 or more\), more than 2\^24 \(pillar kube_allowlist:max_address_space:ipv4\)/,
  );
  await unchanged('20,000 /16 networks');

  const half = genuine(['0.0.0.0/1']);
  assertRefused(
    '0.0.0.0/1',
    await answers('0.0.0.0/1', await fire(half), half.signature),
    1,
    /^refused: ipv4\[0\]: '0\.0\.0\.0\/1' is wider than \/16, the bound for ipv4/,
  );
  await unchanged('0.0.0.0/1');
});

test('replay: an older genuine payload captured from the bus, fired again master-side, is stale on every protected minion: nothing rolls back', async () => {
  assert.ok(captured, 'needs the payload captured in the set-up');
  assert.ok((captured.ipv4 as string[]).includes(attacker.ipv4), 'the replayed list admitted the attacker');
  const sig = String(captured.signature);
  assertRefused(
    'the replayed payload',
    await answers('replay', await fire(captured), sig),
    0,
    new RegExp(`^stale: generation ${String(captured.generation)} is older than the applied generation ${current}$`),
  );
  await unchanged('replay');
});

test('hostile types: genuine payloads admitting the attacker with a field nested 40 levels deep or a 100,000-character string are refused by every protected minion with a clean reason and no traceback; bytes in the event data start no job; nothing changes', async () => {
  assert.ok(current > 0 && currentPayload, 'needs the set-up');
  const list = [listed.ipv4, attacker.ipv4, filler];

  let nested: unknown = 'deep';
  for (let i = 0; i < 40; i++) nested = [nested];
  const deep = { ...genuine(list), extra: nested };
  assertRefused(
    'a field nested 40 levels deep',
    await answers('nested', await fire(deep), deep.signature),
    1,
    /^refused: payload\.extra(\[0\])+: nested more than 8 levels deep$/,
  );
  await unchanged('nested');

  const huge = { ...genuine(list), extra: 'A'.repeat(100_000) };
  assertRefused(
    'a 100,000-character string',
    await answers('huge string', await fire(huge), huge.signature),
    1,
    /^refused: payload\.extra: a string of 100000 characters \(at most 1024\)$/,
  );
  await unchanged('huge string');

  // Bytes exist in event data only through Salt's YAML command-line parsing (`!!binary`); JSON has
  // none. The shipped reactor cannot render them (its json filter refuses bytes), so no job starts.
  // The window is closed by firing the current genuine payload again: the reactor renders in bus
  // order, and that one is answered "already current" and changes nothing. (These bytes are text:
  // bytes that are not UTF-8 also end `salt-run state.event`, the harness's bus reader; see the
  // last test.)
  const viaEvent = genuine(list);
  const from = await fire(JSON.stringify(viaEvent).replace(/}$/, ', "extra": !!binary aGk=}'));
  const again = await answers('the current payload again', await fire(currentPayload), currentPayload.signature);
  for (const a of again) {
    assert.equal(a.retcode, 0, a.raw.slice(0, 400));
    assert.deepEqual([a.ret.applied, a.ret.changed, a.ret.reason], [true, false, `already current at generation ${current}`], a.raw.slice(0, 400));
  }
  const started = salt.events
    .slice(from)
    .filter(isApplyJob)
    .filter((e) => !JSON.stringify(e.data.arg).includes(currentPayload!.signature));
  assert.deepEqual(
    started.map((e) => e.data.jid),
    [],
    'no job started for the event carrying bytes',
  );
  await unchanged('bytes in event data');
});

test('positive control: a genuine newer list that adds the attacker is applied by every protected minion (the attacker connects), and a genuine newer list that removes it again drops it', async () => {
  assert.ok(current > 0, 'needs the set-up');
  const open = await applyGenuine('a genuine list admitting the attacker', [listed.ipv4, attacker.ipv4, filler]);
  await assertEnforced('the genuine list admitting the attacker', open.generation, true);
  const closed = await applyGenuine('a genuine list without the attacker', [listed.ipv4, filler]);
  current = closed.generation;
  currentPayload = closed;
  await assertEnforced('the genuine list without the attacker', current, false);
});

/**
 * Root on the master runs `kube_allowlist.apply payload=<text>` on the protected minions itself
 * (the text read as YAML by Salt's CLI). The answers come from the master's job cache
 * (`jobs.list_job`), not from the bus: the job's start event carries the payload, and bytes in it
 * that are not UTF-8 may end `salt-run state.event`.
 */
async function directJob(what: string, text: string): Promise<Answer[]> {
  const r = await salt.cli(
    'salt',
    ['-L', protectedMinions.map((m) => m.id).join(','), 'kube_allowlist.apply', `payload=${text}`, '--show-jid', '--out=json', '--timeout=120'],
    { timeoutMs: 180_000 },
  );
  assert.doesNotMatch(r.stdout + r.stderr, /Traceback/, `${what}: the salt command printed no traceback`);
  const jid = /^jid: (\d+)$/m.exec(r.stdout)?.[1];
  assert.ok(jid, `${what}: salt --show-jid printed the job id: ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
  const job = (await salt.saltRun('jobs.list_job', [jid])) as { Result?: Record<string, { return?: unknown; retcode?: unknown }> };
  return protectedMinions.map((m) => {
    const got = job.Result?.[m.id];
    assert.ok(got, `${what}: ${m.id} answered job ${jid}: ${JSON.stringify(job.Result ?? null).slice(0, 400)}`);
    return { minion: m.id, retcode: Number(got.retcode), ret: got.return as Record<string, unknown>, raw: JSON.stringify(got) };
  });
}

test('bytes, by the one path that delivers them: a genuine payload admitting the attacker with a bytes field in a job root on the master starts directly is refused by every protected minion by type, with no traceback, and changes nothing; the same list without it is applied by that path, then removed again', async () => {
  assert.ok(current > 0, 'needs the set-up');
  const list = [listed.ipv4, attacker.ipv4, filler];
  // Salt turns bytes that decode as UTF-8 into text on the way to a minion: these do not.
  const withBytes = genuine(list);
  assertRefused(
    'a bytes field',
    await directJob('bytes', JSON.stringify(withBytes).replace(/}$/, ', "extra": !!binary /wABAgP+/f4=}')),
    1,
    /^refused: payload\.extra: a value of type bytes is not allowed \(only strings, integers, booleans, lists and mappings\)$/,
  );
  await unchanged('bytes in a direct job');

  // The control on the same path: without the bytes the (newer) genuine list is applied...
  const plain = genuine(list);
  assertApplied('the same list without bytes, directly', await directJob('no bytes', JSON.stringify(plain)), plain.generation);
  held = [...(plain.ipv4 as string[])];
  await assertEnforced('the direct genuine list admitting the attacker', plain.generation, true);
  // ...and a newer one without the attacker drops it again.
  const closed = genuine([listed.ipv4, filler]);
  assertApplied('a genuine list without the attacker, directly', await directJob('closing', JSON.stringify(closed)), closed.generation);
  held = [...(closed.ipv4 as string[])];
  current = closed.generation;
  await unchanged('the direct genuine list without the attacker');
});

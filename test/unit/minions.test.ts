// The bookkeeping behind what the bridge believes from the bus: decision tables for jobs, returns,
// outcomes (applied, refused, stale, failed) and the generation floor, the re-send split, the
// bounds of the job book and the tracker, refusals as a held state, and the rounds of start re-sends.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  JobBook,
  MinionTracker,
  MAX_HINT_IDS,
  MAX_JOBS,
  REQUEST_OVERHEAD_BYTES,
  REFUSAL_REASONS,
  judgeFloor,
  judgeJob,
  judgeOutcome,
  judgeReturn,
  refusalHint,
  refusalReason,
  resendEvents,
  type Credit,
  type Job,
  type Outcome,
  MAX_JOB_REFIRES,
  NEED_FULL_LIMITS,
  NeedFullRounds,
  judgeNeedFull,
  awaitJob,
  jobEndsWait,
  judgeJobWait,
} from '../../src/controller/minions.ts';
import { StartRounds, START_LIMITS } from '../../src/controller/starts.ts';
import { noteDrop } from '../../src/controller/cluster.ts';
import { buildPayload, payloadBytes, SALT_API_MAX_BODY_BYTES } from '../../src/plan/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('minions unit tests');
const T = Date.parse('2026-11-22T10:00:00Z');

function payload(ipv4: string[], generation = T): AllowListPayload {
  return buildPayload(
    {
      cluster: 'prod',
      generation,
      list: { ipv4, ipv6: [] },
      nodes: ipv4.length,
      issuedAtMs: T,
      diff: { added: [], removed: [], added_truncated: false, removed_truncated: false, addedCount: 0, removedCount: 0 },
    },
    KEYS.signer,
  );
}
const job = (jid: string, minions: string[], generation = 7): Job => ({ jid, cluster: 'prod', generation, digest: 'sha256:d', minions: new Set(minions) });

describe('judgeJob', () => {
  const cases: Array<[string, { ours: boolean; known: boolean; verifies: boolean }, ReturnType<typeof judgeJob>]> = [
    ['ours, new, verifies: remembered', { ours: true, known: false, verifies: true }, { accept: true }],
    ['another cluster: not ours to judge', { ours: false, known: false, verifies: true }, { accept: false, reason: 'other-cluster' }],
    ['a jid already remembered: the first word stands', { ours: true, known: true, verifies: true }, { accept: false, reason: 'known-job' }],
    ['a payload not signed by our key', { ours: true, known: false, verifies: false }, { accept: false, reason: 'unverified' }],
  ];
  for (const [name, i, want] of cases) it(name, () => assert.deepEqual(judgeJob({ ours: i.ours, known: i.known, verify: () => i.verifies }), want));

  it('verifies only when everything cheaper passed', () => {
    let calls = 0;
    judgeJob({ ours: false, known: false, verify: () => (calls++, true) });
    judgeJob({ ours: true, known: true, verify: () => (calls++, true) });
    assert.equal(calls, 0);
  });
});

describe('judgeReturn', () => {
  const j = job('1', ['m1', 'm2'], 42);
  const cases: Array<[string, Job | undefined, string, ReturnType<typeof judgeReturn>]> = [
    ["a targeted minion of a remembered job: the job's generation and digest", j, 'm1', { credit: true, cluster: 'prod', generation: 42, digest: 'sha256:d' }],
    ['a minion the job did not target', j, 'm3', { credit: false, reason: 'not-targeted' }],
    ['a job never seen (or not verified)', undefined, 'm1', { credit: false, reason: 'unknown-job' }],
  ];
  for (const [name, jb, m, want] of cases) it(name, () => assert.deepEqual(judgeReturn(jb, m), want));
});

describe('judgeFloor', () => {
  const cases: Array<[string, { ours: boolean; floor: number; generation: number | undefined; verifies: boolean }, ReturnType<typeof judgeFloor>]> = [
    ['ours, higher, verifies: raised', { ours: true, floor: 10, generation: 20, verifies: true }, { raise: true, to: 20 }],
    ['ours, higher, does not verify: never', { ours: true, floor: 10, generation: 20, verifies: false }, { raise: false, reason: 'unverified' }],
    ['not higher: nothing to verify', { ours: true, floor: 20, generation: 20, verifies: true }, { raise: false, reason: 'not-higher' }],
    ['no generation', { ours: true, floor: 20, generation: undefined, verifies: true }, { raise: false, reason: 'not-higher' }],
    ['another cluster', { ours: false, floor: 0, generation: 20, verifies: true }, { raise: false, reason: 'other-cluster' }],
  ];
  for (const [name, i, want] of cases) {
    it(name, () => assert.deepEqual(judgeFloor({ ours: i.ours, floor: i.floor, generation: i.generation, verify: () => i.verifies }), want));
  }
});

describe('resendEvents', () => {
  const p = payload(['10.0.0.1', '10.0.0.2']);

  it('carries exactly the payload, plus the hint', () => {
    const [e, ...rest] = resendEvents(p, ['m2', 'm1', 'm2']);
    assert.equal(rest.length, 0);
    const { minions, ...signed } = e!;
    assert.deepEqual(minions, ['m1', 'm2']);
    assert.deepEqual(signed, p);
  });

  it('no minions: no event', () => assert.deepEqual(resendEvents(p, []), []));

  it('an old hint on the payload is replaced, never merged', () => {
    const [e] = resendEvents({ ...p, minions: ['stale'] }, ['m1']);
    assert.deepEqual(e!.minions, ['m1']);
  });

  it('ids the reactor would refuse are left out (one would void the whole event)', () => {
    assert.deepEqual(resendEvents(p, ['ok', 'x or *', 'a,b', ''])[0]!.minions, ['ok']);
    assert.deepEqual(resendEvents(p, ['*']), []);
  });

  it('at most MAX_HINT_IDS ids per event', () => {
    const ids = Array.from({ length: 2 * MAX_HINT_IDS + 1 }, (_, i) => `m${i}`);
    const events = resendEvents(p, ids);
    assert.deepEqual(
      events.map((e) => e.minions!.length),
      [MAX_HINT_IDS, MAX_HINT_IDS, 1],
    );
    assert.deepEqual(events.flatMap((e) => e.minions!).sort(), [...ids].sort());
  });

  it('split so that every request stays under the byte limit', () => {
    const big = payload(Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    const ids = Array.from({ length: 3000 }, (_, i) => `${'n'.repeat(120)}-${String(i).padStart(4, '0')}`);
    const limit = payloadBytes(big) + REQUEST_OVERHEAD_BYTES + 100_000; // room for ~770 long ids
    const events = resendEvents(big, ids, limit);
    assert.ok(events.length >= 4, `${events.length} events`);
    for (const e of events) assert.ok(payloadBytes(e) + REQUEST_OVERHEAD_BYTES <= limit, `${payloadBytes(e)} bytes`);
    assert.deepEqual(
      events.flatMap((e) => e.minions!),
      [...ids].sort(),
    );
  });

  it('under the real limit, a 5,000-node payload still goes out with a full hint of 1,000 ids', () => {
    const big = payload(Array.from({ length: 5_000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`));
    const ids = Array.from({ length: 1000 }, (_, i) => `${'m'.repeat(120)}${i}`);
    const events = resendEvents(big, ids);
    assert.equal(events.length, 1);
    assert.ok(payloadBytes(events[0]!) < SALT_API_MAX_BODY_BYTES);
  });

  it("when not one id fits beside the payload, one event without a hint (the cluster's whole target)", () => {
    const limit = payloadBytes({ ...p, minions: [] }) + REQUEST_OVERHEAD_BYTES + 3;
    const events = resendEvents(p, ['m1'], limit);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.minions, undefined);
    assert.deepEqual(events[0], p);
  });
});

describe('JobBook', () => {
  it('keeps the newest MAX_JOBS jobs', () => {
    const b = new JobBook();
    for (let i = 0; i < MAX_JOBS + 5; i++) b.remember(job(String(i), ['m1']));
    assert.equal(b.size, MAX_JOBS);
    assert.equal(b.has('4'), false);
    assert.equal(b.has('5'), true);
    assert.equal(b.has(String(MAX_JOBS + 4)), true);
  });

  it('the first word on a jid stands', () => {
    const b = new JobBook();
    b.remember(job('1', ['m1'], 5));
    b.remember(job('1', ['m1', 'm2'], 9));
    assert.deepEqual([...b.get('1')!.minions], ['m1']);
    assert.equal(b.get('1')!.generation, 5);
  });

  it('keeps at most 10,000 minions of a job', () => {
    const b = new JobBook();
    b.remember(
      job(
        '1',
        Array.from({ length: 12_000 }, (_, i) => `m${i}`),
      ),
    );
    assert.equal(b.get('1')!.minions.size, 10_000);
  });
});

const ok = (generation: number, digest = `d${generation}`): Credit => ({
  generation,
  digest,
  outcome: { kind: 'applied' },
  reason: `applied generation ${generation}`,
});

describe('MinionTracker', () => {
  const opts = { ackTimeoutMs: 1000, initialMs: 100, maxMs: 1000 };

  it('is bounded per cluster: the least recently seen minion goes first', () => {
    let now = T;
    const t = new MinionTracker(
      { ...opts, maxPerCluster: 3 },
      () => now,
      () => 0.5,
    );
    t.started('prod', 5, ['a', 'b', 'c']);
    now += 1;
    t.result('prod', 'a', ok(5, 'd')); // a seen again
    t.started('prod', 6, ['d']);
    assert.deepEqual(
      t.snapshot().map((m) => m.minion),
      ['a', 'c', 'd'],
    );
    t.started('other', 6, ['x', 'y', 'z']);
    assert.equal(t.size('prod'), 3, 'each cluster has its own bound');
    assert.equal(t.size('other'), 3);
  });

  it('default bound: 10,000 minions per cluster', () => {
    const t = new MinionTracker(opts, () => T);
    t.started(
      'prod',
      5,
      Array.from({ length: 25_000 }, (_, i) => `m${i}`),
    );
    assert.equal(t.size('prod'), 10_000);
    assert.ok(
      t.snapshot().every((m) => Number(m.minion.slice(1)) >= 15_000),
      'the newest are kept',
    );
  });

  it("credits what it is told (the job's generation), never lowers it, and owes re-sends to the silent", () => {
    let now = T;
    const t = new MinionTracker(
      opts,
      () => now,
      () => 0.5,
    );
    t.started('prod', 5, ['a', 'b']);
    t.result('prod', 'a', ok(5, 'd5'));
    t.result('prod', 'a', { generation: 4, digest: 'd4', outcome: { kind: 'current' }, reason: 'current' });
    assert.equal(t.snapshot()[0]!.appliedGeneration, 5);
    assert.deepEqual(t.behind('prod', 5), ['b']);
    now += 1000;
    assert.deepEqual(t.due('prod'), ['b']);
    assert.deepEqual(t.due('prod'), [], 'pushed back');
  });
});

// The module's own reason texts (salt/file_roots/_utils/saltext/kube_allowlist/: utils/policy.py,
// utils/payload.py, modules/kube_allowlist_mod.py), as a return carries them.
const REASONS: Array<[string, string, Outcome]> = [
  ['applied', 'applied generation 7', { kind: 'applied' }],
  ['already current', 'already current at generation 7', { kind: 'current' }],
  ['stale (retcode 0)', 'stale: generation 5 is older than the applied generation 7', { kind: 'stale', reason: 'stale' }],
  [
    'shrink',
    'refused: 3 of 5 entries would be removed (60.0%), more than max_shrink 0.2; re-run with force=True if intended',
    { kind: 'refused', reason: 'shrink' },
  ],
  [
    'shrink with additions',
    'refused: 8 of 10 entries would be removed and 1 added, 7 fewer (70.0%), more than max_shrink 0.5; re-run with force=True if intended',
    { kind: 'refused', reason: 'shrink' },
  ],
  [
    'empty',
    'refused: empty allow-list for ipv4 (set pillar kube_allowlist:allow_empty or kube_allowlist:clusters:<name>:allow_empty)',
    { kind: 'refused', reason: 'empty' },
  ],
  ['conflict', 'refused: generation 17 was already applied with digest sha256:aa, this payload has sha256:bb', { kind: 'refused', reason: 'conflict' }],
  [
    'skew',
    "refused: generation: 1796120114252 is 3600 s ahead of this minion's clock, more than max_generation_skew 300 s (is the bridge's clock right?)",
    { kind: 'refused', reason: 'skew' },
  ],
  ['version', 'refused: version: 1 is not supported, this minion speaks version 2', { kind: 'refused', reason: 'version' }],
  [
    'unknown key',
    "refused: key_id: 0123456789abcdef is not one of this minion's public keys (none; pillar kube_allowlist:public_keys)",
    { kind: 'refused', reason: 'key' },
  ],
  ['signature', 'refused: signature: does not verify with key 0123456789abcdef (the payload was altered or forged)', { kind: 'refused', reason: 'signature' }],
  ['tag', "refused: tag 'kube-salt-bridge/cluster/x/nodes' does not name cluster prod", { kind: 'refused', reason: 'tag' }],
  ['schema', 'refused: payload: missing keys digest', { kind: 'refused', reason: 'invalid' }],
  ['address', "refused: ipv4[0]: '10.0.0.0/8' is wider than /16", { kind: 'refused', reason: 'invalid' }],
];

describe('judgeOutcome (what a credited return means)', () => {
  for (const [name, reason, want] of REASONS) {
    const retcode = want.kind === 'refused' ? 1 : 0;
    const okFlag = want.kind === 'applied' || want.kind === 'current';
    it(`${name} → ${want.kind}${'reason' in want ? ` (${want.reason})` : ''}`, () => {
      assert.deepEqual(judgeOutcome({ ok: okFlag, changed: want.kind === 'applied', retcode, reason }), want);
    });
  }
  const failures: Array<[string, { ok: boolean; changed: boolean; retcode: number | undefined; reason: string }]> = [
    ['retcode 2 (firewall command, pillar, corrupt cache)', { ok: false, changed: false, retcode: 2, reason: 'ipset restore failed (exit 1): ...' }],
    [
      "retcode 1 without the module's refusal (Salt's own error text)",
      { ok: false, changed: false, retcode: 1, reason: 'ERROR: Exception occurred in kube_allowlist.apply' },
    ],
    ['a missing module', { ok: false, changed: false, retcode: 254, reason: "'kube_allowlist.apply' is not available." }],
    ['no retcode at all', { ok: false, changed: false, retcode: undefined, reason: 'retcode missing' }],
    ['retcode 0, not applied, not stale', { ok: false, changed: false, retcode: 0, reason: 'unexpected' }],
    ['a refusal text with retcode 2 is still a failure', { ok: false, changed: false, retcode: 2, reason: 'refused: 3 of 5 entries would be removed' }],
    ['a stale text with retcode 1 is not stale', { ok: false, changed: false, retcode: 1, reason: 'stale: generation 5 is older' }],
  ];
  for (const [name, r] of failures) it(`${name} → failed (retried with backoff)`, () => assert.deepEqual(judgeOutcome(r), { kind: 'failed' }));

  it('retcode 0 with need_full → need_full, never the stale word, whatever the reason text', () => {
    const r = { ok: false, changed: false, retcode: 0, needFull: true };
    assert.deepEqual(judgeOutcome({ ...r, reason: 'need_full: holds nothing, the delta is from sha256:ab' }), { kind: 'need_full' });
    assert.deepEqual(judgeOutcome({ ...r, reason: 'stale: generation 5 is older' }), { kind: 'need_full' });
    assert.deepEqual(judgeOutcome({ ...r, retcode: 1, reason: 'refused: invalid' }), { kind: 'refused', reason: 'invalid' }, 'retcode 1 is a refusal');
    assert.deepEqual(judgeOutcome({ ...r, retcode: 2, reason: 'x' }), { kind: 'failed' });
    assert.deepEqual(judgeOutcome({ ...r, ok: true, changed: true, reason: 'applied' }), { kind: 'applied' }, 'ok wins');
  });

  it('the Salt side still words its reasons the way refusalReason reads them', () => {
    const ext = join(import.meta.dirname, '..', '..', 'salt', 'file_roots', '_utils', 'saltext', 'kube_allowlist');
    const source = ['modules/kube_allowlist_mod.py', 'utils/policy.py', 'utils/payload.py'].map((f) => readFileSync(join(ext, f), 'utf8')).join('\n');
    for (const text of [
      '"stale: generation',
      'entries would be removed',
      '"refused: empty allow-list',
      'was already applied with digest',
      "ahead of this minion's clock",
      'is not supported, this minion speaks version',
      "is not one of this minion's public keys",
      'does not name cluster',
      '"signature: ',
      'f"refused: {err}"',
    ]) {
      assert.ok(source.includes(text), `the Salt extension no longer says ${JSON.stringify(text)}: update refusalReason / judgeOutcome`);
    }
  });

  it("every reason has a remedy that names the cluster's release", () => {
    for (const r of REFUSAL_REASONS) assert.match(refusalHint(r, 'prod', 'm1'), /kube-salt-bridge release prod/, r);
    assert.equal(refusalReason('refused: something new'), 'invalid');
  });
});

const refused = (generation: number, reason = 'refused: 3 of 5 entries would be removed (60.0%), more than max_shrink 0.2'): Credit => ({
  generation,
  digest: `d${generation}`,
  outcome: judgeOutcome({ ok: false, changed: false, retcode: 1, reason }),
  reason,
});
const stale = (generation: number): Credit => ({
  generation,
  digest: `d${generation}`,
  outcome: { kind: 'stale', reason: 'stale' },
  reason: 'stale: generation 5 is older than the applied generation 9',
});
const failed = (generation: number): Credit => ({ generation, digest: `d${generation}`, outcome: { kind: 'failed' }, reason: 'ipset failed' });

describe('MinionTracker: a refusal is a held state, not a retry loop', () => {
  const opts = { ackTimeoutMs: 1000, initialMs: 100, maxMs: 1000 };
  const setup = () => {
    const clock = { now: T };
    const t = new MinionTracker(
      opts,
      () => clock.now,
      () => 0.5,
    );
    return { t, clock, row: (m = 'a') => t.snapshot().find((r) => r.minion === m)! };
  };

  it('refused: held with its reason and generation; owed nothing, ever, for that generation', () => {
    const { t, clock, row } = setup();
    t.started('prod', 5, ['a']);
    assert.equal(t.result('prod', 'a', refused(5)), 'held');
    assert.deepEqual([row().lastResult, row().refusal?.reason, row().refusal?.generation, row().retryAt], ['refused', 'shrink', 5, undefined]);
    assert.equal(t.refuses('prod', 'a', 5), true);
    for (let i = 0; i < 10; i++) {
      clock.now += 60_000;
      assert.deepEqual(t.due('prod'), [], 'no re-send, however long');
    }
    assert.equal(t.nextDue(), undefined);
    assert.deepEqual(t.behind('prod', 5), ['a'], 'still behind: it keeps its larger list');
  });

  it('the same generation again (the periodic resync) owes nothing; a repeated refusal keeps its "since"', () => {
    const { t, clock, row } = setup();
    t.started('prod', 5, ['a']);
    t.result('prod', 'a', refused(5));
    const since = row().refusal!.since;
    clock.now += 600_000;
    t.started('prod', 5, ['a']);
    assert.equal(row().retryAt, undefined);
    assert.equal(t.result('prod', 'a', refused(5)), 'held-again');
    assert.equal(row().refusal!.since, since);
  });

  it('a newer generation is owed as usual; accepting it clears the refusal', () => {
    const { t, clock, row } = setup();
    t.started('prod', 5, ['a']);
    t.result('prod', 'a', refused(5));
    t.started('prod', 6, ['a']);
    assert.equal(row().retryAt, clock.now + 1000, 'the new list is owed an answer');
    assert.equal(row().refusal?.generation, 5, 'the refusal stays visible until it accepts');
    assert.equal(t.result('prod', 'a', ok(6)), 'ok');
    assert.deepEqual([row().lastResult, row().refusal, row().appliedGeneration], ['applied', undefined, 6]);
    assert.equal(t.refuses('prod', 'a', 5), false);
  });

  it('a newer generation refused replaces the refusal (the reason may change)', () => {
    const { t, row } = setup();
    t.started('prod', 5, ['a']);
    t.result('prod', 'a', refused(5));
    t.started('prod', 6, ['a']);
    assert.equal(t.result('prod', 'a', refused(6, 'refused: empty allow-list for ipv4')), 'held');
    assert.deepEqual([row().refusal?.reason, row().refusal?.generation], ['empty', 6]);
  });

  it('stale: held the same way (reason stale), cleared by a newer generation it accepts', () => {
    const { t, row } = setup();
    t.started('prod', 5, ['a']);
    assert.equal(t.result('prod', 'a', stale(5)), 'held');
    assert.deepEqual([row().lastResult, row().refusal?.reason, row().retryAt], ['stale', 'stale', undefined]);
    t.started('prod', 9, ['a']);
    t.result('prod', 'a', ok(9));
    assert.equal(row().refusal, undefined);
  });

  it('a late refusal of an older generation changes nothing while a newer one is owed', () => {
    const { t, clock, row } = setup();
    t.started('prod', 5, ['a']);
    t.started('prod', 6, ['a']);
    assert.equal(t.result('prod', 'a', refused(5)), 'late');
    assert.deepEqual([row().lastResult, row().refusal, row().retryAt], ['pending', undefined, clock.now + 1000]);
    t.result('prod', 'a', ok(6));
    assert.equal(t.result('prod', 'a', refused(5)), 'late', 'nor after it applied a newer one');
    assert.equal(row().refusal, undefined);
  });

  it('failures keep the retry with backoff (retcode 2, no answer)', () => {
    const { t, clock, row } = setup();
    t.started('prod', 5, ['a', 'b']);
    assert.equal(t.result('prod', 'a', failed(5)), 'failed');
    assert.equal(row().lastResult, 'failed');
    clock.now += 1000;
    assert.deepEqual(t.due('prod'), ['a', 'b'], 'the failed one and the silent one');
  });

  it('an operator release: the refusing minions are owed one answer again, and held again if they refuse again', () => {
    const { t, clock, row } = setup();
    t.started('prod', 5, ['a', 'b', 'c']);
    t.result('prod', 'a', refused(5));
    t.result('prod', 'b', stale(5));
    t.result('prod', 'c', ok(5));
    assert.deepEqual(
      t.refusals('prod').map((r) => [r.minion, r.reason]),
      [
        ['a', 'shrink'],
        ['b', 'stale'],
      ],
    );
    const freed = t.release('prod', 5);
    assert.deepEqual(
      freed.map((f) => [f.minion, f.refusal.reason]),
      [
        ['a', 'shrink'],
        ['b', 'stale'],
      ],
    );
    assert.deepEqual([row('a').lastResult, row('a').refusal, row('a').retryAt], ['pending', undefined, clock.now + 1000]);
    assert.deepEqual(t.refusals('prod'), []);
    assert.equal(t.result('prod', 'a', refused(5)), 'held');
    assert.deepEqual(
      t.release('prod', 5, new Set(['b'])).map((f) => f.minion),
      [],
      'b was released already',
    );
    assert.deepEqual(
      t.release('prod', 5, new Set(['a'])).map((f) => f.minion),
      ['a'],
    );
  });
});

describe('MinionTracker: need_full is pending, not a word on the generation', () => {
  const now = { t: 0 };
  const credit = (generation: number, outcome: Outcome): Credit => ({ generation, digest: 'sha256:d', outcome, reason: 'need_full: holds nothing' });
  it('the minion stays owed the generation (its ack deadline stands), holds no refusal, and is behind', () => {
    const t = new MinionTracker({ ackTimeoutMs: 30_000, initialMs: 1000, maxMs: 60_000 }, () => now.t);
    t.started('prod', 7, ['m1']);
    now.t = 1000;
    assert.equal(t.result('prod', 'm1', credit(7, { kind: 'need_full' })), 'need-full');
    const row = t.snapshot()[0]!;
    assert.equal(row.lastResult, 'pending');
    assert.equal(row.refusal, undefined);
    assert.equal(row.retryAt, 30_000, 'the deadline set when the job started');
    assert.equal(t.refuses('prod', 'm1', 7), false);
    assert.deepEqual(t.behind('prod', 7), ['m1']);
    now.t = 30_000;
    assert.deepEqual(t.due('prod'), ['m1'], 'no answer to the full list either: re-sent like a silent minion');
    assert.equal(t.result('prod', 'm1', { ...credit(7, { kind: 'applied' }), reason: 'applied' }), 'ok');
    assert.deepEqual(t.behind('prod', 7), []);
  });
  it('a need_full for a generation already applied is late (nothing changes)', () => {
    const t = new MinionTracker({ ackTimeoutMs: 30_000, initialMs: 1000, maxMs: 60_000 }, () => now.t);
    t.started('prod', 7, ['m1']);
    t.result('prod', 'm1', { ...credit(7, { kind: 'applied' }), reason: 'applied' });
    assert.equal(t.result('prod', 'm1', credit(7, { kind: 'need_full' })), 'late');
    assert.equal(t.snapshot()[0]!.lastResult, 'applied');
  });
});

describe('judgeNeedFull and NeedFullRounds (full re-sends a delta asked for)', () => {
  const j: Parameters<typeof judgeNeedFull>[0] = { generation: 7, published: 7, sentFor: undefined, queuedFor: undefined, queueFull: false };
  const table: Array<[string, Partial<typeof j>, string]> = [
    ['the last published generation, first ask: queued', {}, 'queued'],
    ['already re-sent for this generation: once', { sentFor: 7 }, 'once'],
    ['re-sent for an older generation: queued', { sentFor: 6 }, 'queued'],
    ['already waiting: waiting', { queuedFor: 7 }, 'waiting'],
    ['an older generation than the last published: late', { generation: 6 }, 'late'],
    ['a generation this bridge did not publish: late', { generation: 8 }, 'late'],
    ['nothing published in this process: late', { published: undefined }, 'late'],
    ['the queue is full', { queueFull: true }, 'full'],
  ];
  for (const [name, patch, want] of table) it(name, () => assert.equal(judgeNeedFull({ ...j, ...patch }), want));

  it('answers within 200 ms share a round; once per minion and generation; a newer generation is asked for anew', () => {
    let t = 0;
    const r = new NeedFullRounds(NEED_FULL_LIMITS, () => t);
    assert.equal(r.note('prod', 'm2', 7, 7), 'queued');
    t = 150;
    assert.equal(r.note('prod', 'm1', 7, 7), 'queued');
    assert.equal(r.note('prod', 'm1', 7, 7), 'waiting');
    assert.equal(r.dueAt, 200);
    assert.deepEqual(r.take(), [], 'not due yet');
    t = 200;
    assert.deepEqual(r.take(), [
      {
        cluster: 'prod',
        minions: [
          { minion: 'm1', generation: 7 },
          { minion: 'm2', generation: 7 },
        ],
      },
    ]);
    assert.equal(r.dueAt, undefined);
    assert.equal(r.note('prod', 'm1', 7, 7), 'once', 'a repeated or forged need_full costs nothing more');
    assert.equal(r.note('prod', 'm1', 8, 8), 'queued');
    assert.equal(r.note('edge', 'm1', 8, 8), 'queued', 'per cluster');
    t = 400;
    assert.deepEqual(
      r.take().map((x) => [x.cluster, x.minions.length]),
      [
        ['prod', 1],
        ['edge', 1],
      ],
    );
  });

  it('a round names at most 1,000 ids per cluster; the rest follow 200 ms later; at most 10,000 wait', () => {
    let t = 0;
    const r = new NeedFullRounds(NEED_FULL_LIMITS, () => t);
    const verdicts = Array.from({ length: 10_005 }, (_, i) => r.note('prod', `m${i}`, 7, 7));
    assert.equal(verdicts.filter((v) => v === 'queued').length, 10_000);
    assert.equal(verdicts.filter((v) => v === 'full').length, 5);
    let rounds = 0;
    let ids = 0;
    while (r.dueAt !== undefined) {
      t = r.dueAt;
      const round = r.take();
      rounds += 1;
      assert.ok(round[0]!.minions.length <= NEED_FULL_LIMITS.maxPerRound);
      ids += round[0]!.minions.length;
    }
    assert.equal(rounds, 10);
    assert.equal(ids, 10_000);
    assert.equal(t, 2000, 'one round per 200 ms');
  });
});

describe('StartRounds (bounded start re-sends)', () => {
  const setup = (o = START_LIMITS) => {
    const clock = { now: T };
    return { clock, r: new StartRounds(o, () => clock.now) };
  };

  it('a lone start goes out after the coalescing window; starts together share the round', () => {
    const { clock, r } = setup();
    assert.equal(r.note('m1'), 'queued');
    assert.equal(r.dueAt, T + 200);
    clock.now += 100;
    assert.equal(r.note('m2'), 'queued');
    assert.equal(r.note('m1'), 'waiting');
    assert.equal(r.dueAt, T + 200, 'a later start does not postpone the round');
    assert.deepEqual(r.take(), [], 'not due yet');
    clock.now = T + 200;
    assert.deepEqual(r.take(), ['m1', 'm2']);
    assert.equal(r.dueAt, undefined);
  });

  it('at most one start re-send per minion per 30 s: a storm of one id costs one event', () => {
    const { clock, r } = setup();
    r.note('m1');
    clock.now += 200;
    assert.deepEqual(r.take(), ['m1']);
    let recent = 0;
    for (let i = 0; i < 299; i++) {
      clock.now += 100;
      if (r.note('m1') === 'recent') recent++;
    }
    assert.equal(recent, 299, 'every start within 30 s of the re-send is dropped');
    assert.equal(r.dueAt, undefined);
    clock.now = T + 200 + 30_000;
    assert.equal(r.note('m1'), 'queued', '30 s later it is re-sent again');
  });

  it('rounds are at least 5 s apart and name at most 1,000 ids; the rest wait in order', () => {
    const { clock, r } = setup();
    const ids = Array.from({ length: 2_500 }, (_, i) => `m-${String(i).padStart(4, '0')}`);
    for (const id of ids) assert.equal(r.note(id), 'queued');
    const rounds: Array<{ at: number; ids: string[] }> = [];
    for (let t = 0; t <= 20_000; t += 100) {
      clock.now = T + t;
      const got = r.take();
      if (got.length) rounds.push({ at: t, ids: got });
    }
    assert.deepEqual(
      rounds.map((x) => [x.at, x.ids.length]),
      [
        [200, 1000],
        [5200, 1000],
        [10_200, 500],
      ],
    );
    assert.deepEqual(
      rounds.flatMap((x) => x.ids),
      ids,
      'first come, first served, each once',
    );
    clock.now = T + 11_000; // 0.8 s after the last round
    r.note('late');
    assert.equal(r.dueAt, T + 10_200 + 5000, 'a start right after a round waits for the spacing');
  });

  it('a global cap: at most maxQueued ids wait; beyond that starts are dropped', () => {
    const { r } = setup({ ...START_LIMITS, maxQueued: 3 });
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((m) => r.note(m)),
      ['queued', 'queued', 'queued', 'full'],
    );
    assert.equal(r.waiting, 3);
  });

  it('under any storm: at most one round per 5 s and 1,000 ids per round', () => {
    const { clock, r } = setup();
    let n = 0;
    const rounds: number[] = [];
    for (let t = 0; t < 60_000; t += 10) {
      clock.now = T + t;
      for (let k = 0; k < 5; k++) r.note(`s${n++ % 20_000}`); // fresh and repeated ids, 500 starts/s
      const got = r.take();
      if (got.length) {
        assert.ok(got.length <= 1000);
        rounds.push(t);
      }
    }
    for (let i = 1; i < rounds.length; i++) assert.ok(rounds[i]! - rounds[i - 1]! >= 5000, `rounds ${rounds[i - 1]} and ${rounds[i]}`);
    assert.ok(rounds.length <= 12, `${rounds.length} rounds in a minute`);
  });
});

describe('noteDrop (rate limit of ignored-event lines)', () => {
  it('first logged, then suppressed until the interval passed, then logged with the count', () => {
    let s = noteDrop(undefined, 0, 60_000);
    assert.deepEqual([s.log, s.suppressed], [true, 0]);
    for (let i = 1; i <= 5; i++) {
      s = noteDrop(s.next, i * 1000, 60_000);
      assert.equal(s.log, false);
    }
    s = noteDrop(s.next, 60_000, 60_000);
    assert.deepEqual([s.log, s.suppressed], [true, 5]);
    s = noteDrop(s.next, 60_001, 60_000);
    assert.equal(s.log, false);
  });
});

describe("a publish's job on a lossy stream (awaitJob, jobEndsWait, judgeJobWait)", () => {
  const open = { lossyStreamOpen: true, active: true, lastGeneration: 7 };
  it('waits one ack timeout more for each re-fire of the same generation, from 0 for a new one', () => {
    const first = awaitJob(undefined, 7, 1000, 30_000);
    assert.deepEqual(first, { generation: 7, due: 31_000, refires: 0 });
    assert.deepEqual(awaitJob({ ...first, refires: 2 }, 7, 50_000, 30_000), { generation: 7, due: 140_000, refires: 2 });
    assert.deepEqual(awaitJob({ ...first, refires: 2 }, 8, 50_000, 30_000), { generation: 8, due: 80_000, refires: 0 });
  });
  it('a verified job of that generation or a newer one ends the wait; an older one does not', () => {
    const w = awaitJob(undefined, 7, 0, 30_000);
    assert.equal(jobEndsWait(w, 7), true);
    assert.equal(jobEndsWait(w, 9), true);
    assert.equal(jobEndsWait(w, 6), false);
    assert.equal(jobEndsWait(undefined, 7), false);
  });
  it('overdue on an open lossy stream: re-fire, MAX_JOB_REFIRES times, then give up', () => {
    const w = awaitJob(undefined, 7, 0, 30_000);
    assert.equal(judgeJobWait(w, 29_999, open), 'wait');
    assert.equal(judgeJobWait(w, 30_000, open), 'refire');
    assert.equal(judgeJobWait({ ...w, refires: MAX_JOB_REFIRES - 1 }, 30_000, open), 'refire');
    assert.equal(judgeJobWait({ ...w, refires: MAX_JOB_REFIRES }, 30_000, open), 'give-up');
  });
  it('nothing to do when the stream is closed or not lossy, the bridge is not publishing, or a newer publish went out', () => {
    const w = awaitJob(undefined, 7, 0, 30_000);
    assert.equal(judgeJobWait(w, 40_000, { ...open, lossyStreamOpen: false }), 'drop');
    assert.equal(judgeJobWait(w, 40_000, { ...open, active: false }), 'drop');
    assert.equal(judgeJobWait(w, 40_000, { ...open, lastGeneration: 8 }), 'drop');
  });
});

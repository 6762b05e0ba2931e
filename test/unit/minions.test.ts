// The bookkeeping behind what the bridge believes from the bus: decision tables for jobs, returns
// and the generation floor, the re-send split, and the bounds of the job book and the tracker.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  JobBook, MinionTracker, MAX_HINT_IDS, MAX_JOBS, REQUEST_OVERHEAD_BYTES,
  judgeFloor, judgeJob, judgeReturn, resendEvents, type Job,
} from '../../src/controller/minions.ts';
import { noteDrop } from '../../src/controller/cluster.ts';
import { buildPayload, payloadBytes, SALT_API_MAX_BODY_BYTES } from '../../src/plan/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('minions unit tests');
const T = Date.parse('2026-11-22T10:00:00Z');

function payload(ipv4: string[], generation = T): AllowListPayload {
  return buildPayload({
    cluster: 'prod', generation, list: { ipv4, ipv6: [] }, nodes: ipv4.length, issuedAtMs: T,
    diff: { added: [], removed: [], added_truncated: false, removed_truncated: false, addedCount: 0, removedCount: 0 },
  }, KEYS.signer);
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
    ['a targeted minion of a remembered job: the job\'s generation and digest', j, 'm1', { credit: true, cluster: 'prod', generation: 42, digest: 'sha256:d' }],
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
    assert.deepEqual(events.map((e) => e.minions!.length), [MAX_HINT_IDS, MAX_HINT_IDS, 1]);
    assert.deepEqual(events.flatMap((e) => e.minions!).sort(), [...ids].sort());
  });

  it('split so that every request stays under the byte limit', () => {
    const big = payload(Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    const ids = Array.from({ length: 3000 }, (_, i) => `${'n'.repeat(120)}-${String(i).padStart(4, '0')}`);
    const limit = payloadBytes(big) + REQUEST_OVERHEAD_BYTES + 100_000; // room for ~770 long ids
    const events = resendEvents(big, ids, limit);
    assert.ok(events.length >= 4, `${events.length} events`);
    for (const e of events) assert.ok(payloadBytes(e) + REQUEST_OVERHEAD_BYTES <= limit, `${payloadBytes(e)} bytes`);
    assert.deepEqual(events.flatMap((e) => e.minions!), [...ids].sort());
  });

  it('under the real limit, a 5,000-node payload still goes out with a full hint of 1,000 ids', () => {
    const big = payload(Array.from({ length: 5_000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`));
    const ids = Array.from({ length: 1000 }, (_, i) => `${'m'.repeat(120)}${i}`);
    const events = resendEvents(big, ids);
    assert.equal(events.length, 1);
    assert.ok(payloadBytes(events[0]!) < SALT_API_MAX_BODY_BYTES);
  });

  it('when not one id fits beside the payload, one event without a hint (the cluster\'s whole target)', () => {
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
    b.remember(job('1', Array.from({ length: 12_000 }, (_, i) => `m${i}`)));
    assert.equal(b.get('1')!.minions.size, 10_000);
  });
});

describe('MinionTracker', () => {
  const opts = { ackTimeoutMs: 1000, initialMs: 100, maxMs: 1000 };

  it('is bounded per cluster: the least recently seen minion goes first', () => {
    let now = T;
    const t = new MinionTracker({ ...opts, maxPerCluster: 3 }, () => now, () => 0.5);
    t.started('prod', 5, ['a', 'b', 'c']);
    now += 1;
    t.result('prod', 'a', { generation: 5, digest: 'd', ok: true, changed: true, reason: 'applied' }); // a seen again
    t.started('prod', 6, ['d']);
    assert.deepEqual(t.snapshot().map((m) => m.minion), ['a', 'c', 'd']);
    t.started('other', 6, ['x', 'y', 'z']);
    assert.equal(t.size('prod'), 3, 'each cluster has its own bound');
    assert.equal(t.size('other'), 3);
  });

  it('default bound: 10,000 minions per cluster', () => {
    const t = new MinionTracker(opts, () => T);
    t.started('prod', 5, Array.from({ length: 25_000 }, (_, i) => `m${i}`));
    assert.equal(t.size('prod'), 10_000);
    assert.ok(t.snapshot().every((m) => Number(m.minion.slice(1)) >= 15_000), 'the newest are kept');
  });

  it('credits what it is told (the job\'s generation), never lowers it, and owes re-sends to the silent', () => {
    let now = T;
    const t = new MinionTracker(opts, () => now, () => 0.5);
    t.started('prod', 5, ['a', 'b']);
    t.result('prod', 'a', { generation: 5, digest: 'd5', ok: true, changed: true, reason: 'applied' });
    t.result('prod', 'a', { generation: 4, digest: 'd4', ok: true, changed: false, reason: 'current' });
    assert.equal(t.snapshot()[0]!.appliedGeneration, 5);
    assert.deepEqual(t.behind('prod', 5), ['b']);
    now += 1000;
    assert.deepEqual(t.due('prod'), ['b']);
    assert.deepEqual(t.due('prod'), [], 'pushed back');
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

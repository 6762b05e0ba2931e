// LeaderDecider: pure decisions with explicit time (client-go leaderelection semantics).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderDecider, validateTiming, type LeaseRecord, type ObservedLease } from '../../src/leader/decide.ts';
import { ConfigError } from '../../src/errors.ts';

const timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function lease(holder: string, rv: string, over: Partial<LeaseRecord> = {}): ObservedLease {
  return {
    resourceVersion: rv,
    record: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      acquireTime: '2020-01-01T00:00:00.000000Z',
      renewTime: '2020-01-01T00:00:00.000000Z',
      leaseTransitions: 3,
      ...over,
    },
  };
}

/** Writes succeed: what the server would echo back with a new resourceVersion. */
function written(d: ReturnType<LeaderDecider['decide']>, rv: string): ObservedLease {
  assert.notEqual(d.action, 'wait');
  if (d.action === 'wait') throw new Error();
  return { resourceVersion: rv, record: d.record };
}

test('timing must satisfy leaseDuration > renewDeadline > 1.2 × retryPeriod', () => {
  validateTiming(timing);
  const cases: Array<[typeof timing, string]> = [
    [{ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'leaderElection.leaseDuration'],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }, 'leaderElection.renewDeadline'],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 }, 'leaderElection.retryPeriod'],
    [{ leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'leaderElection.leaseDuration'],
  ];
  for (const [t, field] of cases) {
    assert.throws(
      () => validateTiming(t),
      (e: unknown) => e instanceof ConfigError && e.field === field,
      field,
    );
  }
  assert.throws(() => new LeaderDecider('', timing), ConfigError);
});

test('absent lease → create with us as holder', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(null, 1_000);
  const dec = d.decide(1_000);
  assert.equal(dec.action, 'create');
  assert.deepEqual(dec.action === 'create' && dec.record, {
    holderIdentity: 'me',
    leaseDurationSeconds: 15,
    acquireTime: '1970-01-01T00:00:01.000000Z',
    renewTime: '1970-01-01T00:00:01.000000Z',
    leaseTransitions: 0,
  });
  assert.equal(d.succeeded(written(dec, '1'), 1_000, 1_010), 'started');
  assert.equal(d.isLeader, true);
});

test('empty holder (released) → acquire at once, transitions + 1', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(lease('', '7', { leaseDurationSeconds: 1 }), 0);
  const dec = d.decide(0);
  assert.equal(dec.action, 'update');
  if (dec.action !== 'update') return;
  assert.equal(dec.resourceVersion, '7');
  assert.equal(dec.record.holderIdentity, 'me');
  assert.equal(dec.record.leaseTransitions, 4);
});

test("another holder is respected until the LOCALLY observed expiry, whatever the record's timestamps say", () => {
  const d = new LeaderDecider('me', timing);
  // renewTime far in the past (skewed clock on the other host): must not matter
  d.observe(lease('other', '5', { renewTime: '1999-01-01T00:00:00.000000Z' }), 100_000);
  assert.deepEqual(d.decide(100_000), { action: 'wait', holder: 'other', expiresAt: 115_000 });
  // the same record seen again later does not extend the lease
  d.observe(lease('other', '5', { renewTime: '1999-01-01T00:00:00.000000Z' }), 110_000);
  assert.equal(d.decide(114_999).action, 'wait');
  // the holder renewed (record changed): the local clock restarts
  d.observe(lease('other', '6', { renewTime: '1999-01-01T00:00:02.000000Z' }), 114_000);
  assert.deepEqual(d.decide(128_999), { action: 'wait', holder: 'other', expiresAt: 129_000 });
  // it stops renewing: expired by local observation → take over
  d.observe(lease('other', '6', { renewTime: '1999-01-01T00:00:02.000000Z' }), 129_000);
  const dec = d.decide(129_000);
  assert.equal(dec.action, 'update');
  if (dec.action !== 'update') return;
  assert.equal(dec.resourceVersion, '6');
  assert.equal(dec.record.holderIdentity, 'me');
  assert.equal(dec.record.leaseTransitions, 4);
  assert.equal(dec.record.acquireTime, new Date(129_000).toISOString().replace('Z', '000Z'));
});

test("the holder's own leaseDurationSeconds decides its expiry", () => {
  const d = new LeaderDecider('me', timing);
  d.observe(lease('other', '5', { leaseDurationSeconds: 60 }), 0);
  assert.equal(d.decide(59_999).action, 'wait');
  assert.equal(d.decide(60_000).action, 'update');
});

test('renew keeps acquireTime and transitions, moves renewTime', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(null, 0);
  assert.equal(d.succeeded(written(d.decide(0), '1'), 0, 5), 'started');
  const r = d.decide(2_000); // fast path: no observe needed while leading
  assert.equal(r.action, 'update');
  if (r.action !== 'update') return;
  assert.equal(r.resourceVersion, '1');
  assert.equal(r.record.acquireTime, '1970-01-01T00:00:00.000000Z');
  assert.equal(r.record.renewTime, '1970-01-01T00:00:02.000000Z');
  assert.equal(r.record.leaseTransitions, 0);
  assert.equal(d.succeeded(written(r, '2'), 2_000, 2_010), null, 'renewal is not a transition');
  assert.equal(d.stepDownAt, 12_000);
});

test('a leader loses leadership only once renewals failed for renewDeadline', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(null, 0);
  d.succeeded(written(d.decide(0), '1'), 0, 0);
  d.succeeded(written(d.decide(2_000), '2'), 2_000, 2_000);
  assert.equal(d.failed(4_000), null);
  assert.equal(d.failed(8_000), null);
  assert.equal(d.tick(11_999), null);
  assert.equal(d.isLeader, true);
  assert.equal(d.failed(12_000), 'stopped', 'last renewal was sent at 2 s; deadline 10 s');
  assert.equal(d.isLeader, false);
  assert.equal(d.failed(14_000), null, 'stopped only once');
  // The lease is still ours by record: we may re-acquire when it is still ours (no one took it)
  const again = d.decide(14_000);
  assert.equal(again.action, 'update');
});

test('the step-down deadline counts from when the renewal was sent, not when it returned', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(null, 0);
  d.succeeded(written(d.decide(0), '1'), 0, 9_000); // slow request
  assert.equal(d.stepDownAt, 10_000);
  assert.equal(d.failed(10_000), 'stopped');
});

test('a leader that sees another holder steps down (the elector does this on a wait decision)', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(null, 0);
  d.succeeded(written(d.decide(0), '1'), 0, 0);
  d.observe(lease('other', '9'), 3_000);
  assert.equal(d.decide(3_000).action, 'wait');
  assert.equal(d.stepDown(), 'stopped');
  assert.equal(d.stepDown(), null);
});

test('a non-leader failing changes nothing', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(lease('other', '1'), 0);
  assert.equal(d.failed(1_000_000), null);
  assert.equal(d.isLeader, false);
});

test('release clears the holder with a 1 s duration and keeps transitions; nothing to release if not ours', () => {
  const d = new LeaderDecider('me', timing);
  d.observe(lease('me', '4', { leaseTransitions: 7 }), 0);
  d.succeeded(written(d.decide(0), '5'), 0, 0);
  d.stepDown();
  const rel = d.release(3_000);
  assert.deepEqual(rel, {
    action: 'update',
    resourceVersion: '5',
    record: {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: '1970-01-01T00:00:03.000000Z',
      renewTime: '1970-01-01T00:00:03.000000Z',
      leaseTransitions: 7,
    },
  });
  const other = new LeaderDecider('me', timing);
  other.observe(lease('someone', '1'), 0);
  assert.equal(other.release(0), null);
  assert.equal(new LeaderDecider('me', timing).release(0), null);
});

test('two candidates: only one acquires an absent lease (the create race is settled by the server)', () => {
  const a = new LeaderDecider('a', timing);
  const b = new LeaderDecider('b', timing);
  a.observe(null, 0);
  b.observe(null, 0);
  const da = a.decide(0);
  const db = b.decide(0);
  assert.equal(da.action, 'create');
  assert.equal(db.action, 'create');
  // server accepts a, answers 409 to b
  a.succeeded(written(da, '1'), 0, 0);
  assert.equal(b.failed(0), null);
  b.observe(written(da, '1'), 2_000);
  assert.equal(b.decide(2_000).action, 'wait');
  assert.equal(b.isLeader, false);
  assert.equal(a.isLeader, true);
});

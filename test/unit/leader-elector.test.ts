// LeaderElector loop with an in-memory Lease store (optimistic concurrency) and a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderElector } from '../../src/leader/elector.ts';
import type { LeaseLock } from '../../src/leader/leaseLock.ts';
import type { LeaseRecord, ObservedLease } from '../../src/leader/decide.ts';
import { KubeUnreachableError, LeaseConflictError } from '../../src/kube/errors.ts';
import { FakeClock } from '../fakes/clock.ts';

class Store {
  lease: ObservedLease | null = null;
  rv = 0;
  writes: LeaseRecord[] = [];
}

class MemLock implements LeaseLock {
  down = false;
  hang = false;
  private readonly store: Store;
  constructor(store: Store) {
    this.store = store;
  }
  describe() {
    return 'kube-system/ksb';
  }
  private async gate(): Promise<void> {
    if (this.hang) await new Promise(() => {});
    if (this.down) throw new KubeUnreachableError('lease: ECONNREFUSED');
  }
  async get() {
    await this.gate();
    return this.store.lease ? structuredClone(this.store.lease) : null;
  }
  async create(record: LeaseRecord) {
    await this.gate();
    if (this.store.lease) throw new LeaseConflictError('create lease: HTTP 409');
    return this.write(record);
  }
  async update(record: LeaseRecord, rv: string) {
    await this.gate();
    if (!this.store.lease || this.store.lease.resourceVersion !== rv) throw new LeaseConflictError('update lease: HTTP 409');
    return this.write(record);
  }
  private write(record: LeaseRecord): ObservedLease {
    this.store.writes.push(structuredClone(record));
    this.store.lease = { record: structuredClone(record), resourceVersion: String(++this.store.rv) };
    return structuredClone(this.store.lease);
  }
}

function candidate(id: string, store: Store, clock: FakeClock) {
  const lock = new MemLock(store);
  const events: string[] = [];
  const el = new LeaderElector({
    lock,
    identity: id,
    timing: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
    clock,
    random: () => 0,
    onStartedLeading: () => events.push(`start@${clock.now()}`),
    onStoppedLeading: () => events.push(`stop@${clock.now()}`),
  });
  return { el, lock, events };
}

/** Two candidates on one store; `a` starts first (and so leads), `b` right after. */
async function twoCandidates() {
  const clock = new FakeClock(0);
  const store = new Store();
  const a = candidate('a', store, clock);
  const b = candidate('b', store, clock);
  a.el.start();
  await clock.advance(0);
  b.el.start();
  return { clock, store, a, b };
}

test('one of two candidates leads; the other waits; renewals keep it', async () => {
  const { clock, store, a, b } = await twoCandidates();
  await clock.advance(60_000);
  assert.equal(a.el.isLeader, true);
  assert.equal(b.el.isLeader, false);
  assert.deepEqual(a.events, ['start@0']);
  assert.deepEqual(b.events, []);
  assert.equal(store.lease?.record.holderIdentity, 'a');
  assert.ok(store.writes.length >= 30, 'renewed every 2 s');
  assert.equal(store.lease?.record.leaseTransitions, 0);
  await a.el.stop();
  await b.el.stop();
});

test('stop releases: onStoppedLeading first, holder cleared, the peer takes over within a retry period', async () => {
  const { clock, store, a, b } = await twoCandidates();
  await clock.advance(10_000);
  const t0 = clock.now();
  await a.el.stop();
  assert.deepEqual(a.events, ['start@0', `stop@${t0}`]);
  assert.equal(store.lease?.record.holderIdentity, '');
  assert.equal(store.lease?.record.leaseDurationSeconds, 1);
  await clock.advance(2_000);
  assert.equal(b.el.isLeader, true, 'no need to wait for the 15 s lease');
  assert.equal(store.lease?.record.leaseTransitions, 1);
  await b.el.stop();
});

test('a crashed leader (no release) is replaced after leaseDuration of local observation', async () => {
  const { clock, a, b } = await twoCandidates();
  await clock.advance(4_000);
  a.lock.hang = true; // a's requests never return: as good as dead for the store
  const crashedAt = clock.now();
  await clock.advance(14_000);
  assert.equal(b.el.isLeader, false, 'lease not yet expired by b’s observation');
  await clock.advance(6_000);
  assert.equal(b.el.isLeader, true);
  // a stepped down by its own deadline, before b could take over
  const aStop = Number(a.events[1]?.split('@')[1]);
  assert.ok(aStop <= crashedAt + 10_000, `a stopped at ${aStop}`);
  const bStart = Number(b.events[0]?.split('@')[1]);
  assert.ok(aStop < bStart, 'never two leaders');
});

test('renewal failures: leadership lost after renewDeadline, regained when the API is back', async () => {
  const clock = new FakeClock(0);
  const store = new Store();
  const a = candidate('a', store, clock);
  a.el.start();
  await clock.advance(1_000);
  assert.equal(a.el.isLeader, true);
  a.lock.down = true;
  await clock.advance(8_500); // t = 9.5 s; last successful write was sent at 0
  assert.equal(a.el.isLeader, true, 'still within renewDeadline');
  await clock.advance(500);
  assert.equal(a.el.isLeader, false, 'deadline 0 + 10 s');
  assert.equal(a.events[1], 'stop@10000');
  assert.equal(a.events.length, 2);
  a.lock.down = false;
  await clock.advance(4_000);
  assert.equal(a.el.isLeader, true, 'the lease was still ours: renewed');
  assert.equal(store.lease?.record.leaseTransitions, 0);
  await a.el.stop();
});

test('a leader that finds someone else holding the lease steps down at once', async () => {
  const clock = new FakeClock(0);
  const store = new Store();
  const a = candidate('a', store, clock);
  a.el.start();
  await clock.advance(1_000);
  // someone else overwrote the lease (e.g. an operator, or a split brain healed)
  store.lease = {
    record: { holderIdentity: 'x', leaseDurationSeconds: 15, acquireTime: null, renewTime: null, leaseTransitions: 5 },
    resourceVersion: String(++store.rv),
  };
  await clock.advance(2_000); // renewal from memory → 409 → next attempt GETs
  await clock.advance(2_000);
  assert.equal(a.el.isLeader, false);
  assert.equal(a.el.stats().holder, 'x');
  assert.ok(a.el.stats().conflicts >= 1);
  await a.el.stop();
  assert.equal(store.lease?.record.holderIdentity, 'x', 'not ours: not released');
});

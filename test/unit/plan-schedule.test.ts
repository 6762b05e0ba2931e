import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dueIn, initialSchedule, runFinished, runStarted, scheduleRun, type ScheduleState } from '../../src/plan/index.ts';

const o = { minIntervalMs: 500, maxDelayMs: 2000 };

const state = (s: Partial<ScheduleState>): ScheduleState => ({ ...initialSchedule, ...s });

interface Run {
  start: number;
  end: number;
  published: boolean;
  /** Times of the changes this run was the first to cover. */
  covers: number[];
}

/**
 * Drives the schedule the way the controller does, on a fake clock with 1 ms ticks: each change
 * calls scheduleRun; when the one timer is due a run starts (runStarted), lasts `runMs` and ends
 * with runFinished. A run publishes when it covers a change that alters the list (`quietChanges`
 * lists the ones that do not, like a heartbeat that slipped through).
 */
function simulate(changes: number[], until: number, opt: { runMs?: number; quietChanges?: number[] } = {}): Run[] {
  const runMs = opt.runMs ?? 0;
  const quiet = new Set(opt.quietChanges ?? []);
  const queue = [...changes].sort((a, b) => a - b);
  let s: ScheduleState = initialSchedule;
  const runs: Run[] = [];
  let seen: number[] = [];
  let current: Run | undefined;
  for (let now = 0; now <= until; now += 1) {
    while (queue.length > 0 && queue[0]! <= now) {
      seen.push(queue.shift()!);
      s = scheduleRun(s, now, o);
    }
    for (let pass = 0; pass < 2; pass += 1) {
      if (current && current.end === now) {
        s = runFinished(s, now, current.published, o);
        current = undefined;
      }
      if (!current && dueIn(s, now) === 0) {
        s = runStarted(s, now);
        current = { start: now, end: now + runMs, published: seen.some((t) => !quiet.has(t)), covers: seen };
        runs.push(current);
        seen = [];
      }
    }
  }
  assert.equal(queue.length, 0, 'the simulation ran past every change');
  return runs;
}

/** The invariants every schedule must keep, checked on a simulated history. */
function assertInvariants(runs: Run[], changes: number[]): void {
  const published = runs.filter((r) => r.published);
  for (let i = 1; i < published.length; i += 1) {
    assert.ok(
      published[i]!.end - published[i - 1]!.end >= o.minIntervalMs,
      `publishes at ${published[i - 1]!.end} and ${published[i]!.end} are less than minInterval apart`,
    );
  }
  for (const t of changes) {
    const run = runs.find((r) => r.covers.includes(t));
    assert.ok(run, `the change at ${t} is covered by a run`);
    assert.ok(run.start - t <= o.maxDelayMs, `the change at ${t} waited ${run.start - t} ms (> maxDelay)`);
  }
  for (let i = 1; i < runs.length; i += 1) assert.ok(runs[i]!.start >= runs[i - 1]!.end, 'runs never overlap');
}

describe('schedule decision table', () => {
  const cases: Array<{ name: string; state: ScheduleState; now: number; due: number | undefined }> = [
    { name: 'the first change ever is due at once (leading edge)', state: initialSchedule, now: 1000, due: 1000 },
    { name: 'the first change after a quiet spell is due at once', state: state({ lastPublishAt: 0 }), now: 10_000, due: 10_000 },
    { name: 'exactly minInterval after the last publish: at once', state: state({ lastPublishAt: 1000 }), now: 1500, due: 1500 },
    { name: 'soon after a publish: when minInterval has passed since it', state: state({ lastPublishAt: 1000 }), now: 1001, due: 1500 },
    { name: 'a second change before the due timer fires (due now) keeps it', state: state({ pendingSince: 1000, dueAt: 1000 }), now: 1000, due: 1000 },
    {
      name: 'a second change before the due timer fires (due later) keeps it',
      state: state({ lastPublishAt: 1000, pendingSince: 1200, dueAt: 1500 }),
      now: 1400,
      due: 1500,
    },
    { name: 'a change after the due time passed (timer late) keeps the due time', state: state({ pendingSince: 1000, dueAt: 1000 }), now: 1300, due: 1000 },
    { name: 'a change during a run is not due before the run finishes', state: state({ running: true }), now: 1000, due: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(scheduleRun(c.state, c.now, o).dueAt, c.due));
  }

  it('a change remembers when the first pending change was seen, not the latest', () => {
    let s = scheduleRun(state({ lastPublishAt: 1000 }), 1100, o);
    s = scheduleRun(s, 1300, o);
    assert.equal(s.pendingSince, 1100);
    s = scheduleRun(state({ running: true }), 1100, o);
    s = scheduleRun(s, 1300, o);
    assert.equal(s.pendingSince, 1100);
  });

  it('a run covers every change seen before it started, whatever started it', () => {
    const s = runStarted(state({ lastPublishAt: 0, pendingSince: 700, dueAt: 700 }), 650);
    assert.deepEqual(s, { lastPublishAt: 0, pendingSince: undefined, dueAt: undefined, running: true });
    assert.equal(dueIn(s, 700), undefined);
  });

  const finished: Array<{ name: string; state: ScheduleState; now: number; published: boolean; due: number | undefined; lastPublishAt: number | undefined }> = [
    {
      name: 'a run that published, nothing pending: nothing due',
      state: state({ running: true }),
      now: 1000,
      published: true,
      due: undefined,
      lastPublishAt: 1000,
    },
    {
      name: 'change during a run that published: minInterval after its end',
      state: state({ running: true, pendingSince: 1010 }),
      now: 1020,
      published: true,
      due: 1520,
      lastPublishAt: 1020,
    },
    {
      name: 'change during a run that published nothing: at once',
      state: state({ running: true, lastPublishAt: 0, pendingSince: 1010 }),
      now: 1020,
      published: false,
      due: 1020,
      lastPublishAt: 0,
    },
    {
      name: 'run that published nothing keeps the earlier spacing',
      state: state({ running: true, lastPublishAt: 900, pendingSince: 1010 }),
      now: 1020,
      published: false,
      due: 1400,
      lastPublishAt: 900,
    },
    {
      name: 'slow run: the spacing never holds a change past maxDelay',
      state: state({ running: true, pendingSince: 100 }),
      now: 1900,
      published: true,
      due: 2100,
      lastPublishAt: 1900,
    },
    {
      name: 'run slower than maxDelay: the pending change runs at once',
      state: state({ running: true, pendingSince: 100 }),
      now: 3000,
      published: true,
      due: 3000,
      lastPublishAt: 3000,
    },
  ];
  for (const c of finished) {
    it(`runFinished: ${c.name}`, () => {
      const s = runFinished(c.state, c.now, c.published, o);
      assert.equal(s.dueAt, c.due);
      assert.equal(s.lastPublishAt, c.lastPublishAt);
      assert.equal(s.running, false);
      assert.equal(s.pendingSince, c.state.pendingSince);
    });
  }

  it('no change → nothing due (idempotency)', () => {
    assert.equal(dueIn(initialSchedule, 0), undefined);
    assert.equal(dueIn(runFinished(runStarted(initialSchedule, 5), 6, true, o), 10_000), undefined);
    assert.deepEqual(simulate([], 20_000), []);
  });

  it('is pure: the input state is not changed', () => {
    const s = Object.freeze(state({ lastPublishAt: 0, pendingSince: 3, dueAt: 500 }));
    const copy = { ...s };
    scheduleRun(s, 1, o);
    runStarted(s, 1);
    runFinished(s, 1, true, o);
    assert.deepEqual(s, copy);
  });
});

describe('schedule on a fake clock', () => {
  it('a second change before the due timer fires: the first change still publishes at once', () => {
    const runs = simulate([1000, 1000, 1000.5], 5000);
    assert.equal(runs[0]!.start, 1000);
    assertInvariants(runs, [1000, 1000, 1000.5]);
  });

  it('a burst: the first change publishes at once, the rest coalesce into one more publish', () => {
    const changes = [100, 120, 130, 300];
    const runs = simulate(changes, 10_000);
    assert.deepEqual(
      runs.map((r) => r.start),
      [100, 600],
    );
    assert.deepEqual(
      runs.map((r) => r.covers),
      [[100], [120, 130, 300]],
    );
    assertInvariants(runs, changes);
  });

  it('1,000 nodes created over 2 s: the first create publishes at once, then one publish per minInterval', () => {
    const changes = Array.from({ length: 1000 }, (_, i) => 10_000 + i * 2);
    const runs = simulate(changes, 20_000);
    assert.equal(runs[0]!.start, 10_000, 'published 0 ms after the first create');
    assert.deepEqual(
      runs.map((r) => r.start),
      [10_000, 10_500, 11_000, 11_500, 12_000],
    );
    assertInvariants(runs, changes);
  });

  it('a change every 10 ms for 5 s: one immediate publish, then at most one per minInterval, none later than maxDelay', () => {
    const changes = Array.from({ length: 500 }, (_, i) => i * 10);
    const runs = simulate(changes, 8000);
    const published = runs.filter((r) => r.published);
    assert.equal(published[0]!.start, 0, 'the first change publishes at once');
    assert.equal(published.filter((r) => r.start < o.minIntervalMs).length, 1, 'exactly one immediate publish');
    assert.equal(published.length, 11, `publishes: ${published.map((r) => r.start).join(',')}`);
    assert.ok(published.at(-1)!.covers.includes(4990), 'the last change is published');
    assertInvariants(runs, changes);
  });

  it('changes during slow runs (300 ms each) wait for the run, then minInterval after it', () => {
    const changes = Array.from({ length: 300 }, (_, i) => i * 10);
    const runs = simulate(changes, 10_000, { runMs: 300 });
    assert.equal(runs[0]!.start, 0);
    assert.equal(runs[1]!.start, 800, 'the first run ends at 300; the next one starts minInterval later');
    assertInvariants(runs, changes);
  });

  it('a run that published nothing does not delay the next change', () => {
    // A node appears without addresses (nothing to publish), its addresses follow 5 ms later.
    const runs = simulate([0, 10_000, 10_005], 20_000, { quietChanges: [10_000] });
    assert.deepEqual(
      runs.map((r) => [r.start, r.published]),
      [
        [0, true],
        [10_000, false],
        [10_005, true],
      ],
    );
  });

  it('a quiet spell resets the leading edge', () => {
    const changes = [0, 100, 5000, 5010];
    const runs = simulate(changes, 10_000);
    assert.deepEqual(
      runs.map((r) => r.start),
      [0, 500, 5000, 5500],
    );
    assertInvariants(runs, changes);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dueIn, initialSchedule, runStarted, scheduleRun, type ScheduleState } from '../../src/plan/index.ts';

const o = { minIntervalMs: 500, maxDelayMs: 2000 };

/** Drives the schedule like the controller: change events at given times, runs when due. */
function simulate(changes: number[], until: number): number[] {
  let s: ScheduleState = initialSchedule;
  const runs: number[] = [];
  const queue = [...changes].sort((a, b) => a - b);
  for (let now = 0; now <= until; now += 1) {
    while (queue.length > 0 && queue[0]! <= now) {
      queue.shift();
      s = scheduleRun(s, now, o);
    }
    if (dueIn(s, now) === 0) {
      runs.push(now);
      s = runStarted(s, now);
    }
  }
  return runs;
}

describe('scheduleRun decision table', () => {
  const cases: Array<{ name: string; state: ScheduleState; now: number; next: number }> = [
    { name: 'first change after a quiet spell runs at once (leading edge)', state: initialSchedule, now: 1000, next: 1000 },
    { name: 'long after the last run: at once too', state: { lastRunAt: 0, pendingSince: undefined, nextRunAt: undefined }, now: 10_000, next: 10_000 },
    { name: 'right after a run: as soon as minInterval has passed', state: { lastRunAt: 1000, pendingSince: undefined, nextRunAt: undefined }, now: 1001, next: 1500 },
    { name: 'another change while pending pushes the run back', state: { lastRunAt: 1000, pendingSince: 1200, nextRunAt: 1700 }, now: 1300, next: 1800 },
    { name: '…but never past first pending change + maxDelay', state: { lastRunAt: 1000, pendingSince: 1200, nextRunAt: 3100 }, now: 3000, next: 3200 },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(scheduleRun(c.state, c.now, o).nextRunAt, c.next));
  }

  it('no change → nothing due (idempotency)', () => {
    assert.equal(dueIn(initialSchedule, 0), undefined);
    assert.equal(dueIn(runStarted(initialSchedule, 5), 10_000), undefined);
    assert.deepEqual(simulate([], 20_000), []);
  });

  it('a burst: the first change runs at once, the rest coalesce into one more run', () => {
    assert.deepEqual(simulate([100, 120, 130, 300], 10_000), [100, 800]);
  });

  it('no starvation: a change every 10 ms for 10 s runs every maxDelay, at least minInterval apart', () => {
    const changes = Array.from({ length: 1000 }, (_, i) => i * 10);
    const runs = simulate(changes, 12_000);
    assert.equal(runs[0], 0, 'the first change runs at once');
    assert.equal(runs[1], 2010, 'then at the first pending change + maxDelay');
    for (let i = 1; i < runs.length; i += 1) {
      assert.ok(runs[i]! - runs[i - 1]! >= o.minIntervalMs);
      assert.ok(runs[i]! - runs[i - 1]! <= o.maxDelayMs + 10);
    }
    assert.ok(runs.length >= 5, `runs: ${runs.join(',')}`);
    assert.ok(runs[runs.length - 1]! >= 9990, 'the last change is covered by a run');
  });

  it('a change while a run is in progress schedules another run', () => {
    let s = scheduleRun(initialSchedule, 0, o);
    s = runStarted(s, 500);
    s = scheduleRun(s, 510, o);
    assert.equal(s.nextRunAt, 1000);
    assert.equal(dueIn(s, 600), 400);
  });

  it('is pure: the input state is not changed', () => {
    const s = Object.freeze({ lastRunAt: 0, pendingSince: undefined, nextRunAt: undefined });
    scheduleRun(s, 1, o);
    assert.deepEqual(s, { lastRunAt: 0, pendingSince: undefined, nextRunAt: undefined });
  });
});

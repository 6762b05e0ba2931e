import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextGeneration } from '../../src/plan/index.ts';

const T = Date.parse('2026-11-22T10:00:00.000Z');

describe('nextGeneration', () => {
  const cases: Array<[string, number, number, number]> = [
    ['fresh state takes the clock floor', 0, T, T],
    ['persisted state behind the clock: clock floor', 42, T, T],
    ['two publishes in the same millisecond still increase', T, T, T + 1],
    ['persisted state ahead (clock stepped back): last + 1', T + 5000, T, T + 5001],
    ['fractional time is floored', 0, T + 0.9, T],
    ['epoch zero clock (tests): counts from 1', 0, 0, 1],
  ];
  for (const [name, last, now, expected] of cases) {
    it(name, () => assert.equal(nextGeneration(last, now), expected));
  }

  it('is strictly monotonic over a sequence, even with a jumping clock', () => {
    let last = 0;
    for (const now of [T, T, T - 10_000, T + 1, T + 1, T + 60_000, 0]) {
      const g = nextGeneration(last, now);
      assert.ok(g > last);
      last = g;
    }
  });

  it('a restart with lost state stays above the previous run', () => {
    let last = 0;
    for (let i = 0; i < 100; i += 1) last = nextGeneration(last, T + i * 500);
    // state dir lost, restarted 1 s later
    assert.ok(nextGeneration(0, T + 100 * 500 + 1000) > last);
  });

  it('refuses nonsense input', () => {
    assert.throws(() => nextGeneration(-1, T), RangeError);
    assert.throws(() => nextGeneration(1.5, T), RangeError);
    assert.throws(() => nextGeneration(0, Number.NaN), RangeError);
  });
});

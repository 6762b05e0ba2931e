import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextGeneration, raiseFloor } from '../../src/plan/index.ts';

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

  // max(last + 1, now, floor + 1): which term wins.
  const withFloor: Array<[string, number, number, number, number]> = [
    ['no floor seen (0): as without one', T - 10, T, 0, T],
    ['floor below last and clock: no effect', T + 10, T, T - 500, T + 11],
    ['floor equal to last (our own event seen back): last + 1', T + 10, T, T + 10, T + 11],
    ['HA peer with a clock 2 s ahead published after us: floor + 1', T - 100, T, T + 2000, T + 2001],
    ['state lost, peer ahead: floor + 1', 0, T, T + 60_000, T + 60_001],
    ['clock ahead of everything: now', 5, T, 7, T],
    ['all equal: + 1', T, T, T, T + 1],
  ];
  for (const [name, last, now, floor, expected] of withFloor) {
    it(`floor: ${name}`, () => assert.equal(nextGeneration(last, now, floor), expected));
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

  it("two bridges that see each other's verified events never publish the same generation twice", () => {
    // A's clock is 5 s behind B's. Each publishes alternately and sees the other's event.
    let floor = 0;
    let lastA = 0;
    let lastB = 0;
    const seen = new Set<number>();
    for (let i = 0; i < 50; i += 1) {
      const gA = nextGeneration(lastA, T + i * 10, floor);
      lastA = gA;
      floor = raiseFloor(floor, gA);
      const gB = nextGeneration(lastB, T + 5000 + i * 10, floor);
      lastB = gB;
      floor = raiseFloor(floor, gB);
      assert.ok(gB > gA && !seen.has(gA) && !seen.has(gB));
      seen.add(gA).add(gB);
    }
  });

  it('refuses nonsense input', () => {
    assert.throws(() => nextGeneration(-1, T), RangeError);
    assert.throws(() => nextGeneration(1.5, T), RangeError);
    assert.throws(() => nextGeneration(0, Number.NaN), RangeError);
    assert.throws(() => nextGeneration(0, T, -1), RangeError);
    assert.throws(() => nextGeneration(0, T, 0.5), RangeError);
    assert.throws(() => nextGeneration(0, T, Number.MAX_SAFE_INTEGER), RangeError, 'floor + 1 overflows');
  });
});

describe('raiseFloor', () => {
  const cases: Array<[string, number, number | undefined, number]> = [
    ['a higher verified generation raises it', 10, 20, 20],
    ['a lower one does not lower it', 20, 10, 20],
    ['equal: unchanged', 20, 20, 20],
    ['no generation: unchanged', 20, undefined, 20],
    ['a fraction never moves it', 20, 25.5, 20],
    ['a negative never moves it', 20, -5, 20],
    ['beyond safe integers never moves it', 20, 2 ** 60, 20],
  ];
  for (const [name, floor, seen, expected] of cases) {
    it(name, () => assert.equal(raiseFloor(floor, seen), expected));
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from '../../src/util/backoff.ts';

function fake(random = 1) {
  let now = 0;
  return {
    random: () => random,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('Backoff', () => {
  it('grows by factor and caps at maxMs (no jitter spread at random = 1)', () => {
    const f = fake(1);
    const b = new Backoff({ initialMs: 100, maxMs: 1000, resetAfterMs: 1e9, ...f });
    const delays = Array.from({ length: 7 }, () => b.next());
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
    assert.equal(b.failures, 7);
  });

  it('jitter keeps every delay within [base * (1 - jitter), base]', () => {
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const b = new Backoff({ initialMs: 1000, maxMs: 8000, jitter: 0.5, resetAfterMs: 1e9, ...fake(r) });
      let base = 1000;
      for (let i = 0; i < 6; i += 1) {
        const d = b.next();
        assert.ok(d >= base / 2 && d <= base, `attempt ${i} random ${r}: ${d} not in [${base / 2}, ${base}]`);
        base = Math.min(8000, base * 2);
      }
    }
  });

  it('random = 0 gives the lower bound', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 8000, jitter: 0.5, ...fake(0) });
    assert.equal(b.next(), 500);
  });

  it('custom factor and jitter 0', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000, factor: 3, jitter: 0, ...fake(0.3) });
    assert.deepEqual([b.next(), b.next(), b.next()], [10, 30, 90]);
  });

  it('resets after a healthy period (default 2 × maxMs)', () => {
    const f = fake(1);
    const b = new Backoff({ initialMs: 100, maxMs: 1000, ...f });
    b.next();
    b.next();
    f.advance(1999);
    assert.equal(b.next(), 400, 'failures close together keep growing');
    f.advance(2000);
    assert.equal(b.next(), 100, 'a failure after a healthy period starts over');
  });

  it('reset() starts over', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, ...fake(1) });
    b.next();
    b.next();
    b.reset();
    assert.equal(b.failures, 0);
    assert.equal(b.next(), 100);
  });

  it('never sleeps: returns a number immediately for many attempts', () => {
    const b = new Backoff({ initialMs: 1, maxMs: 30_000, ...fake(0.5) });
    for (let i = 0; i < 1000; i += 1) assert.ok(Number.isFinite(b.next()));
  });
});

// The benchmark's quick mode passes only when missingFigures finds nothing: it must find every
// figure that was not measured, wherever it sits, and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingFigures, summarize } from '../../bench/stats.ts';

test('missingFigures: a complete result has none', () => {
  assert.deepEqual(missingFigures({ plan: [{ nodes: 50, ms: summarize([1, 2]) }], label: 'x', fits: true, steps: [] }), []);
});

test('missingFigures: names each NaN, Infinity, null and undefined by its path', () => {
  const r = {
    e2e: { join: summarize([]) },
    peer: {
      sizes: [
        { nodes: 50, rss: Number.POSITIVE_INFINITY },
        { nodes: 5000, rss: null },
      ],
    },
    fanout: undefined,
  };
  assert.deepEqual(missingFigures(r), [
    'results.e2e.join.median',
    'results.e2e.join.p95',
    'results.e2e.join.max',
    'results.e2e.join.min',
    'results.peer.sizes[0].rss',
    'results.peer.sizes[1].rss',
    'results.fanout',
  ]);
});

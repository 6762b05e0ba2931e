// Rejected node addresses are reported once per node + value + reason (log and metric), with the
// value cut, through the real Controller on every re-plan; a node that is gone is forgotten.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Controller } from '../../src/controller/controller.ts';
import { noteRejections, truncate, type RejectionMemory } from '../../src/controller/rejections.ts';
import { StateStore } from '../../src/controller/stateStore.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import type { RejectedEntry } from '../../src/plan/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { unitConfig } from '../fakes/config.ts';
import { FakeNodeSource } from '../fakes/nodeSource.ts';
import { FakeSink } from '../fakes/sink.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('rejection unit tests');

const r = (node: string | undefined, value: string, reason: RejectedEntry['reason'] = 'invalid'): RejectedEntry => ({
  node,
  source: 'address',
  value,
  reason,
  detail: 'd',
});

test('noteRejections: new ones are reported once, repeats are not, vanished ones are forgotten', () => {
  const memory: RejectionMemory = new Map();
  const seen: string[] = [];
  const run = (list: RejectedEntry[]) => noteRejections(memory, list, (x) => seen.push(`${x.node}:${x.value}:${x.reason}`));
  run([r('a', 'x'), r('a', 'x'), r('b', 'y')]);
  assert.deepEqual(seen, ['a:x:invalid', 'b:y:invalid'], 'a duplicate within one run counts once');
  run([r('a', 'x'), r('b', 'y')]);
  assert.equal(seen.length, 2, 'the next run repeats nothing');
  run([r('a', 'x'), r('b', 'y', 'not-host')]);
  assert.deepEqual(seen.slice(2), ['b:y:not-host'], 'another reason for the same value is new');
  run([r('a', 'x')]);
  run([r('a', 'x'), r('b', 'y', 'not-host')]);
  assert.deepEqual(seen.slice(3), ['b:y:not-host'], 'a node gone and back is reported again');
  assert.deepEqual([...memory.keys()].sort(), ['a', 'b']);
  run([]);
  assert.equal(memory.size, 0, 'nothing is kept for nodes that are gone');
  const long1 = `${'1'.repeat(300)}a`;
  const long2 = `${'1'.repeat(300)}b`;
  run([r('c', long1), r('c', long2)]);
  assert.equal(seen.length, 6, 'two long values that share a prefix are two rejections');
});

test('truncate: 64 characters and an ellipsis', () => {
  assert.equal(truncate('x'.repeat(64)), 'x'.repeat(64));
  assert.equal(truncate('x'.repeat(5000)), `${'x'.repeat(64)}…`);
});

test('Controller: a 5,000-character address is logged once, cut, and counted once over many re-plans', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ksb-rej-'));
  const config = unitConfig(dir, KEYS.privateText, (kc) => ({
    salt: { url: 'http://127.0.0.1:8000', username: 'u', eauth: 'file' },
    clusters: [{ name: 'prod', kubeconfig: kc, families: ['ipv4'], allowedNetworks: ['10.0.0.0/8'], safety: { maxShrinkFraction: 0.9, minNodes: 1 } }],
    publish: { minIntervalMs: 100, maxDelayMs: 1000, resyncIntervalSeconds: 0, retry: { initialMs: 1000, maxMs: 10_000 } },
    state: { dir: join(dir, 'state') },
  }));
  /** A log line; `rejected` on the rejection lines. */
  type Line = Record<string, unknown> & { rejected?: { node: string; reason: string; value: string } };
  const lines: Line[] = [];
  const out = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      cb();
    },
  });
  const clock = new FakeClock();
  const source = new FakeNodeSource('prod');
  const sink = new FakeSink();
  const metrics = createMetrics(false);
  const c = new Controller({
    config,
    sources: new Map([['prod', source]]),
    sink,
    store: new StateStore(config.state.dir),
    metrics,
    log: pino({ level: 'info' }, out),
    clock,
    dryRun: false,
  });
  c.start();
  c.setActive(true);
  const huge = '1'.repeat(5000);
  source.put('good', '10.0.0.1');
  source.put('bad', huge, '10.0.0.2');
  source.put('outside', '192.0.2.9');
  source.put('flood', ...Array.from({ length: 300 }, (_, i) => `10.8.${i >> 8}.${i & 255}`));
  source.setSynced(true);
  await clock.advance(2000);
  for (let i = 3; i < 13; i++) {
    source.put(`n${i}`, `10.0.1.${i}`); // every change re-plans the cluster
    await clock.advance(2000);
  }
  assert.ok(sink.fired.length >= 10, `re-planned and published ${sink.fired.length} times`);
  assert.deepEqual(sink.fired.at(-1)!.data.ipv4.slice(0, 2), ['10.0.0.1', '10.0.0.2'], 'the bad node keeps its good address; the rest is published');
  assert.ok(!sink.fired.at(-1)!.data.ipv4.some((a: string) => a.startsWith('10.8.') || a === '192.0.2.9'));

  const rejectedLines = lines.flatMap((l) => (l.rejected ? [l.rejected] : []));
  assert.deepEqual(rejectedLines.map((r) => [r.node, r.reason]).sort(), [
    ['bad', 'invalid'],
    ['flood', 'too-many'],
    ['outside', 'outside-allowed'],
  ]);
  const bad = rejectedLines.find((r) => r.node === 'bad')!;
  assert.equal(bad.value, `${'1'.repeat(64)}…`);
  assert.ok(JSON.stringify(lines).length < 20_000, 'the 5,000-character value never reaches the log whole');
  assert.ok(!JSON.stringify(lines).includes('1'.repeat(65)));
  const text = await metrics.registry.metrics();
  assert.match(text, /ksb_addresses_rejected_total\{cluster="prod",reason="invalid"\} 1\n/);
  assert.match(text, /ksb_addresses_rejected_total\{cluster="prod",reason="too-many"\} 1\n/);
  assert.match(text, /ksb_addresses_rejected_total\{cluster="prod",reason="outside-allowed"\} 1\n/);

  source.remove('bad');
  await clock.advance(2000);
  source.put('bad', huge, '10.0.0.2');
  await clock.advance(2000);
  assert.equal(lines.filter((l) => l.rejected?.node === 'bad').length, 2, 'a node that was gone is reported again when it comes back');
  assert.match(await metrics.registry.metrics(), /ksb_addresses_rejected_total\{cluster="prod",reason="invalid"\} 2\n/);
  await c.stop();
});

// --dry-run logs exactly the event that would be fired, but never a payload that could be fired
// later: the signature is replaced by a marker, so no logged line verifies with the bridge's key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Controller } from '../../src/controller/controller.ts';
import { StateStore } from '../../src/controller/stateStore.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { canonicalForm, verifyPayload, DRY_RUN_SIGNATURE } from '../../src/plan/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';
import { FakeClock } from '../fakes/clock.ts';
import { unitConfig } from '../fakes/config.ts';
import { FakeNodeSource } from '../fakes/nodeSource.ts';
import { FakeSink } from '../fakes/sink.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('dry-run unit test');

test('the dry-run line carries the full payload with a marker instead of a signature', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ksb-dry-'));
  const config = unitConfig(dir, KEYS.privateText, (kc) => ({
    salt: { url: 'http://127.0.0.1:8000', username: 'u', eauth: 'file' },
    clusters: [{ name: 'prod', kubeconfig: kc, families: ['ipv4'] }],
    state: { dir: join(dir, 'state') },
  }));

  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  const out = new Writable({
    write(chunk, _enc, cb) {
      raw += String(chunk);
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const clock = new FakeClock();
  const source = new FakeNodeSource('prod');
  const sink = new FakeSink();
  const c = new Controller({
    config,
    sources: new Map([['prod', source]]),
    sink,
    store: new StateStore(config.state.dir),
    metrics: createMetrics(false),
    log: pino({ level: 'debug' }, out),
    clock,
    dryRun: true,
  });
  c.start();
  c.setActive(true);
  source.put('a', '10.0.0.1');
  source.setSynced(true);
  await clock.advance(2000);
  await c.stop();

  assert.equal(sink.fired.length, 0, 'nothing fired');
  const line = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('dry run: would fire kube-salt-bridge/cluster/prod/nodes'));
  assert.ok(line, `a dry-run line among:\n${raw}`);
  const p = (line.event as { data: AllowListPayload }).data;
  assert.equal(p.signature, DRY_RUN_SIGNATURE);
  assert.deepEqual(p.ipv4, ['10.0.0.1']);
  assert.equal(p.key_id, KEYS.keyId);
  assert.equal(verifyPayload(p, KEYS.signer), false, 'the logged payload does not verify');
  assert.doesNotMatch(raw, /ed25519:[A-Za-z0-9+/]{20}/, 'no signature anywhere in the log');
  // Everything else is what would have been signed: signing it gives a payload that verifies.
  assert.equal(verifyPayload({ ...p, signature: KEYS.signer.sign(canonicalForm(p)) }, KEYS.signer), true);
  assert.ok(!raw.includes(KEYS.privateText) && !raw.includes(KEYS.privateHex), 'no private key in the log');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interpretBusEvent, payloadFromArgs, type BridgeBusEvent } from '../../src/salt/index.ts';
import type { BusEvent } from '../../src/seams.ts';
import { saltFixtures as f } from './salt-fixtures.ts';

/** An apply return as the module would send it, built from the real ok fixture. */
function applyRet(patch: Record<string, unknown>, retPatch?: Record<string, unknown> | string): BusEvent {
  const base = structuredClone(f.applyRetOk);
  const ret = typeof retPatch === 'string' ? retPatch : { ...(base.data['return'] as object), ...retPatch };
  return { tag: base.tag, data: { ...base.data, return: ret, ...patch } };
}

const cases: Array<{ name: string; event: BusEvent; want: Partial<BridgeBusEvent> | undefined }> = [
  {
    name: 'real apply return, retcode 0',
    event: f.applyRetOk,
    want: { kind: 'apply-result', minion: 'm1', jid: '20261122001130569537', cluster: 'prod', generation: 3, digest: 'sha256:ab', ok: true, changed: true, reason: 'applied', retcode: 0 },
  },
  {
    name: 'real refused return (retcode 1, success false)',
    event: f.applyRetRefused,
    want: { kind: 'apply-result', minion: 'm1', cluster: 'prod', generation: 4, ok: false, changed: false, reason: 'bad signature', retcode: 1 },
  },
  { name: 'retcode non-zero although success true', event: applyRet({ retcode: 2, success: true }), want: { ok: false, retcode: 2 } },
  { name: 'retcode missing', event: applyRet({ retcode: undefined }), want: { ok: false, retcode: undefined } },
  { name: 'success false with retcode 0', event: applyRet({ success: false }), want: { ok: false } },
  { name: 'applied false with retcode 0', event: applyRet({}, { applied: false, reason: 'policy' }), want: { ok: false, reason: 'policy' } },
  { name: 'already current: changed false, applied true', event: applyRet({}, { changed: false, reason: 'current' }), want: { ok: true, changed: false, reason: 'current' } },
  {
    name: 'string return (exception) falls back to the sent payload for cluster/generation',
    event: applyRet({ retcode: 1, success: false }, 'The minion function caused an exception: Traceback...\nException: boom'),
    want: { kind: 'apply-result', ok: false, cluster: 'prod', generation: 3, reason: 'The minion function caused an exception: Traceback...' },
  },
  {
    name: 'module not synced yet',
    event: { tag: f.applyRetOk.tag, data: { ...f.otherRetMissingFunction.data, fun: 'kube_allowlist.apply', fun_args: f.applyRetOk.data['fun_args'] } },
    want: { ok: false, reason: "'kube_allowlist.nope' is not available.", cluster: 'prod' },
  },
  { name: 'minion id from the tag when data has none', event: applyRet({ id: undefined }), want: { minion: 'm1' } },
  { name: 'other function return is ignored', event: f.otherRetMissingFunction, want: undefined },
  { name: 'exception of another function is ignored', event: f.boomRet, want: undefined },
  {
    name: 'real new job from the reactor (arg [{__kwarg__, payload}])',
    event: f.applyNewFromReactor,
    want: { kind: 'apply-started', jid: '20261122001130569537', minions: ['m1'], missing: [], cluster: 'prod', generation: 3 },
  },
  {
    name: 'new job with a disconnected minion',
    event: f.applyNewWithMissing,
    want: { kind: 'apply-started', minions: ['m1'], missing: ['ghost'], cluster: 'prod', generation: 7 },
  },
  { name: 'new job without payload kwarg is not ours', event: { tag: f.applyNewFromReactor.tag, data: { ...f.applyNewFromReactor.data, arg: [] } }, want: undefined },
  { name: 'new job of another function', event: f.otherNew, want: undefined },
  { name: 'minion start', event: f.minionStart, want: { kind: 'minion-start', minion: 'm1' } },
  { name: 'legacy minion_start tag is ignored (the salt/minion/<id>/start twin is used)', event: f.minionStartLegacy, want: undefined },
  { name: 'our own event seen back', event: f.published, want: { kind: 'published', cluster: 'prod', generation: 3, digest: 'sha256:ab' } },
  { name: 'tag under our prefix but not a cluster tag', event: { tag: 'kube-salt-bridge/cluster/a/b/nodes', data: {} }, want: undefined },
  { name: 'runner new (echo of our fire) is ignored', event: f.runNew, want: undefined },
  { name: 'runner return is ignored', event: f.runRetTrue, want: undefined },
  { name: 'bare jid event is ignored', event: f.jidOnly, want: undefined },
];

for (const c of cases) {
  test(`interpretBusEvent: ${c.name}`, () => {
    const got = interpretBusEvent(c.event);
    if (c.want === undefined) {
      assert.equal(got, undefined);
      return;
    }
    assert.ok(got, 'expected a result');
    for (const [k, v] of Object.entries(c.want)) assert.deepEqual((got as unknown as Record<string, unknown>)[k], v, k);
  });
}

test('interpretBusEvent is pure: same input, same output, input untouched', () => {
  const before = structuredClone(f.applyRetOk);
  assert.deepEqual(interpretBusEvent(f.applyRetOk), interpretBusEvent(f.applyRetOk));
  assert.deepEqual(f.applyRetOk, before);
});

test('payloadFromArgs finds the __kwarg__ dict and nothing else', () => {
  assert.deepEqual(payloadFromArgs([{ __kwarg__: true, payload: { cluster: 'a' } }]), { cluster: 'a' });
  assert.equal(payloadFromArgs([{ payload: { cluster: 'a' } }]), undefined);
  assert.equal(payloadFromArgs(['x', { __kwarg__: true, payload: 'str' }]), undefined);
  assert.equal(payloadFromArgs(undefined), undefined);
});

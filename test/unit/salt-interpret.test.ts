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

/** A new-job event from the real reactor fixture with other targeted minions. */
function applyNew(minions: unknown, missing: unknown = []): BusEvent {
  const base = structuredClone(f.applyNewFromReactor);
  return { tag: base.tag, data: { ...base.data, minions, missing } };
}

const retFor = (minion: string, id: unknown = minion): BusEvent => ({
  tag: `salt/job/20261122001130569537/ret/${minion}`,
  data: { ...structuredClone(f.applyRetOk.data), id },
});
const startOf = (tagId: string, data: Record<string, unknown>): BusEvent => ({ tag: `salt/minion/${tagId}/start`, data });

const many = Array.from({ length: 60_000 }, (_, i) => `forged-${i}`);

const cases: Array<{ name: string; event: BusEvent; want: Partial<Record<string, unknown>> | undefined }> = [
  // ---- returns: the minion's word on its outcome, nothing more ----
  {
    name: 'real apply return, retcode 0',
    event: f.applyRetOk,
    want: { kind: 'apply-result', minion: 'm1', jid: '20261122001130569537', ok: true, changed: true, reason: 'applied', retcode: 0 },
  },
  {
    name: "a return carries no generation, digest or cluster: those are the job's",
    event: f.applyRetOk,
    want: { generation: undefined, digest: undefined, cluster: undefined },
  },
  {
    name: 'real refused return (retcode 1, success false)',
    event: f.applyRetRefused,
    want: { kind: 'apply-result', minion: 'm1', ok: false, changed: false, reason: 'bad signature', retcode: 1 },
  },
  { name: 'retcode non-zero although success true', event: applyRet({ retcode: 2, success: true }), want: { ok: false, retcode: 2 } },
  { name: 'retcode missing', event: applyRet({ retcode: undefined }), want: { ok: false, retcode: undefined } },
  { name: 'success false with retcode 0', event: applyRet({ success: false }), want: { ok: false } },
  { name: 'applied false with retcode 0', event: applyRet({}, { applied: false, reason: 'policy' }), want: { ok: false, reason: 'policy' } },
  {
    name: 'already current: changed false, applied true',
    event: applyRet({}, { changed: false, reason: 'current' }),
    want: { ok: true, changed: false, reason: 'current' },
  },
  {
    name: 'need full: retcode 0, applied false, need_full true (a delta from a list the minion does not hold)',
    event: applyRet({}, { applied: false, changed: false, need_full: true, reason: 'need_full: holds nothing, the delta is from sha256:ab' }),
    want: { kind: 'apply-result', ok: false, changed: false, needFull: true, retcode: 0, reason: 'need_full: holds nothing, the delta is from sha256:ab' },
  },
  { name: 'need_full false (every return carries it)', event: applyRet({}, { need_full: false }), want: { ok: true, needFull: false } },
  { name: 'need_full not a boolean is not need full', event: applyRet({}, { applied: false, need_full: 'yes' }), want: { ok: false, needFull: false } },
  { name: 'a string return is never need full', event: applyRet({ retcode: 0 }, 'need_full: true'), want: { ok: false, needFull: false } },
  { name: 'a long reason is truncated', event: applyRet({}, { reason: 'x'.repeat(5000) }), want: { reason: `${'x'.repeat(200)}…` } },
  {
    name: 'string return (exception): first line as the reason',
    event: applyRet({ retcode: 1, success: false }, 'The minion function caused an exception: Traceback...\nException: boom'),
    want: { kind: 'apply-result', ok: false, reason: 'The minion function caused an exception: Traceback...' },
  },
  {
    name: 'module not synced yet',
    event: {
      tag: f.otherRetMissingFunction.tag,
      data: { ...f.otherRetMissingFunction.data, fun: 'kube_allowlist.apply', fun_args: f.applyRetOk.data['fun_args'] },
    },
    want: { ok: false, reason: "'kube_allowlist.nope' is not available." },
  },
  {
    name: 'unique_jid form (<digits>_<pid>) is a jid',
    event: { tag: 'salt/job/20261122001130569537_4242/ret/m1', data: { ...f.applyRetOk.data, jid: '20261122001130569537_4242' } },
    want: { kind: 'apply-result', jid: '20261122001130569537_4242' },
  },
  { name: "no id in the data: dropped (the tag alone is anyone's word)", event: applyRet({ id: undefined }), want: { kind: 'dropped', reason: 'id-mismatch' } },
  { name: 'tag names another minion than the data: dropped', event: retFor('m2', 'm1'), want: { kind: 'dropped', reason: 'id-mismatch' } },
  { name: 'id with a space: dropped', event: retFor('web 1'), want: { kind: 'dropped', reason: 'bad-id' } },
  { name: 'id with a glob: dropped', event: retFor('x*'), want: { kind: 'dropped', reason: 'bad-id' } },
  { name: 'id with a comma (would widen an L@ list): dropped', event: retFor('a,b'), want: { kind: 'dropped', reason: 'bad-id' } },
  { name: 'id of 129 characters: dropped', event: retFor('a'.repeat(129)), want: { kind: 'dropped', reason: 'bad-id' } },
  { name: 'id of 128 characters: accepted', event: retFor('a'.repeat(128)), want: { kind: 'apply-result', minion: 'a'.repeat(128) } },
  { name: 'id with a slash in the tag: dropped', event: retFor('a/b'), want: { kind: 'dropped', reason: 'bad-id' } },
  { name: "data jid differs from the tag's: dropped", event: applyRet({ jid: '1' }), want: { kind: 'dropped', reason: 'bad-jid' } },
  {
    name: 'non-numeric jid: dropped',
    event: { tag: 'salt/job/abc/ret/m1', data: { ...f.applyRetOk.data, jid: 'abc' } },
    want: { kind: 'dropped', reason: 'bad-jid' },
  },
  { name: 'a return forwarded by a minion (salt-call event.send): dropped', event: f.forwardedRet, want: { kind: 'dropped', reason: 'forwarded' } },
  {
    name: 'the batch form (preload events) is unmarked: read as a return of m2, for the job check to judge',
    event: f.batchRetForOther,
    want: { kind: 'apply-result', minion: 'm2', ok: true, generation: undefined },
  },
  { name: 'other function return is ignored', event: f.otherRetMissingFunction, want: undefined },
  { name: 'exception of another function is ignored', event: f.boomRet, want: undefined },

  // ---- new jobs: who was targeted, and the payload to verify ----
  {
    name: 'real new job from the reactor (arg [{__kwarg__, payload}])',
    event: f.applyNewFromReactor,
    want: {
      kind: 'apply-started',
      jid: '20261122001130569537',
      minions: ['m1'],
      invalidIds: 0,
      overCap: 0,
      cluster: 'prod',
      generation: 3,
      digest: 'sha256:ab',
    },
  },
  {
    name: 'the payload is handed on for verification',
    event: f.applyNewFromReactor,
    want: { payload: (f.applyNewFromReactor.data['arg'] as Array<{ payload: unknown }>)[0]!.payload },
  },
  {
    name: "a new job whose payload is a delta: tied to its publication by the delta's cluster, generation and digest",
    event: {
      tag: f.applyNewFromReactor.tag,
      data: {
        ...f.applyNewFromReactor.data,
        arg: [
          {
            __kwarg__: true,
            payload: { cluster: 'prod', generation: 9, digest: 'sha256:cd', base_digest: 'sha256:ab', added: ['10.0.0.2'], removed: [], _stamp: 'x' },
          },
        ],
      },
    },
    want: { kind: 'apply-started', cluster: 'prod', generation: 9, digest: 'sha256:cd', minions: ['m1'] },
  },
  {
    name: 'a disconnected minion is targeted too',
    event: f.applyNewWithMissing,
    want: { kind: 'apply-started', minions: ['m1', 'ghost'], cluster: 'prod', generation: 7 },
  },
  {
    name: 'invalid ids are left out and counted',
    event: applyNew(['ok-1', 'x or *', 'a b', 5, null, '*'], ['ok-2', '']),
    want: { minions: ['ok-1', 'ok-2'], invalidIds: 6 },
  },
  { name: 'duplicates count once', event: applyNew(['m1', 'm1'], ['m1']), want: { minions: ['m1'], invalidIds: 0 } },
  { name: '60,000 ids: the first 10,000 are kept', event: applyNew(many), want: { minions: many.slice(0, 10_000), overCap: 50_000, invalidIds: 0 } },
  { name: 'minions not a list: nobody', event: applyNew('m1', { a: 1 }), want: { minions: [] } },
  {
    name: 'new job without payload kwarg is not ours',
    event: { tag: f.applyNewFromReactor.tag, data: { ...f.applyNewFromReactor.data, arg: [] } },
    want: undefined,
  },
  {
    name: 'new job with a generation that is no safe integer is not ours',
    event: {
      tag: f.applyNewFromReactor.tag,
      data: { ...f.applyNewFromReactor.data, arg: [{ __kwarg__: true, payload: { cluster: 'prod', generation: 2 ** 60 } }] },
    },
    want: undefined,
  },
  { name: 'new job of another function', event: f.otherNew, want: undefined },
  {
    name: 'new job whose data names another jid: dropped',
    event: { tag: 'salt/job/1/new', data: f.applyNewFromReactor.data },
    want: { kind: 'dropped', reason: 'bad-jid' },
  },
  {
    name: 'a forwarded new job: dropped',
    event: { tag: f.applyNewFromReactor.tag, data: { ...f.applyNewFromReactor.data, cmd: '_minion_event' } },
    want: { kind: 'dropped', reason: 'forwarded' },
  },

  // ---- minion starts: only a minion's word about itself ----
  { name: 'real minion start (forwarded by the minion itself, its own id)', event: f.minionStart, want: { kind: 'minion-start', minion: 'm1' } },
  {
    name: 'start fired on the master (salt-run event.send) with its id',
    event: startOf('evil', { id: 'evil' }),
    want: { kind: 'minion-start', minion: 'evil' },
  },
  { name: 'start for "x or *": dropped', event: startOf('x or *', { id: 'x or *' }), want: { kind: 'dropped', reason: 'bad-id' } },
  { name: 'start for "*": dropped', event: startOf('*', { id: '*' }), want: { kind: 'dropped', reason: 'bad-id' } },
  { name: 'start with a newline in the id: dropped', event: startOf('a\nb', { id: 'a\nb' }), want: { kind: 'dropped', reason: 'bad-id' } },
  {
    name: "a minion announcing another's start: dropped",
    event: startOf('m2', { ...f.minionStart.data, id: 'm1' }),
    want: { kind: 'dropped', reason: 'id-mismatch' },
  },
  { name: 'start without an id: dropped', event: startOf('m1', {}), want: { kind: 'dropped', reason: 'id-mismatch' } },
  { name: 'legacy minion_start tag is ignored (the salt/minion/<id>/start twin is used)', event: f.minionStartLegacy, want: undefined },

  // ---- our own cluster tag ----
  {
    name: 'our own event seen back: handed on for verification',
    event: f.published,
    want: { kind: 'published', cluster: 'prod', generation: 3, payload: f.published.data },
  },
  {
    name: 'a cluster event forwarded by a minion: dropped',
    event: { tag: f.published.tag, data: { ...f.published.data, cmd: '_minion_event', id: 'm1' } },
    want: { kind: 'dropped', reason: 'forwarded' },
  },
  {
    name: 'tag under our prefix but not a cluster tag',
    event: { tag: 'kube-salt-bridge/cluster/a/b/nodes', data: {} },
    want: { kind: 'dropped', reason: 'bad-cluster' },
  },
  {
    name: 'cluster name that is no DNS label',
    event: { tag: 'kube-salt-bridge/cluster/X_/nodes', data: {} },
    want: { kind: 'dropped', reason: 'bad-cluster' },
  },
  { name: 'runner new (echo of our fire) is ignored', event: f.runNew, want: undefined },
  { name: 'runner return is ignored', event: f.runRetTrue, want: undefined },
  { name: 'bare jid event is ignored', event: f.jidOnly, want: undefined },
  { name: 'other minion-forwarded events are none of our business', event: { tag: 'my/app/event', data: { cmd: '_minion_event', id: 'm1' } }, want: undefined },
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

test('a dropped event names the tag truncated and never the raw data', () => {
  const tag = `salt/minion/${'x '.repeat(5000)}/start`;
  const got = interpretBusEvent({ tag, data: { id: 'secret-ish\u0007'.repeat(1000) } }) as Extract<BridgeBusEvent, { kind: 'dropped' }>;
  assert.equal(got.kind, 'dropped');
  assert.ok(got.tag.length <= 121, `tag ${got.tag.length} chars`);
  assert.ok(got.detail.length <= 201, `detail ${got.detail.length} chars`);
  const mismatch = interpretBusEvent(startOf('m1', { id: 'm2\u0007\n' })) as Extract<BridgeBusEvent, { kind: 'dropped' }>;
  // eslint-disable-next-line no-control-regex -- the control characters are what the detail must not hold
  assert.doesNotMatch(mismatch.detail, /[\u0000-\u001f]/, 'control characters are escaped');
});

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

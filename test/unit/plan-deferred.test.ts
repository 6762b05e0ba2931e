// The full payload signed when first read (deferredPayload) and the delta of a known change
// (signDelta) are the payloads buildPayload and buildDeltaPayload make.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildDeltaPayload, buildPayload, deferredPayload, diffLists, payloadBytes, signDelta, verifyPayload, allowListDigest } from '../../src/plan/index.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('deferred payload unit tests');
const base = { ipv4: ['10.0.0.1', '10.0.0.2'], ipv6: ['fd00::1'] };
const list = { ipv4: ['10.0.0.2', '10.0.0.3', '10.244.0.0/24'], ipv6: ['fd00::1', 'fd00::2'] };
const input = { cluster: 'prod', generation: 1_800_000_000_123, list, diff: diffLists(base, list), nodes: 3, issuedAtMs: Date.UTC(2026, 11, 1, 20) };

describe('deferredPayload', () => {
  it('is buildPayload, signed only when the signature is read', () => {
    let signed = 0;
    const signer = { keyId: KEYS.signer.keyId, sign: (m: string) => (signed++, KEYS.signer.sign(m)) };
    const d = deferredPayload(input, signer);
    assert.equal(signed, 0, 'nothing signed before the signature is read');
    assert.equal(d.payload.digest, allowListDigest(list));
    const eager = buildPayload(input, KEYS.signer);
    assert.equal(d.bytes, payloadBytes(eager), 'its size is known unsigned');
    assert.equal(signed, 0);
    assert.equal(JSON.stringify(d.payload), JSON.stringify(eager));
    assert.deepEqual(structuredClone(d.payload), eager);
    assert.deepEqual({ ...d.payload }, eager);
    assert.equal(signed, 1, 'signed once, however often read');
    assert.ok(verifyPayload(d.payload, KEYS.signer));
    assert.ok(Object.isFrozen(d.payload) && Object.isFrozen(d.payload.ipv4));
  });

  it('knows its size for empty lists, truncated diffs and a given digest', () => {
    for (const l of [{ ipv4: [], ipv6: [] }, { ipv4: ['10.0.0.1'], ipv6: [] }, list]) {
      const i = { ...input, list: l, diff: diffLists(undefined, l, 1) };
      const d = deferredPayload({ ...i, digest: allowListDigest(l) }, KEYS.signer);
      assert.equal(d.bytes, payloadBytes(buildPayload(i, KEYS.signer)));
      assert.deepEqual(d.payload, buildPayload(i, KEYS.signer));
    }
  });
});

describe('signDelta', () => {
  it('is buildDeltaPayload when given the change and both digests', () => {
    const change = diffLists(base, list, Number.POSITIVE_INFINITY);
    const delta = { cluster: 'prod', generation: 7, nodes: 3, issuedAtMs: input.issuedAtMs };
    assert.deepEqual(
      signDelta({ ...delta, digest: allowListDigest(list), baseDigest: allowListDigest(base), added: change.added, removed: change.removed }, KEYS.signer),
      buildDeltaPayload({ ...delta, base, list }, KEYS.signer),
    );
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  allowListDigest,
  buildPayload,
  canonicalForm,
  canonicalJson,
  diffLists,
  eventTag,
  payloadBytes,
  SALT_API_MAX_BODY_BYTES,
  signPayload,
  verifyPayload,
} from '../../src/plan/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';

interface Vector {
  key: string;
  canonical: string;
  payload: AllowListPayload;
}
const vectors = (
  JSON.parse(readFileSync(new URL('../vectors/payloads.json', import.meta.url), 'utf8')) as { vectors: Vector[] }
).vectors;

describe('shared vectors (test/vectors/payloads.json)', () => {
  for (const v of vectors) {
    it(`${v.payload.cluster} generation ${v.payload.generation}`, () => {
      const { signature, ...unsigned } = v.payload;
      assert.equal(canonicalForm(unsigned), v.canonical);
      assert.equal(allowListDigest(unsigned), v.payload.digest);
      assert.equal(signPayload(unsigned, v.key).signature, signature);
      assert.ok(verifyPayload(v.payload, v.key));
    });

    it(`${v.payload.cluster}: buildPayload reproduces it from its parts`, () => {
      const p = v.payload;
      const built = buildPayload(
        {
          cluster: p.cluster,
          generation: p.generation,
          list: { ipv4: p.ipv4, ipv6: p.ipv6 },
          diff: { added: p.added, removed: p.removed, added_truncated: false, removed_truncated: false, addedCount: p.added.length, removedCount: p.removed.length },
          nodes: p.nodes,
          target: p.target,
          issuedAtMs: Date.parse(p.issued_at),
        },
        v.key,
      );
      assert.deepEqual(built, p);
      assert.equal(canonicalForm(built), v.canonical);
    });
  }
});

describe('signing', () => {
  const v = vectors[0]!;
  it('any change to a signed field breaks verification', () => {
    assert.equal(verifyPayload({ ...v.payload, generation: v.payload.generation + 1 }, v.key), false);
    assert.equal(verifyPayload({ ...v.payload, target: '*' }, v.key), false);
    assert.equal(verifyPayload(v.payload, v.key + 'x'), false);
    assert.equal(verifyPayload({ ...v.payload, signature: 'hmac-sha256:00' }, v.key), false);
  });

  it('a digest that does not match the lists fails verification even when signed', () => {
    const { signature: _s, ...u } = v.payload;
    const forged = signPayload({ ...u, ipv4: ['10.9.9.9'] }, v.key);
    assert.equal(verifyPayload(forged, v.key), false);
  });

  it('truncation flags are signed only when present', () => {
    const diff = diffLists(undefined, { ipv4: ['10.0.0.1', '10.0.0.2'], ipv6: [] }, 1);
    const p = buildPayload(
      { cluster: 'c', generation: 1, list: { ipv4: ['10.0.0.1', '10.0.0.2'], ipv6: [] }, diff, nodes: 2, target: 'I@x', issuedAtMs: 0 },
      'k',
    );
    assert.equal(p.added_truncated, true);
    assert.equal('removed_truncated' in p, false);
    assert.match(canonicalForm(p), /"added_truncated":true/);
    assert.ok(verifyPayload(p, 'k'));
    assert.equal(verifyPayload({ ...p, added_truncated: undefined } as unknown as AllowListPayload, 'k'), false);
  });
});

describe('canonicalJson', () => {
  it('sorts keys recursively, no whitespace', () => {
    assert.equal(canonicalJson({ b: [{ d: 1, c: 2 }], a: 'x' }), '{"a":"x","b":[{"c":2,"d":1}]}');
  });
  it('escapes like Python ensure_ascii=True', () => {
    // json.dumps("é\x7f\n\u2028😀", ensure_ascii=True)
    assert.equal(canonicalJson('é\x7f\n\u2028😀'), '"\\u00e9\\u007f\\n\\u2028\\ud83d\\ude00"');
  });
  it('refuses non-integers', () => {
    assert.throws(() => canonicalJson({ a: 0.5 }), RangeError);
  });
});

describe('size', () => {
  it('5,000 dual-stack nodes on a first publish fit salt-api 1 MiB', () => {
    const ipv4 = Array.from({ length: 5000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${100 + (i % 100)}`);
    const ipv6 = Array.from({ length: 5000 }, (_, i) => `fd00:1234:5678:${i.toString(16)}::abcd:${i.toString(16)}`);
    const list = { ipv4: [...new Set(ipv4)].sort(), ipv6: [...new Set(ipv6)].sort() };
    const p = buildPayload(
      { cluster: 'prod', generation: Date.now(), list, diff: diffLists(undefined, list), nodes: 5000, target: 'I@kube_allowlist:clusters:prod', issuedAtMs: 0 },
      'a-signing-key-of-some-length',
    );
    // salt-api body: {"client":"runner","fun":"event.send","tag":...,"data":payload}
    const body = JSON.stringify({ client: 'runner', fun: 'event.send', tag: eventTag('prod'), data: p });
    assert.ok(payloadBytes(p) < SALT_API_MAX_BODY_BYTES);
    assert.ok(Buffer.byteLength(body) < SALT_API_MAX_BODY_BYTES, `${Buffer.byteLength(body)} bytes`);
  });

  it('event tag', () => assert.equal(eventTag('edge-1'), 'kube-salt-bridge/cluster/edge-1/nodes'));
});

it('keys Salt adds to an event (_stamp, __pub_*) are not signed, so a payload read back from the bus verifies', () => {
  const { vectors } = JSON.parse(readFileSync(new URL('../vectors/payloads.json', import.meta.url), 'utf8')) as { vectors: Array<{ key: string; payload: AllowListPayload }> };
  const v = vectors[0]!;
  const onBus = { ...v.payload, _stamp: '2026-11-22T10:00:00.123456', __pub_user: 'x' } as AllowListPayload;
  assert.equal(verifyPayload(onBus, v.key), true);
  assert.equal(verifyPayload({ ...onBus, nodes: 99 }, v.key), false, 'a signed key changed still fails');
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  allowListDigest,
  buildCheckPayload,
  buildDeltaPayload,
  buildPayload,
  chooseForm,
  isDelta,
  canonicalForm,
  canonicalJson,
  diffLists,
  eventTag,
  parseKeyText,
  payloadBytes,
  signerFromSeed,
  signPayload,
  unsignedForLog,
  verifierFromPublicKey,
  verifyPayload,
  DRY_RUN_SIGNATURE,
  PAYLOAD_VERSION,
  SALT_API_MAX_BODY_BYTES,
  SIGNED_KEYS,
  type Verifier,
} from '../../src/plan/index.ts';
import type { AllowListPayload, DeltaPayload } from '../../src/seams.ts';

interface Vectors {
  version: number;
  keys: Record<string, { seed_hex: string; private_text: string; public_key: string; public_hex: string; key_id: string }>;
  payloads: Array<{ name: string; key: string; tag: string; canonical: string; digest: string; signature: string; payload: AllowListPayload }>;
  deltas: Array<{
    name: string;
    key: string;
    tag: string;
    base: { ipv4: string[]; ipv6: string[]; digest: string };
    result: { ipv4: string[]; ipv6: string[]; digest: string };
    canonical: string;
    signature: string;
    payload: DeltaPayload;
  }>;
  key_text: Array<{ name: string; text_b64: string; ok: boolean; raw_hex?: string; why?: string }>;
  verify: Array<{ name: string; payload: Record<string, unknown>; verifies_with: string[] }>;
}
const VECTORS_URL = new URL('../vectors/payloads-v2.json', import.meta.url);
const vectors = JSON.parse(readFileSync(VECTORS_URL, 'utf8')) as Vectors;
const signers = Object.fromEntries(Object.entries(vectors.keys).map(([n, k]) => [n, signerFromSeed(Buffer.from(k.seed_hex, 'hex'))]));
const verifiers: Record<string, Verifier> = Object.fromEntries(
  Object.entries(vectors.keys).map(([n, k]) => [n, verifierFromPublicKey(Buffer.from(k.public_key, 'base64'))]),
);
const a = signers.a!;
const base = vectors.payloads[0]!.payload;

describe('shared vectors (test/vectors/payloads-v2.json): keys', () => {
  assert.equal(vectors.version, PAYLOAD_VERSION);
  for (const [name, k] of Object.entries(vectors.keys)) {
    it(`key ${name}: seed → public key and key id; its private text parses to the seed`, () => {
      const s = signers[name]!;
      assert.equal(s.publicKey, k.public_key);
      assert.equal(Buffer.from(s.publicKey, 'base64').toString('hex'), k.public_hex);
      assert.equal(s.keyId, k.key_id);
      assert.match(s.keyId, /^[0-9a-f]{16}$/);
      const parsed = parseKeyText(k.private_text);
      assert.ok(parsed.ok);
      assert.equal(parsed.raw.toString('hex'), k.seed_hex);
      assert.equal(verifiers[name]!.keyId, k.key_id, 'a verifier made from the public key has the same id');
    });
  }
});

describe('shared vectors: payloads', () => {
  for (const v of vectors.payloads) {
    it(`${v.name}: canonical form, digest and signature`, () => {
      const { signature, ...unsigned } = v.payload;
      assert.equal(canonicalForm(unsigned), v.canonical);
      assert.equal(allowListDigest(unsigned), v.digest);
      assert.equal(v.payload.digest, v.digest);
      assert.equal(signPayload(unsigned, signers[v.key]!).signature, v.signature);
      assert.equal(signature, v.signature);
      assert.equal(eventTag(v.payload.cluster), v.tag);
      assert.ok(verifyPayload(v.payload, verifiers[v.key]!));
    });

    it(`${v.name}: buildPayload reproduces it from its parts`, () => {
      const p = v.payload;
      const built = buildPayload(
        {
          cluster: p.cluster,
          generation: p.generation,
          list: { ipv4: p.ipv4, ipv6: p.ipv6 },
          diff: {
            added: p.added,
            removed: p.removed,
            added_truncated: p.added_truncated ?? false,
            removed_truncated: p.removed_truncated ?? false,
            addedCount: p.added.length,
            removedCount: p.removed.length,
          },
          nodes: p.nodes,
          issuedAtMs: Date.parse(p.issued_at),
        },
        signers[v.key]!,
      );
      assert.deepEqual(built, p);
      assert.equal(JSON.stringify(Object.keys(built).sort()), JSON.stringify(Object.keys(p).sort()));
      assert.equal(canonicalForm(built), v.canonical);
    });
  }

  it('the file is exactly what test/vectors/generate.ts writes', () => {
    const script = fileURLToPath(new URL('../vectors/generate.ts', import.meta.url));
    execFileSync(process.execPath, [script, '--check'], { stdio: 'pipe' });
  });
});

describe('shared vectors: deltas', () => {
  for (const v of vectors.deltas) {
    it(`${v.name}: canonical form, digests and signature`, () => {
      const { signature, ...unsigned } = v.payload;
      assert.equal(canonicalForm(unsigned), v.canonical);
      assert.equal(allowListDigest(v.base), v.base.digest);
      assert.equal(allowListDigest(v.result), v.result.digest);
      assert.equal(v.payload.base_digest, v.base.digest);
      assert.equal(v.payload.digest, v.result.digest);
      assert.equal(signPayload(unsigned, signers[v.key]!).signature, v.signature);
      assert.equal(signature, v.signature);
      assert.equal(eventTag(v.payload.cluster), v.tag);
      assert.ok(isDelta(v.payload));
      assert.ok(verifyPayload(v.payload, verifiers[v.key]!));
    });

    it(`${v.name}: rebuilt from its base and result lists`, () => {
      const p = v.payload;
      const input = { cluster: p.cluster, generation: p.generation, nodes: p.nodes, issuedAtMs: Date.parse(p.issued_at) };
      const built =
        v.base.digest === v.result.digest
          ? buildCheckPayload({ ...input, digest: v.result.digest }, signers[v.key]!)
          : buildDeltaPayload({ ...input, base: v.base, list: v.result }, signers[v.key]!);
      assert.deepEqual(built, p);
      assert.equal(JSON.stringify(Object.keys(built).sort()), JSON.stringify(Object.keys(p).sort()));
    });
  }

  it('applying added and removed to the base gives the result', () => {
    for (const v of vectors.deltas) {
      const held = new Set([...v.base.ipv4, ...v.base.ipv6]);
      for (const r of v.payload.removed) assert.ok(held.delete(r), `${r} is held`);
      for (const e of v.payload.added) {
        assert.ok(!held.has(e), `${e} is not held yet`);
        held.add(e);
      }
      assert.deepEqual([...held].sort(), [...v.result.ipv4, ...v.result.ipv6].sort());
    }
  });
});

describe('shared vectors: key text normalisation', () => {
  for (const k of vectors.key_text) {
    it(`${k.ok ? 'accepted' : 'refused'}: ${k.name}`, () => {
      const bytes = Buffer.from(k.text_b64, 'base64');
      const r = parseKeyText(bytes);
      if (k.ok) {
        assert.ok(r.ok, r.ok ? '' : r.reason);
        assert.equal(r.raw.toString('hex'), k.raw_hex);
      } else {
        assert.equal(r.ok, false);
      }
      // The same text as a string (an environment variable) gives the same answer, when it is ASCII.
      if (bytes.every((b) => b < 0x80)) assert.deepEqual(parseKeyText(bytes.toString('latin1')), r);
    });
  }
});

describe('shared vectors: what verifies with which key', () => {
  for (const v of vectors.verify) {
    it(`${v.name}: ${v.verifies_with.length ? `verifies with ${v.verifies_with.join(', ')} only` : 'verifies with no key'}`, () => {
      for (const [name, verifier] of Object.entries(verifiers)) {
        assert.equal(verifyPayload(v.payload, verifier), v.verifies_with.includes(name), `key ${name}`);
      }
      for (const [name, signer] of Object.entries(signers)) {
        assert.equal(verifyPayload(v.payload, signer), v.verifies_with.includes(name), `the signer of key ${name} verifies alike`);
      }
    });
  }
});

describe('verifyPayload', () => {
  it('a tampered signed field, a wrong key id, another key: false', () => {
    assert.equal(verifyPayload(base, a), true);
    assert.equal(verifyPayload({ ...base, generation: base.generation + 1 }, a), false);
    assert.equal(verifyPayload({ ...base, ipv6: [] }, a), false, 'lists changed (digest no longer matches)');
    assert.equal(verifyPayload({ ...base, key_id: signers.b!.keyId }, a), false);
    assert.equal(verifyPayload(base, signers.b!), false);
    assert.equal(verifyPayload(base, { keyId: a.keyId, verify: () => false }), false, 'the key id alone is not enough');
  });

  it('a version 1 payload (HMAC, target) is false, whatever key', () => {
    const v1 = vectors.verify.find((v) => v.payload.version === 1 && typeof v.payload.target === 'string')!;
    assert.match(String(v1.payload.signature), /^hmac-sha256:/);
    for (const s of Object.values(signers)) assert.equal(verifyPayload(v1.payload, s), false);
    const { signature: _s, target: _t, ...rest } = v1.payload;
    const resigned = signPayload({ ...(rest as unknown as AllowListPayload), key_id: a.keyId }, a);
    assert.equal(verifyPayload(resigned, a), false, 'even signed with Ed25519, version 1 is not version 2');
  });

  it('never throws: not an object, arrays, unsafe integers, odd types', () => {
    const odd: unknown[] = [
      null,
      undefined,
      'x',
      2,
      [],
      [base],
      { ...base, generation: 2 ** 60 },
      { ...base, generation: 1.5 },
      { ...base, nodes: -1 },
      { ...base, ipv4: [1] },
      { ...base, ipv4: 'x' },
      { ...base, added: [{}] },
      { ...base, added_truncated: 'yes' },
      { ...base, signature: 42 },
      { ...base, key_id: null },
      { ...base, digest: undefined },
      { ...base, ipv4: [...base.ipv4, 'é'], digest: allowListDigest({ ipv4: [...base.ipv4, 'é'], ipv6: base.ipv6 }) },
    ];
    for (const p of odd) assert.equal(verifyPayload(p, a), false, JSON.stringify(p)?.slice(0, 80));
  });

  it('the unsigned minions hint and the keys Salt adds do not change the answer', () => {
    assert.equal(verifyPayload({ ...base, minions: ['m1', 'm2'], _stamp: '2026-11-22T10:00:00.123456', __pub_user: 'x' }, a), true);
    assert.equal(verifyPayload({ ...base, minions: ['m1'], nodes: 99 }, a), false, 'a signed key changed still fails');
  });

  it('a digest that does not match the lists fails even when signed', () => {
    const { signature: _s, ...u } = base;
    assert.equal(verifyPayload(signPayload({ ...u, ipv4: ['10.9.9.9'] }, a), a), false);
  });
});

describe('signing', () => {
  it("signPayload refuses a key_id that is not the signer's", () => {
    const { signature: _s, ...u } = base;
    assert.throws(() => signPayload(u, signers.b!), /key_id 56475aa75463474c is not the signer's \(24f6ed6acbfe1009\)/);
  });

  it('truncation flags are signed only when present', () => {
    const diff = diffLists(undefined, { ipv4: ['10.0.0.1', '10.0.0.2'], ipv6: [] }, 1);
    const p = buildPayload({ cluster: 'c', generation: 1, list: { ipv4: ['10.0.0.1', '10.0.0.2'], ipv6: [] }, diff, nodes: 2, issuedAtMs: 0 }, a);
    assert.equal(p.added_truncated, true);
    assert.equal('removed_truncated' in p, false);
    assert.match(canonicalForm(p), /"added_truncated":true/);
    assert.ok(verifyPayload(p, a));
    assert.equal(verifyPayload({ ...p, added_truncated: undefined }, a), false);
  });

  it('a built payload is version 2, names the key and carries no target', () => {
    const p = buildPayload(
      {
        cluster: 'c',
        generation: 1,
        list: { ipv4: ['10.0.0.1'], ipv6: [] },
        diff: diffLists(undefined, { ipv4: ['10.0.0.1'], ipv6: [] }),
        nodes: 1,
        issuedAtMs: 0,
      },
      a,
    );
    assert.equal(p.version, 2);
    assert.equal(p.key_id, a.keyId);
    assert.equal('target' in p, false);
    assert.match(p.signature, /^ed25519:[A-Za-z0-9+/]{86}==$/);
  });
});

describe('dry run', () => {
  it('the logged form keeps every field but carries a marker instead of a signature, and verifies with no key', () => {
    const logged = unsignedForLog(base);
    assert.equal(logged.signature, DRY_RUN_SIGNATURE);
    assert.deepEqual({ ...logged, signature: base.signature }, base);
    for (const s of Object.values(signers)) assert.equal(verifyPayload(logged, s), false);
    assert.doesNotMatch(JSON.stringify(logged), /ed25519:/);
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
    const p = buildPayload({ cluster: 'prod', generation: 1_795_307_097_725, list, diff: diffLists(undefined, list), nodes: 5000, issuedAtMs: 0 }, a);
    // salt-api body: {"client":"runner","fun":"event.send","tag":...,"data":payload}
    const body = JSON.stringify({ client: 'runner', fun: 'event.send', tag: eventTag('prod'), data: p });
    assert.ok(payloadBytes(p) < SALT_API_MAX_BODY_BYTES);
    assert.ok(Buffer.byteLength(body) < SALT_API_MAX_BODY_BYTES, `${Buffer.byteLength(body)} bytes`);
  });

  it('event tag', () => assert.equal(eventTag('edge-1'), 'kube-salt-bridge/cluster/edge-1/nodes'));
});

describe('delta form', () => {
  const list = { ipv4: ['10.0.0.1', '10.0.0.2'], ipv6: ['fd00::1'] };
  const next = { ipv4: ['10.0.0.1', '10.0.0.3'], ipv6: ['fd00::1', 'fd00::3'] };
  const d = buildDeltaPayload({ cluster: 'c', generation: 5, base: list, list: next, nodes: 2, issuedAtMs: 0 }, a);

  it('carries the complete change, families together, sorted, and no lists or truncation flags', () => {
    assert.deepEqual(d.added, ['10.0.0.3', 'fd00::3']);
    assert.deepEqual(d.removed, ['10.0.0.2']);
    assert.equal(d.base_digest, allowListDigest(list));
    assert.equal(d.digest, allowListDigest(next));
    for (const k of ['ipv4', 'ipv6', 'added_truncated', 'removed_truncated']) assert.equal(k in d, false, k);
    assert.match(canonicalForm(d), /"base_digest":"sha256:[0-9a-f]{64}"/);
    assert.ok(verifyPayload(d, a));
    assert.equal(verifyPayload(d, signers.b!), false);
  });

  it('is never truncated: 5,000 joining nodes are all in added', () => {
    const big = { ipv4: Array.from({ length: 5000 }, (_, i) => `10.${i >> 8}.${i & 255}.1`).sort(), ipv6: [] };
    const p = buildDeltaPayload({ cluster: 'c', generation: 6, base: { ipv4: [], ipv6: [] }, list: big, nodes: 5000, issuedAtMs: 0 }, a);
    assert.equal(p.added.length, 5000);
    assert.ok(verifyPayload(p, a));
  });

  it('the check form names one digest twice and changes nothing', () => {
    const c = buildCheckPayload({ cluster: 'c', generation: 4, digest: allowListDigest(list), nodes: 2, issuedAtMs: 1000 }, a);
    assert.equal(c.base_digest, c.digest);
    assert.deepEqual([c.added, c.removed], [[], []]);
    assert.equal(c.issued_at, '1970-01-01T00:00:01.000Z');
    assert.ok(isDelta(c));
    assert.ok(verifyPayload(c, a));
  });

  it('a payload mixing the forms is refused, even signed', () => {
    const { signature: _s, ...u } = d;
    const mixed = (extra: Record<string, unknown>) => signPayload({ ...u, ...extra }, a);
    assert.equal(verifyPayload(mixed({ ipv4: next.ipv4 }), a), false);
    assert.equal(verifyPayload(mixed({ ipv6: [] }), a), false);
    assert.equal(verifyPayload(mixed({ added_truncated: false }), a), false);
    assert.equal(verifyPayload(mixed({ removed_truncated: true }), a), false);
    const full = buildPayload({ cluster: 'c', generation: 5, list: next, diff: diffLists(list, next), nodes: 2, issuedAtMs: 0 }, a);
    const { signature: _f, ...fu } = full;
    assert.equal(verifyPayload(signPayload({ ...fu, base_digest: allowListDigest(list) } as unknown as typeof fu, a), a), false);
    assert.ok(!isDelta(full));
  });

  it('base_digest and digest must be well-formed; a delta without base_digest is a full payload without lists', () => {
    const { signature: _s, ...u } = d;
    const re = (extra: Record<string, unknown>) => signPayload({ ...u, ...extra }, a);
    for (const bad of ['', 'sha256:', `sha256:${'A'.repeat(64)}`, `sha1:${'0'.repeat(64)}`, `sha256:${'0'.repeat(63)}`, 7, null])
      assert.equal(verifyPayload(re({ base_digest: bad }), a), false, String(bad));
    assert.equal(verifyPayload(re({ digest: 'sha256:xyz' }), a), false);
    const { base_digest: _b, ...noBase } = u;
    assert.equal(verifyPayload(signPayload(noBase as unknown as UnsignedPayloadLike, a), a), false);
    assert.equal(verifyPayload({ ...d, added: [...d.added, '10.9.9.9'] }, a), false, 'a changed added list breaks the signature');
  });

  it('SIGNED_KEYS is the one list of signed keys: base_digest is in it, minions is not', () => {
    assert.ok((SIGNED_KEYS as readonly string[]).includes('base_digest'));
    assert.ok(!(SIGNED_KEYS as readonly string[]).includes('minions'));
    assert.ok(verifyPayload({ ...d, minions: ['m1'], _stamp: 'x' }, a));
  });

  it('the dry-run form of a delta verifies with no key', () => {
    assert.equal(verifyPayload(unsignedForLog(d), a), false);
    assert.equal(unsignedForLog(d).base_digest, d.base_digest);
  });
});

describe('chooseForm: full or delta', () => {
  const sized = (delta: number, full: number) => () => ({ delta, full });
  const ok = { enabled: true, publishedBefore: true, entries: 1000, minEntries: 256, sizes: sized(400, 30_000) };
  it('delta when every condition holds', () => assert.deepEqual(chooseForm(ok), { form: 'delta' }));
  it('full when publish.delta is off', () => assert.deepEqual(chooseForm({ ...ok, enabled: false }), { form: 'full', why: 'disabled' }));
  it('the sizes are asked for only when every other condition holds (the delta is built only then)', () => {
    let asked = 0;
    const counting = () => {
      asked += 1;
      return { delta: 1, full: 100 };
    };
    chooseForm({ ...ok, enabled: false, sizes: counting });
    chooseForm({ ...ok, publishedBefore: false, sizes: counting });
    chooseForm({ ...ok, entries: 1, sizes: counting });
    assert.equal(asked, 0);
    assert.deepEqual(chooseForm({ ...ok, sizes: counting }), { form: 'delta' });
    assert.equal(asked, 1);
  });
  it('full for the first publish of this process (or of this leadership)', () =>
    assert.deepEqual(chooseForm({ ...ok, publishedBefore: false }), { form: 'full', why: 'first' }));
  it('full below deltaMinEntries; exactly the minimum is enough', () => {
    assert.deepEqual(chooseForm({ ...ok, entries: 255 }), { form: 'full', why: 'small' });
    assert.deepEqual(chooseForm({ ...ok, entries: 256 }), { form: 'delta' });
    assert.deepEqual(chooseForm({ ...ok, entries: 0, minEntries: 0 }), { form: 'delta' });
  });
  it('full unless the delta is smaller than half of the full payload', () => {
    assert.deepEqual(chooseForm({ ...ok, sizes: sized(15_000, 30_000) }), { form: 'full', why: 'not-smaller' });
    assert.deepEqual(chooseForm({ ...ok, sizes: sized(14_999, 30_000) }), { form: 'delta' });
    assert.deepEqual(chooseForm({ ...ok, sizes: sized(40_000, 30_000) }), { form: 'full', why: 'not-smaller' });
  });
  it('a one-node change at 5,000 dual-stack nodes: the delta is under 4 KiB and chosen', () => {
    const ipv4 = Array.from({ length: 5000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${100 + (i % 100)}`);
    const ipv6 = Array.from({ length: 5000 }, (_, i) => `fd00:1234:5678:${i.toString(16)}::abcd:${i.toString(16)}`);
    const before = { ipv4: [...new Set(ipv4)].sort(), ipv6: [...new Set(ipv6)].sort() };
    const after = { ipv4: [...before.ipv4, '10.250.0.1'].sort(), ipv6: [...before.ipv6, 'fd00:1234:5678:ffff::abcd:1'].sort() };
    const full = buildPayload({ cluster: 'prod', generation: 2, list: after, diff: diffLists(before, after), nodes: 5001, issuedAtMs: 0 }, a);
    const delta = buildDeltaPayload({ cluster: 'prod', generation: 2, base: before, list: after, nodes: 5001, issuedAtMs: 0 }, a);
    assert.ok(payloadBytes(delta) < 4096, `${payloadBytes(delta)} bytes`);
    assert.ok(payloadBytes(full) > 200 * 1024, `${payloadBytes(full)} bytes`);
    const choice = chooseForm({ ...ok, entries: 10_002, sizes: () => ({ delta: payloadBytes(delta), full: payloadBytes(full) }) });
    assert.deepEqual(choice, { form: 'delta' });
  });
});

type UnsignedPayloadLike = Parameters<typeof signPayload>[0];

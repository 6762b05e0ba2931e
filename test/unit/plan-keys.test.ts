// Ed25519 keys (src/plan/keys.ts): text normalisation as docs/event-contract.md "Keys" defines it,
// key ids, Signer/Verifier behaviour, and that the private key never shows. The shared vectors
// (plan-payload.test.ts) pin the same rules for the minions.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { generateSeed, keyIdOf, parseKeyText, signerFromSeed, verifierFromPublicKey } from '../../src/plan/index.ts';

const seed = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const hex = seed.toString('hex');
const b64 = seed.toString('base64');
const rawX = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xe0 + i));

type Case = [name: string, text: string | Buffer, raw: Buffer | RegExp];
const CASES: Case[] = [
  ['64 hex digits', hex, seed],
  ['upper-case hex', hex.toUpperCase(), seed],
  ['base64 with padding', b64, seed],
  ['base64 without padding', b64.slice(0, -1), seed],
  ['URL-safe base64 without padding', rawX.toString('base64url'), rawX],
  ['URL-safe base64 with padding', `${rawX.toString('base64url')}=`, rawX],
  ['trailing LF (a file)', `${b64}\n`, seed],
  ['CRLF and spaces around it', `  \t${hex}\r\n`, seed],
  ['a Buffer of ASCII', Buffer.from(`${b64}\n`), seed],
  ['CHANGE-ME', 'CHANGE-ME', /not valid base64 \(9 characters/],
  ['31 bytes', seed.subarray(1).toString('base64'), /base64 of 31 bytes, not 32/],
  ['33 bytes', Buffer.concat([seed, seed.subarray(0, 1)]).toString('base64'), /33 bytes, not 32/],
  ['62 hex digits', hex.slice(2), /62 hex digits, not 64/],
  ['empty', '', /^empty;/],
  ['only whitespace', ' \n\r\n\t', /^empty;/],
  ['inner space', `${hex.slice(0, 10)} ${hex.slice(10)}`, /whitespace inside the key \(offset 10/],
  ['inner newline (wrapped base64)', `${b64.slice(0, 20)}\n${b64.slice(20)}`, /whitespace inside/],
  ['a non-ASCII byte (Buffer)', Buffer.concat([Buffer.from(b64.slice(0, 5)), Buffer.from([0xff]), Buffer.from(b64.slice(6))]), /not ASCII text \(offset 5/],
  ['UTF-8 BOM (Buffer)', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(b64)]), /not ASCII text \(offset 0/],
  ['a non-ASCII character (string, e.g. U+FFFD from a decoded binary file)', `${b64.slice(0, 3)}\ufffd${b64.slice(4)}`, /not ASCII/],
  ['a quote', `"${b64}"`, /neither hex nor base64 \(unexpected character at offset 0\)/],
  ['a form feed at the end', `${b64}\f`, /neither hex nor base64/],
  ['padding in the middle', `${b64.slice(0, 8)}=${b64.slice(8)}`, /neither hex nor base64 \(unexpected character at offset 8\)/],
  ['too much padding', `${b64}=`, /not valid base64 \(43 characters with 2 "="\)/],
];

describe('parseKeyText', () => {
  for (const [name, text, want] of CASES) {
    it(`${want instanceof RegExp ? 'refuses' : 'accepts'} ${name}`, () => {
      const r = parseKeyText(text);
      if (want instanceof RegExp) {
        assert.equal(r.ok, false);
        assert.match(r.reason, want);
        assert.match(r.reason, /kube-salt-bridge keygen/, 'says how to make a good one');
      } else {
        assert.ok(r.ok, r.ok ? '' : r.reason);
        assert.deepEqual(r.raw, want);
      }
    });
  }

  it('a reason never quotes the text', () => {
    const secretish = `${hex.slice(0, 40)} ${hex.slice(40)}`;
    for (const t of [secretish, `${b64}==`, `x${b64}`, `${b64}\u00e9`]) {
      const r = parseKeyText(t);
      assert.equal(r.ok, false);
      for (let i = 0; i + 8 <= t.length; i++) assert.ok(!r.reason.includes(t.slice(i, i + 8)), `reason quotes part of the text: ${r.reason}`);
    }
  });
});

describe('key ids', () => {
  it('are the first 8 bytes of SHA-256 of the raw public key, as 16 lower-case hex digits', () => {
    const s = signerFromSeed(seed);
    const raw = Buffer.from(s.publicKey, 'base64');
    assert.equal(raw.length, 32);
    assert.equal(keyIdOf(raw), createHash('sha256').update(raw).digest('hex').slice(0, 16));
    assert.equal(s.keyId, keyIdOf(raw));
    assert.match(s.keyId, /^[0-9a-f]{16}$/);
  });
});

describe('Signer and Verifier', () => {
  const s = signerFromSeed(seed);
  const v = verifierFromPublicKey(Buffer.from(s.publicKey, 'base64'));
  const sig = s.sign('{"a":1}');

  it('sign is deterministic and the public key alone verifies', () => {
    assert.equal(s.sign('{"a":1}'), sig);
    assert.match(sig, /^ed25519:[A-Za-z0-9+/]{86}==$/);
    assert.equal(v.verify('{"a":1}', sig), true);
    assert.equal(s.verify('{"a":1}', sig), true);
    assert.equal(v.verify('{"a":2}', sig), false);
    assert.equal(signerFromSeed(generateSeed()).verify('{"a":1}', sig), false);
  });

  it('refuses any other text of the signature', () => {
    const body = sig.slice('ed25519:'.length);
    for (const bad of [body, `ED25519:${body}`, `ed25519:${body.replace(/=+$/, '')}`, `${sig} `, `ed25519: ${body}`, 'ed25519:', '', `hmac-sha256:${body}`]) {
      assert.equal(v.verify('{"a":1}', bad), false, bad);
    }
    assert.equal(v.verify('{"a":1}', 42 as unknown as string), false);
  });

  it('JSON, inspect and template strings show the key id and public key, never the seed', () => {
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions, @typescript-eslint/no-base-to-string -- what a careless template or String() shows is the point
    for (const text of [JSON.stringify(s), JSON.stringify({ signing: { signer: s } }), inspect(s, { depth: 5, showHidden: true }), `${s}`, String(s)]) {
      assert.ok(!text.includes(hex) && !text.includes(b64) && !text.includes(b64.slice(0, 20)), text);
    }
    assert.deepEqual(JSON.parse(JSON.stringify(s)), { keyId: s.keyId, publicKey: s.publicKey });
    assert.deepEqual(Object.keys(s).sort(), ['keyId', 'publicKey']);
  });

  it('a seed that is not 32 bytes is a programming error', () => {
    assert.throws(() => signerFromSeed(seed.subarray(1)), RangeError);
    assert.throws(() => verifierFromPublicKey(Buffer.alloc(33)), RangeError);
  });

  it('generateSeed gives 32 fresh random bytes', () => {
    const x = generateSeed();
    assert.equal(x.length, 32);
    assert.notDeepEqual(x, generateSeed());
  });
});

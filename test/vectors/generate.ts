// Writes test/vectors/payloads-v2.json, the shared vectors of docs/event-contract.md (version 2),
// from fixed seeds (Ed25519 is deterministic, so the file is the same on every run):
//   node test/vectors/generate.ts          rewrite the file
//   node test/vectors/generate.ts --check  exit 1 if the file is not what this script writes
// test/unit/plan-payload.test.ts reproduces every vector with src/plan; the minions' tests
// (test/salt) reproduce them with the Python implementation.
import { readFileSync, writeFileSync } from 'node:fs';
import {
  allowListDigest,
  buildCheckPayload,
  buildDeltaPayload,
  buildPayload,
  canonicalForm,
  signerFromSeed,
  sortedCodePoint,
  type AllowList,
  type Signer,
} from '../../src/plan/index.ts';
import type { AllowListPayload, DeltaPayload } from '../../src/seams.ts';

const OUT = new URL('./payloads-v2.json', import.meta.url);

const seedA = Buffer.from(Array.from({ length: 32 }, (_, i) => i)); // 00 01 … 1f
const seedB = Buffer.from(Array.from({ length: 32 }, (_, i) => 32 + i)); // 20 21 … 3f
const signers: Record<string, Signer> = { a: signerFromSeed(seedA), b: signerFromSeed(seedB) };
const seeds: Record<string, Buffer> = { a: seedA, b: seedB };

type Json = Record<string, unknown>;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const asJson = (p: AllowListPayload | DeltaPayload): Json => clone(p) as unknown as Json;

// ---- payloads that verify --------------------------------------------------------------------

interface Parts {
  name: string;
  key: string;
  cluster: string;
  generation: number;
  ipv4: string[];
  ipv6: string[];
  added: string[];
  removed: string[];
  truncated?: { added?: boolean; removed?: boolean };
  nodes: number;
  issuedAtMs: number;
}

const PARTS: Parts[] = [
  {
    name: 'first publish, dual stack, a pod network',
    key: 'a',
    cluster: 'prod',
    generation: 1795307097725,
    ipv4: ['10.0.0.10', '10.0.0.2', '10.244.0.0/16'],
    ipv6: ['fd00::2', 'fd00::a'],
    added: ['10.0.0.10', '10.0.0.2', '10.244.0.0/16', 'fd00::2', 'fd00::a'],
    removed: [],
    nodes: 2,
    issuedAtMs: Date.UTC(2026, 10, 22, 10, 0, 0, 0),
  },
  {
    name: 'a change whose added and removed lists the cap cut (the flags are signed; the lists kept short here)',
    key: 'a',
    cluster: 'edge-1',
    generation: 1795307100001,
    ipv4: ['192.0.2.1', '192.0.2.2'],
    ipv6: [],
    added: ['192.0.2.1', '192.0.2.2'],
    removed: ['192.0.2.9'],
    truncated: { added: true, removed: true },
    nodes: 2,
    issuedAtMs: Date.UTC(2026, 10, 22, 10, 0, 1, 500),
  },
  {
    name: 'IPv6 only: compressed lower-case hosts and networks, code-point order',
    key: 'a',
    cluster: 'v6-only',
    generation: 1795307200000,
    ipv4: [],
    ipv6: sortedCodePoint(['2001:db8::1', '2001:db8:0:1::/64', 'fd00:1234:5678::/48', 'fd00::a']),
    added: ['fd00::a'],
    removed: ['2001:db8::2'],
    nodes: 3,
    issuedAtMs: Date.UTC(2026, 10, 22, 10, 0, 2, 7),
  },
  {
    name: 'empty lists (a cluster whose last node left, allowEmpty)',
    key: 'a',
    cluster: 'empty',
    generation: 7,
    ipv4: [],
    ipv6: [],
    added: [],
    removed: ['10.1.1.1'],
    nodes: 0,
    issuedAtMs: Date.UTC(2026, 10, 22, 10, 0, 3, 0),
  },
  {
    name: 'signed by the second key (a minion picks the public key whose id is key_id)',
    key: 'b',
    cluster: 'prod',
    generation: 1795307097726,
    ipv4: ['10.0.0.10', '10.0.0.2', '10.244.0.0/16'],
    ipv6: ['fd00::2', 'fd00::a'],
    added: [],
    removed: [],
    nodes: 2,
    issuedAtMs: Date.UTC(2026, 10, 22, 10, 0, 4, 0),
  },
];

function build(p: Parts): AllowListPayload {
  return buildPayload(
    {
      cluster: p.cluster,
      generation: p.generation,
      list: { ipv4: p.ipv4, ipv6: p.ipv6 },
      diff: {
        added: p.added,
        removed: p.removed,
        added_truncated: p.truncated?.added ?? false,
        removed_truncated: p.truncated?.removed ?? false,
        addedCount: p.added.length,
        removedCount: p.removed.length,
      },
      nodes: p.nodes,
      issuedAtMs: p.issuedAtMs,
    },
    signers[p.key]!,
  );
}

const payloads = PARTS.map((p) => {
  const payload = build(p);
  const { signature, ...unsigned } = payload;
  return {
    name: p.name,
    key: p.key,
    tag: `kube-salt-bridge/cluster/${p.cluster}/nodes`,
    canonical: canonicalForm(unsigned),
    digest: allowListDigest(payload),
    signature,
    payload,
  };
});

// ---- the delta form ---------------------------------------------------------------------------

interface DeltaParts {
  name: string;
  key: string;
  cluster: string;
  generation: number;
  base: AllowList;
  result: AllowList;
  nodes: number;
  issuedAtMs: number;
  /** The check form: base and result are the same list, signed at resync time. */
  check?: boolean;
}

const first = PARTS[0]!;
const DELTA_PARTS: DeltaParts[] = [
  {
    name: 'delta: a node joins (an IPv4 and an IPv6 address, in one added list) and another leaves',
    key: 'a',
    cluster: first.cluster,
    generation: first.generation + 75,
    base: { ipv4: first.ipv4, ipv6: first.ipv6 },
    result: { ipv4: sortedCodePoint(['10.0.0.2', '10.0.0.3', '10.244.0.0/16']), ipv6: sortedCodePoint(['fd00::2', 'fd00::3', 'fd00::a']) },
    nodes: 2,
    issuedAtMs: Date.UTC(2026, 10, 22, 10, 0, 5, 0),
  },
  {
    name: 'check form of a published generation: base_digest is digest, nothing added or removed',
    key: 'a',
    cluster: first.cluster,
    generation: first.generation,
    base: { ipv4: first.ipv4, ipv6: first.ipv6 },
    result: { ipv4: first.ipv4, ipv6: first.ipv6 },
    nodes: first.nodes,
    issuedAtMs: Date.UTC(2026, 10, 22, 10, 10, 0, 0),
    check: true,
  },
];

function buildDelta(d: DeltaParts): DeltaPayload {
  const signer = signers[d.key]!;
  if (d.check) {
    return buildCheckPayload(
      { cluster: d.cluster, generation: d.generation, digest: allowListDigest(d.result), nodes: d.nodes, issuedAtMs: d.issuedAtMs },
      signer,
    );
  }
  return buildDeltaPayload({ cluster: d.cluster, generation: d.generation, base: d.base, list: d.result, nodes: d.nodes, issuedAtMs: d.issuedAtMs }, signer);
}

const deltas = DELTA_PARTS.map((d) => {
  const payload = buildDelta(d);
  const { signature, ...unsigned } = payload;
  return {
    name: d.name,
    key: d.key,
    tag: `kube-salt-bridge/cluster/${d.cluster}/nodes`,
    base: { ipv4: [...d.base.ipv4], ipv6: [...d.base.ipv6], digest: allowListDigest(d.base) },
    result: { ipv4: [...d.result.ipv4], ipv6: [...d.result.ipv6], digest: allowListDigest(d.result) },
    canonical: canonicalForm(unsigned),
    signature,
    payload,
  };
});

// ---- key text normalisation --------------------------------------------------------------------

const rawX = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xe0 + i)); // base64 uses + and /
const b64 = (b: Buffer) => b.toString('base64');
const url = (b: Buffer) => b.toString('base64url');
const hex = (b: Buffer) => b.toString('hex');
/** Flips the low bits of the last data character of a 32-byte base64 text: same bytes, other text. */
function trailingBits(text: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const i = text.replace(/=+$/, '').length - 1;
  return text.slice(0, i) + alphabet[alphabet.indexOf(text[i]!) | 0b11] + text.slice(i + 1);
}

interface KeyCase {
  name: string;
  text: string | Buffer;
  raw?: Buffer;
  why?: string;
}
const pemOfA = `-----BEGIN PRIVATE KEY-----\n${b64(Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seedA]))}\n-----END PRIVATE KEY-----\n`;
const KEY_TEXT: KeyCase[] = [
  { name: 'hex, lower case', text: hex(seedA), raw: seedA },
  { name: 'hex, upper case, trailing newline', text: `${hex(seedA).toUpperCase()}\n`, raw: seedA },
  { name: 'base64, padded, trailing newline (what keygen writes)', text: `${b64(seedA)}\n`, raw: seedA },
  { name: 'base64 without padding', text: b64(rawX).replace(/=+$/, ''), raw: rawX },
  { name: 'base64 with + and /', text: b64(rawX), raw: rawX },
  { name: 'URL-safe base64, padded', text: url(rawX) + '=', raw: rawX },
  { name: 'URL-safe base64 without padding', text: url(rawX), raw: rawX },
  { name: 'both alphabets mixed', text: b64(rawX).replace('+', '-'), raw: rawX },
  { name: 'spaces, tabs and CRLF around it', text: ` \t${b64(seedB)}\r\n\r\n`, raw: seedB },
  { name: 'a CRLF file of hex', text: `${hex(seedB)}\r\n`, raw: seedB },
  { name: 'non-zero trailing bits in the last base64 character are ignored, as base64 decoders do', text: trailingBits(b64(seedA)), raw: seedA },
  { name: 'a placeholder', text: 'CHANGE-ME', why: 'not valid base64 (9 characters)' },
  { name: 'a placeholder with a newline', text: 'CHANGE-ME\n', why: 'not valid base64' },
  { name: 'empty', text: '', why: 'empty' },
  { name: 'only whitespace', text: ' \r\n\t\n', why: 'empty after trimming' },
  { name: '31 bytes as base64', text: b64(seedA.subarray(1)), why: '31 bytes' },
  { name: '33 bytes as base64', text: b64(Buffer.concat([seedA, Buffer.from([0])])), why: '33 bytes' },
  { name: '31 bytes as hex (62 digits)', text: hex(seedA.subarray(1)), why: 'neither 64 hex digits nor base64 of 32 bytes' },
  { name: '65 hex digits', text: `${hex(seedA)}0`, why: 'neither 64 hex digits nor base64 of 32 bytes' },
  { name: '0x-prefixed hex', text: `0x${hex(seedA)}`, why: 'neither 64 hex digits nor base64 of 32 bytes' },
  { name: 'too much padding', text: `${b64(seedA)}=`, why: 'bad base64 padding' },
  { name: 'padding in the middle', text: `${b64(seedA).slice(0, 20)}=${b64(seedA).slice(20, 43)}`, why: 'bad base64' },
  { name: 'whitespace inside (hex split in two)', text: `${hex(seedA).slice(0, 32)} ${hex(seedA).slice(32)}`, why: 'whitespace inside' },
  { name: 'a newline inside (base64 wrapped)', text: `${b64(seedA).slice(0, 22)}\n${b64(seedA).slice(22)}\n`, why: 'whitespace inside' },
  { name: "a PEM private key (not the contract's text form)", text: pemOfA, why: 'whitespace inside / not hex or base64' },
  { name: 'quoted', text: `"${b64(seedA)}"`, why: 'a character outside hex and base64' },
  { name: 'a form feed at the end (only space, tab, CR and LF are trimmed)', text: `${b64(seedA)}\f`, why: 'a character outside hex and base64' },
  { name: 'a NUL at the end', text: `${b64(seedA)}\0`, why: 'a character outside hex and base64' },
  { name: 'UTF-8 byte order mark before valid base64', text: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(b64(seedA))]), why: 'not ASCII' },
  {
    name: 'a Latin-1 byte inside',
    text: Buffer.concat([Buffer.from(b64(seedA).slice(0, 10)), Buffer.from([0xe9]), Buffer.from(b64(seedA).slice(11))]),
    why: 'not ASCII',
  },
  { name: 'the raw 32 bytes as a binary file', text: rawX, why: 'not ASCII' },
  { name: 'the raw 32 bytes of a seed that happen to be ASCII control characters', text: seedA, why: 'not hex or base64' },
];

const keyText = KEY_TEXT.map((k) => ({
  name: k.name,
  text_b64: b64(Buffer.isBuffer(k.text) ? k.text : Buffer.from(k.text, 'latin1')),
  ok: k.raw !== undefined,
  ...(k.raw !== undefined ? { raw_hex: hex(k.raw) } : { why: k.why }),
}));

// ---- verification: what verifies with which key ------------------------------------------------

const base = payloads[0]!.payload;
const delta = deltas[0]!.payload;
/** Re-signs a modified payload with key `k` exactly as given (key_id included): the signature is genuine. */
function resign(p: Json, k: string): Json {
  const { signature: _s, minions: _m, ...u } = p;
  return { ...p, signature: signers[k]!.sign(canonicalForm(u as unknown as AllowListPayload)) };
}
const withSig = (sig: string): Json => ({ ...clone(base), signature: sig });
const sigBytes = () => Buffer.from(base.signature.slice('ed25519:'.length), 'base64');

const L = (1n << 252n) + 27742317777372353535851937790883648493n;
function malleated(): string {
  const sig = sigBytes();
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += L;
  for (let i = 32; i < 64; i++) {
    sig[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return `ed25519:${b64(sig)}`;
}
const withPlusOrSlash = payloads.find((p) => /[+/]/.test(p.signature))!;

/** A genuine version 1 payload (HMAC-SHA256 with the key "test-signing-key", a target): refused by version 2. */
const v1: Json = {
  version: 1,
  cluster: 'prod',
  generation: 1,
  ipv4: ['10.0.0.10', '10.0.0.2', '10.244.0.0/16'],
  ipv6: ['fd00::2', 'fd00::a'],
  added: ['10.0.0.10', '10.0.0.2', '10.244.0.0/16', 'fd00::2', 'fd00::a'],
  removed: [],
  nodes: 2,
  target: 'I@kube_allowlist:clusters:prod',
  issued_at: '2026-11-22T10:00:00.000Z',
  digest: 'sha256:b2fb1356f108e56bd54aa7f06abc35ca5519b3be16c544402c0583ed5540b63e',
  signature: 'hmac-sha256:4dc6dad81e4d4bc537500d4987d14da9dfa97d9ff70142cfaa8d97b4cf3c871e',
};

interface VerifyCase {
  name: string;
  payload: Json;
  verifies_with: string[];
}
const VERIFY: VerifyCase[] = [
  { name: 'as signed', payload: asJson(base), verifies_with: ['a'] },
  {
    name: 'keys Salt adds to event data (_stamp, __pub_*) are not signed',
    payload: { ...clone(base), _stamp: '2026-11-22T10:00:00.123456', __pub_user: 'x' },
    verifies_with: ['a'],
  },
  { name: 'the unsigned minions hint is not signed', payload: { ...clone(base), minions: ['minion-1'] }, verifies_with: ['a'] },
  { name: 'signed by the second key', payload: asJson(payloads[4]!.payload), verifies_with: ['b'] },
  { name: 'generation changed', payload: { ...clone(base), generation: base.generation + 1 }, verifies_with: [] },
  { name: 'cluster changed', payload: { ...clone(base), cluster: 'prod2' }, verifies_with: [] },
  {
    name: 'an entry added to ipv4 and the digest recomputed',
    payload: (() => {
      const p = clone(base);
      p.ipv4 = sortedCodePoint([...p.ipv4, '10.0.0.99']);
      p.digest = allowListDigest(p);
      return p;
    })(),
    verifies_with: [],
  },
  { name: 'added_truncated added', payload: { ...clone(base), added_truncated: true }, verifies_with: [] },
  { name: 'issued_at changed', payload: { ...clone(base), issued_at: '2026-11-22T10:00:00.001Z' }, verifies_with: [] },
  { name: 'signed, but the digest does not match the lists', payload: resign({ ...clone(base), ipv4: ['10.9.9.9'] }, 'a'), verifies_with: [] },
  { name: 'key_id of the second key on a payload signed by the first', payload: { ...clone(base), key_id: signers.b!.keyId }, verifies_with: [] },
  { name: 'key_id of the second key, signed by the first', payload: resign({ ...clone(base), key_id: signers.b!.keyId }, 'a'), verifies_with: [] },
  { name: 'key_id in upper case, signed', payload: resign({ ...clone(base), key_id: signers.a!.keyId.toUpperCase() }, 'a'), verifies_with: [] },
  { name: 'a key_id no key has, signed', payload: resign({ ...clone(base), key_id: '0000000000000000' }, 'a'), verifies_with: [] },
  { name: 'key_id missing, signed', payload: resign((({ key_id: _k, ...p }) => p)(clone(base)), 'a'), verifies_with: [] },
  { name: 'version 1 (HMAC, target)', payload: clone(v1), verifies_with: [] },
  { name: 'version 1 with an Ed25519 signature', payload: resign({ ...clone(base), version: 1 }, 'a'), verifies_with: [] },
  { name: 'version 3, signed', payload: resign({ ...clone(base), version: 3 }, 'a'), verifies_with: [] },
  { name: 'version as a string, signed', payload: resign({ ...clone(base), version: '2' }, 'a'), verifies_with: [] },
  { name: 'nodes as a boolean, signed (a bool is not an int)', payload: resign({ ...clone(base), nodes: true }, 'a'), verifies_with: [] },
  { name: 'generation as a string, signed', payload: resign({ ...clone(base), generation: String(base.generation) }, 'a'), verifies_with: [] },
  { name: 'cluster not a DNS label, signed', payload: resign({ ...clone(base), cluster: 'Prod_1' }, 'a'), verifies_with: [] },
  { name: 'issued_at missing, signed', payload: resign((({ issued_at: _i, ...p }) => p)(clone(base)), 'a'), verifies_with: [] },
  { name: 'removed missing, signed', payload: resign((({ removed: _r, ...p }) => p)(clone(base)), 'a'), verifies_with: [] },
  { name: 'the signature of another payload', payload: withSig(payloads[1]!.signature), verifies_with: [] },
  { name: 'signature missing', payload: (({ signature: _s, ...p }) => p)(clone(base)), verifies_with: [] },
  { name: 'version 1 signature prefix', payload: withSig(base.signature.replace('ed25519:', 'hmac-sha256:')), verifies_with: [] },
  { name: 'no prefix', payload: withSig(base.signature.slice('ed25519:'.length)), verifies_with: [] },
  { name: 'prefix in upper case', payload: withSig(base.signature.replace('ed25519:', 'ED25519:')), verifies_with: [] },
  { name: 'base64 without padding', payload: withSig(base.signature.replace(/=+$/, '')), verifies_with: [] },
  {
    name: 'URL-safe base64',
    payload: { ...clone(withPlusOrSlash.payload), signature: withPlusOrSlash.signature.replace(/\+/g, '-').replace(/\//g, '_') },
    verifies_with: [],
  },
  {
    name: 'non-canonical base64 (non-zero trailing bits, same 64 bytes)',
    payload: withSig(`ed25519:${trailingBits(base.signature.slice('ed25519:'.length))}`),
    verifies_with: [],
  },
  { name: 'whitespace after the signature', payload: withSig(`${base.signature}\n`), verifies_with: [] },
  { name: 'S + L (the malleable second encoding of the same signature)', payload: withSig(malleated()), verifies_with: [] },
  { name: 'truncated to 63 bytes', payload: withSig(`ed25519:${b64(sigBytes().subarray(0, 63))}`), verifies_with: [] },
  {
    name: 'one bit flipped',
    payload: withSig(
      `ed25519:${b64(
        (() => {
          const s = sigBytes();
          s[10]! ^= 1;
          return s;
        })(),
      )}`,
    ),
    verifies_with: [],
  },
  { name: 'all zeros', payload: withSig(`ed25519:${b64(Buffer.alloc(64))}`), verifies_with: [] },
  { name: 'delta, as signed', payload: asJson(delta), verifies_with: ['a'] },
  {
    name: 'delta with the unsigned minions hint and _stamp',
    payload: { ...clone(delta), minions: ['minion-1'], _stamp: '2026-11-22T10:00:05.123456' },
    verifies_with: ['a'],
  },
  { name: 'check form, as signed', payload: asJson(deltas[1]!.payload), verifies_with: ['a'] },
  { name: 'delta with ipv4 present (the forms mixed), signed', payload: resign({ ...clone(delta), ipv4: deltas[0]!.result.ipv4 }, 'a'), verifies_with: [] },
  { name: 'delta with ipv6 present (the forms mixed), signed', payload: resign({ ...clone(delta), ipv6: deltas[0]!.result.ipv6 }, 'a'), verifies_with: [] },
  {
    name: 'delta with added_truncated, signed (a delta is never truncated)',
    payload: resign({ ...clone(delta), added_truncated: true }, 'a'),
    verifies_with: [],
  },
  {
    name: 'delta with removed_truncated false, signed (the key has no place in a delta)',
    payload: resign({ ...clone(delta), removed_truncated: false }, 'a'),
    verifies_with: [],
  },
  {
    name: 'delta whose base_digest is malformed (upper-case hex), signed',
    payload: resign({ ...clone(delta), base_digest: delta.base_digest.toUpperCase().replace('SHA256:', 'sha256:') }, 'a'),
    verifies_with: [],
  },
  {
    name: 'delta whose base_digest has no sha256: prefix, signed',
    payload: resign({ ...clone(delta), base_digest: delta.base_digest.slice('sha256:'.length) }, 'a'),
    verifies_with: [],
  },
  { name: 'delta whose base_digest is not a string, signed', payload: resign({ ...clone(delta), base_digest: null }, 'a'), verifies_with: [] },
  {
    name: 'delta whose digest is malformed (63 hex digits), signed',
    payload: resign({ ...clone(delta), digest: delta.digest.slice(0, -1) }, 'a'),
    verifies_with: [],
  },
  { name: 'delta whose added list changed after signing', payload: { ...clone(delta), added: [...delta.added, '10.0.0.4'].sort() }, verifies_with: [] },
  { name: 'delta whose base_digest changed after signing', payload: { ...clone(delta), base_digest: deltas[0]!.result.digest }, verifies_with: [] },
  {
    name: 'delta without base_digest (a full payload without lists), signed',
    payload: resign((({ base_digest: _b, ...p }) => p)(clone(delta)), 'a'),
    verifies_with: [],
  },
];

const doc = {
  comment:
    'Shared vectors of docs/event-contract.md, version 2. Generated by test/vectors/generate.ts (Ed25519 is deterministic). ' +
    'keys: fixed seeds and what derives from them. payloads: canonical form, digest and signature that both sides must reproduce. ' +
    'key_text: file contents (base64 of the exact bytes) and the raw key they normalise to, or refusal. ' +
    'deltas: delta-form payloads (docs/event-contract.md, "Delta form") with the list they apply to (base) and the list that results (result), ' +
    'each with its digest; canonical form and signature as for payloads; the check form is a delta whose base and result are the same list. ' +
    'verify: for each payload, the keys (by name) with which it verifies; every other key refuses it.',
  version: 2,
  keys: Object.fromEntries(
    Object.entries(signers).map(([name, s]) => [
      name,
      {
        seed_hex: hex(seeds[name]!),
        private_text: b64(seeds[name]!),
        public_key: s.publicKey,
        public_hex: hex(Buffer.from(s.publicKey, 'base64')),
        key_id: s.keyId,
      },
    ]),
  ),
  payloads,
  deltas,
  key_text: keyText,
  verify: VERIFY,
};

const text = `${JSON.stringify(doc, null, 2)}\n`;
if (process.argv.includes('--check')) {
  const current = readFileSync(OUT, 'utf8');
  if (current !== text) {
    process.stderr.write('test/vectors/payloads-v2.json is not what test/vectors/generate.ts writes\n');
    process.exitCode = 1;
  }
} else {
  writeFileSync(OUT, text);
}

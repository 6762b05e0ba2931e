// Ed25519 keys as docs/event-contract.md ("Keys") defines them: 32 raw bytes, written as 64 hex
// digits or base64 (standard or URL-safe, padding optional), normalised identically by the bridge
// and the minions. node:crypto only; the private key never leaves the Signer object.

import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

export const KEY_BYTES = 32;
export const SIGNATURE_PREFIX = 'ed25519:';
const SIGNATURE_BYTES = 64;
/** PKCS#8 (RFC 8410) wrapping of a 32-byte Ed25519 seed: this prefix, then the seed. */
const PKCS8_SEED_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SubjectPublicKeyInfo of an Ed25519 public key: this prefix, then the 32 raw bytes. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export type KeyText = { ok: true; raw: Buffer } | { ok: false; reason: string };

const EDGE_WHITESPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;
const HEX = /^[0-9a-fA-F]{64}$/;
const BASE64 = /^([A-Za-z0-9+/_-]+)(={0,2})$/;
/** util.inspect's hook, without importing node:util into the pure core. */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');
const HINT = 'a key is 64 hex digits or the base64 of 32 bytes (kube-salt-bridge keygen writes one)';

/**
 * Parses a key's text (file content, environment variable, pillar value) into its 32 raw bytes.
 * The reason never quotes the text: it may be a private key.
 */
export function parseKeyText(text: string | Buffer): KeyText {
  const bad = (reason: string): KeyText => ({ ok: false, reason: `${reason}; ${HINT}` });
  const chars = typeof text === 'string' ? text : undefined;
  const length = chars !== undefined ? chars.length : (text as Buffer).length;
  for (let i = 0; i < length; i++) {
    const code = chars !== undefined ? chars.charCodeAt(i) : (text as Buffer)[i]!;
    if (code > 0x7f) return bad(`not ASCII text (offset ${i}; a binary file?)`);
  }
  const s = (chars ?? (text as Buffer).toString('latin1')).replace(EDGE_WHITESPACE, '');
  if (s === '') return bad('empty');
  const inner = /[ \t\r\n]/.exec(s);
  if (inner !== null) return bad(`whitespace inside the key (offset ${inner.index} after trimming)`);
  if (HEX.test(s)) return { ok: true, raw: Buffer.from(s, 'hex') };
  const m = BASE64.exec(s);
  if (m === null) {
    const at = /[^A-Za-z0-9+/_=-]|=(?=[^=])/.exec(s)?.index ?? 0;
    return bad(`neither hex nor base64 (unexpected character at offset ${at})`);
  }
  const data = m[1]!;
  const padding = m[2]!.length;
  if (data.length % 4 === 1 || (padding > 0 && (data.length + padding) % 4 !== 0)) {
    return bad(`not valid base64 (${data.length} characters with ${padding} "=")`);
  }
  const raw = Buffer.from(data.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (raw.length !== KEY_BYTES) {
    const hexish = /^[0-9a-fA-F]+$/.test(s) ? `${s.length} hex digits, not 64, and as base64 ` : 'base64 of ';
    return bad(`${hexish}${raw.length} bytes, not ${KEY_BYTES}`);
  }
  return { ok: true, raw };
}

/** The contract's key id: 16 lower-case hex digits, the first 8 bytes of SHA-256 of the raw public key. */
export function keyIdOf(publicRaw: Uint8Array): string {
  return createHash('sha256').update(publicRaw).digest().subarray(0, 8).toString('hex');
}

/** What checks a signature: the contract's key id and the public key (standard base64). */
export interface Verifier {
  readonly keyId: string;
  readonly publicKey: string;
  /** True only for `ed25519:` + standard padded base64 of a 64-byte signature of `message` by this key. */
  verify(message: string, signature: string): boolean;
}

/** The bridge's key. Holds the private key inside; JSON, inspect and template strings show only the public part. */
export interface Signer extends Verifier {
  /** `ed25519:` + standard base64 of the Ed25519 signature over the ASCII bytes of `message`. */
  sign(message: string): string;
}

class PublicVerifier implements Verifier {
  readonly keyId: string;
  readonly publicKey: string;
  readonly #public: KeyObject;

  constructor(publicKey: KeyObject) {
    const raw = rawPublic(publicKey);
    this.#public = publicKey;
    this.keyId = keyIdOf(raw);
    this.publicKey = raw.toString('base64');
  }

  verify(message: string, signature: string): boolean {
    const sig = decodeSignature(signature);
    if (sig === undefined) return false;
    try {
      return verify(null, Buffer.from(message, 'utf8'), this.#public, sig);
    } catch {
      return false;
    }
  }

  toString(): string {
    return `Ed25519 key ${this.keyId}`;
  }

  toJSON(): { keyId: string; publicKey: string } {
    return { keyId: this.keyId, publicKey: this.publicKey };
  }

  [INSPECT](): string {
    return `Ed25519 key ${this.keyId} (public ${this.publicKey})`;
  }
}

class SeedSigner extends PublicVerifier implements Signer {
  readonly #private: KeyObject;

  constructor(privateKey: KeyObject) {
    super(createPublicKey(privateKey));
    this.#private = privateKey;
  }

  sign(message: string): string {
    return SIGNATURE_PREFIX + sign(null, Buffer.from(message, 'utf8'), this.#private).toString('base64');
  }
}

/** The Signer of a 32-byte Ed25519 seed (RFC 8032 private key). */
export function signerFromSeed(seed: Uint8Array): Signer {
  if (seed.length !== KEY_BYTES) throw new RangeError(`an Ed25519 seed is ${KEY_BYTES} bytes, got ${seed.length}`);
  const der = Buffer.concat([PKCS8_SEED_PREFIX, seed]);
  try {
    return new SeedSigner(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  } finally {
    der.fill(0);
  }
}

/** A Verifier for a 32-byte raw Ed25519 public key (what minions hold). */
export function verifierFromPublicKey(publicRaw: Uint8Array): Verifier {
  if (publicRaw.length !== KEY_BYTES) throw new RangeError(`an Ed25519 public key is ${KEY_BYTES} bytes, got ${publicRaw.length}`);
  return new PublicVerifier(createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicRaw]), format: 'der', type: 'spki' }));
}

/** A new random private seed (for `kube-salt-bridge keygen`). */
export function generateSeed(): Buffer {
  return randomBytes(KEY_BYTES);
}

function rawPublic(key: KeyObject): Buffer {
  const spki = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(spki.subarray(spki.length - KEY_BYTES));
}

/** Strict: the prefix, standard alphabet, padding, 64 bytes, and the canonical encoding of them. */
function decodeSignature(signature: string): Buffer | undefined {
  if (typeof signature !== 'string' || !signature.startsWith(SIGNATURE_PREFIX)) return undefined;
  const b64 = signature.slice(SIGNATURE_PREFIX.length);
  if (!/^[A-Za-z0-9+/]{86}==$/.test(b64)) return undefined;
  const sig = Buffer.from(b64, 'base64');
  if (sig.length !== SIGNATURE_BYTES || sig.toString('base64') !== b64) return undefined;
  return sig;
}

// The bridge's Ed25519 key for tests, the demo and the benchmarks: a fixed seed per label, so a
// run is reproducible. The bridge gets `privateText` (its signing.keyFile), the minions'
// pillar gets `public_keys: [publicText]`.
import { createHash } from 'node:crypto';
import { signerFromSeed, type Signer } from '../../src/plan/index.ts';

export interface TestKeys {
  /** The private key as the bridge reads it: base64 of the 32-byte seed (what keygen writes). */
  readonly privateText: string;
  /** The same seed as 64 hex digits (another accepted text form; a secret too). */
  readonly privateHex: string;
  /** The public key as the minions' pillar holds it (standard base64). */
  readonly publicText: string;
  readonly keyId: string;
  /** Signs and verifies like the bridge does (verifyPayload(payload, keys.signer)). */
  readonly signer: Signer;
}

/** Keys from a fixed seed: SHA-256 of a label, so different labels give unrelated keys. */
export function testKeys(label = 'kube-salt-bridge tests'): TestKeys {
  const seed = createHash('sha256').update(label, 'utf8').digest();
  const signer = signerFromSeed(seed);
  return {
    privateText: seed.toString('base64'),
    privateHex: seed.toString('hex'),
    publicText: signer.publicKey,
    keyId: signer.keyId,
    signer,
  };
}

// `kube-salt-bridge keygen --out FILE`: a new Ed25519 private key for signing.keyFile (base64 of
// the 32-byte seed and a newline, mode 0600, never over an existing file), and what the minions
// need: the public key and its key id, as a pillar snippet. The private key is never printed.
import { closeSync, fchmodSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { generateSeed, signerFromSeed } from '../plan/index.ts';

export interface KeygenResult {
  readonly keyId: string;
  readonly publicKey: string;
}

/** A path keygen will not write (exit 2): it exists, or its directory does not. */
export class KeyFileRefused extends Error {
  override readonly name = 'KeyFileRefused';
}

/** Writes the key; throws KeyFileRefused when the path is unusable, other errors as they come. */
export function writeNewKey(path: string): KeygenResult {
  const seed = generateSeed();
  const signer = signerFromSeed(seed);
  const text = Buffer.from(`${seed.toString('base64')}\n`, 'ascii');
  seed.fill(0);
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new KeyFileRefused(`${path} exists; keygen never overwrites a key (choose another --out, or remove the file first)`);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new KeyFileRefused(`cannot create ${path}: its directory does not exist`);
    if (code === 'EISDIR') throw new KeyFileRefused(`${path} is a directory`);
    throw err;
  }
  try {
    fchmodSync(fd, 0o600); // whatever the umask
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(path);
    throw err;
  } finally {
    text.fill(0);
  }
  closeSync(fd);
  return { keyId: signer.keyId, publicKey: signer.publicKey };
}

/** What keygen prints (stdout): where the key went, the public key, its id, the pillar to add. */
export function describeNewKey(path: string, k: KeygenResult): string {
  return [
    `wrote a new Ed25519 private key to ${path} (mode 0600): keep it secret; it is the bridge's signing.keyFile`,
    `key id:     ${k.keyId}`,
    `public key: ${k.publicKey}`,
    '',
    'pillar for the protected minions (add it next to any key still in use while rotating):',
    'kube_allowlist:',
    '  public_keys:',
    `    - "${k.publicKey}"  # key id ${k.keyId}`,
    '',
  ].join('\n');
}

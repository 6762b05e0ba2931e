// Locating the real components. A real-stack test never skips: a missing component is an error
// that says what is missing and how to get it.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createServer } from 'node:net';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

export function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Returns the absolute path of each binary, or throws naming every one that is missing. */
export function requireTools(bins: string[]): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const b of bins) {
    const p = which(b);
    if (p) found[b] = p;
    else missing.push(b);
  }
  if (missing.length > 0) {
    throw new Error(
      `real-stack test cannot run: missing ${missing.join(', ')} on PATH. ` +
        'Run `bash scripts/setup.sh` (it builds kube-apiserver/etcd, creates the Salt virtualenv and installs ' +
        'iptables/ipset/nftables/iproute2/redis-server), and run tests through `bash scripts/test.sh`.',
    );
  }
  if (process.getuid?.() !== 0) throw new Error('real-stack test cannot run: network namespaces and firewalls need root');
  return found;
}

/** A free TCP port on 127.0.0.1 (released before return; good enough for sequential test files). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

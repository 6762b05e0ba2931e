// Persists, per cluster, the last published generation and digest so generations stay monotonic
// across restarts. Written atomically (temp file + fsync + rename).
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PublishedState {
  generation: number;
  digest: string;
  ipv4: string[];
  ipv6: string[];
  publishedAt: string;
}

export class StateStore {
  private readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private file(cluster: string): string {
    return join(this.dir, `${cluster}.json`);
  }

  load(cluster: string): PublishedState | undefined {
    try {
      const s = JSON.parse(readFileSync(this.file(cluster), 'utf8')) as PublishedState;
      if (!Number.isSafeInteger(s.generation) || typeof s.digest !== 'string') return undefined;
      return s;
    } catch {
      return undefined;
    }
  }

  save(cluster: string, state: PublishedState): void {
    const target = this.file(cluster);
    const tmp = `${target}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(state));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}

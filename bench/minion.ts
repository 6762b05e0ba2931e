// Part 3: runs bench/minion.py in the Salt venv's python on a 5,000-node payload built by the core.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_KEYS, buildFirstPublish } from './core.ts';
import type { Summary } from './stats.ts';

export interface MinionResult {
  nodes: number;
  python: string;
  entries: { ipv4: number; ipv6: number };
  payloadBytes: number;
  jsonLoadsMs: Summary;
  verifyMs: Summary;
  ipsetScriptMs: Summary;
  ipsetScriptBytes: number;
  ipsetScriptLines: number;
  planFirstMs: Summary;
  planFirstSteps: string[];
  planOneJoinMs: Summary;
  planOneJoinSteps: string[];
}

export function benchMinion(nodes: number, iterations: number): MinionResult {
  const dir = mkdtempSync(join(tmpdir(), 'ksb-bench-'));
  try {
    const file = join(dir, 'payload.json');
    writeFileSync(file, JSON.stringify(buildFirstPublish(nodes)));
    const python = process.env.KSB_VENV ? join(process.env.KSB_VENV, 'bin', 'python') : 'python3';
    const r = spawnSync(python, [join(import.meta.dirname, 'minion.py'), file, BENCH_KEYS.publicText, String(iterations)], {
      encoding: 'utf8',
      maxBuffer: 16 << 20,
    });
    if (r.status !== 0) throw new Error(`bench/minion.py exited ${r.status}: ${r.stderr}`);
    return { nodes, ...(JSON.parse(r.stdout) as Omit<MinionResult, 'nodes'>) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

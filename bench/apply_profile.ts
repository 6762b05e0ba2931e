// Where a minion apply job's CPU goes: bench/apply_profile.py in a network namespace of its own,
// per backend and list size, with payloads signed as the bridge signs them (one Node joining and
// leaving in turn, generations rising). No master: the python forks a job process per apply the
// way salt-minion does, and reads its CPU time (wait4).
//
//   node bench/apply_profile.ts [--sizes 100,1000,5000] [--backends ipset,nftables,iptables] [--iterations N] [--profile DIR]
//                               [--variants ';cmd.run_all'] (the module against a variant of itself, see apply_profile.py:
//                               cmd.run_all is how it ran its firewall commands before utils/command.py)
//
// Creates a network namespace: run it under flock /tmp/ksb-realstack.lock.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildPayload, diffLists, projectNodes, type ProjectionOptions } from '../src/plan/index.ts';
import { BENCH_KEYS, CLUSTER } from './core.ts';
import { nodeInfos } from './nodes.ts';
import { percentile } from './stats.ts';

const PROJECTION: ProjectionOptions = { addressTypes: ['InternalIP'], families: ['ipv4', 'ipv6'], podCIDRs: false, extraEntries: [] };

/** `count` payloads for `nodes` dual-stack Nodes, the last Node present in every other one. */
function series(nodes: number, count: number): string {
  const all = nodeInfos(nodes + 1);
  const without = new Map([...all].slice(0, nodes));
  const lines: string[] = [];
  let prev: ReturnType<typeof projectNodes> | undefined;
  for (let i = 0; i < count; i++) {
    const p = projectNodes((i % 2 ? all : without).values(), PROJECTION);
    const payload = buildPayload(
      { cluster: CLUSTER, generation: Date.now() + i, list: p, diff: diffLists(prev, p), nodes: p.nodes, issuedAtMs: Date.now() },
      BENCH_KEYS.signer,
    );
    prev = p;
    lines.push(JSON.stringify(payload));
  }
  return lines.join('\n') + '\n';
}

function main(): void {
  const { values: a } = parseArgs({
    options: {
      sizes: { type: 'string', default: '100,1000,5000' },
      backends: { type: 'string', default: 'ipset,nftables,iptables' },
      iterations: { type: 'string', default: '10' },
      profile: { type: 'string' },
      variants: { type: 'string', default: '' },
    },
    strict: true,
  });
  const python = process.env.KSB_VENV ? join(process.env.KSB_VENV, 'bin', 'python') : 'python3';
  const dir = mkdtempSync(join(tmpdir(), 'ksb-apply-profile-'));
  const ns = `ksb-prof-${process.pid}`;
  const must = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  must('ip', ['netns', 'add', ns]);
  try {
    must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    const rows: string[] = [];
    for (const size of a.sizes.split(',').map(Number)) {
      const file = join(dir, `payloads-${size}.jsonl`);
      writeFileSync(file, series(Math.ceil(size / 2), Number(a.iterations) + 1));
      for (const backend of a.backends.split(',')) {
        for (const variant of a.variants.split(';')) {
          const args = [join(import.meta.dirname, 'apply_profile.py'), BENCH_KEYS.publicText, backend, file];
          if (a.profile) args.push('--profile', join(a.profile, `${backend}-${size}${variant ? `-${variant}` : ''}`));
          if (variant) args.push('--variant', variant);
          const r = spawnSync('ip', ['netns', 'exec', ns, python, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
          if (r.status !== 0) throw new Error(`apply_profile.py ${backend} ${size}: ${r.stderr.slice(-3000)}`);
          const out = JSON.parse(r.stdout) as { entries: number; cpuMs: number[]; lookupMs: number[]; callMs: number[] };
          const p = (v: number[], q: number) => percentile(v, q).toFixed(1);
          rows.push(
            `| ${backend} | ${variant || 'as is'} | ${out.entries} | ${p(out.cpuMs, 50)} | ${p(out.cpuMs, 95)} | ${p(out.lookupMs, 50)} | ${p(out.callMs, 50)} | ${out.cpuMs.length} |`,
          );
          console.log(rows.at(-1));
        }
      }
    }
    console.log(
      [
        '',
        '| backend | variant | entries | job CPU p50 ms | p95 | module lookup (load) wall p50 ms | apply call wall p50 ms | n |',
        '|---|---|---|---|---|---|---|---|',
        ...rows,
      ].join('\n'),
    );
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main();

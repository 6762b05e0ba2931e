// Scale: the bridge process (`run --dry-run`) against a real kube-apiserver holding N realistic
// Nodes (50 images, 5 conditions, dual-stack: about 13.7 KB of JSON each as the apiserver serves
// them). Measured from outside, on the process: its RSS (sampled from /proc every 20 ms, and the
// kernel's high-water mark VmHWM), the time from spawn to the first full output (the dry run's
// "would fire" line for all N nodes), and the RSS once idle. Also the RSS of a plain node and of
// node after importing @kubernetes/client-node, for comparison.
//
//   npm run bench -- scale [--nodes N] [--runs R] [--idle-ms MS] [--bridge-root DIR [--bridge-commit C]]
//                          [--baseline-root DIR [--baseline-commit C]] [--no-write]
//
// --bridge-root runs the bridge of another checkout than this one; --baseline-root also runs the
// bridge of a second checkout (e.g. `git archive` of an older commit, with node_modules linked),
// its runs alternating with the other's on the same apiserver, for before/after figures under the
// same load. --*-commit names a checkout that is no git work tree. Heavy at 5,000 nodes: run it under the real-stack
// lock (flock /tmp/ksb-realstack.lock).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startKube, type KubeCluster } from '../test/harness/kube.ts';
import { writeBridgeConfig } from '../test/harness/bridge.ts';
import type { SaltStack } from '../test/harness/salt.ts';
import { sleep, stopInOrder } from '../test/harness/proc.ts';
import { ROOT } from '../test/harness/tools.ts';
import { testKeys } from '../test/harness/keys.ts';
import { kubeNode, MAX_IMAGES } from './nodes.ts';
import { summarize, type Summary } from './stats.ts';

const CLUSTER = 'scale';
const MiB = 2 ** 20;

export interface ScaleRun {
  /** ms from spawn to the "kube-salt-bridge starting" line (modules loaded, config read). */
  startedMs: number;
  /** ms from spawn to the "node list synced" line (the initial list done and applied). */
  syncedMs: number;
  /** The latest RSS sample at those two lines. */
  startedRssBytes: number;
  syncedRssBytes: number;
  /** ms from spawn to the dry run's "would fire" line carrying every node. */
  firstOutputMs: number;
  /** VmHWM (the kernel's RSS high-water mark) when the idle sample is taken. */
  peakRssBytes: number;
  /** VmRSS `idleMs` after the first output. */
  idleRssBytes: number;
  /** The largest VmRSS sampled between spawn and the first output. */
  activeRssBytes: number;
}

export interface BridgeResult {
  root: string;
  commit: string;
  baseline: boolean;
  runs: ScaleRun[];
  firstOutputMs: Summary;
  peakRssBytes: Summary;
  idleRssBytes: Summary;
}

export interface ScaleResult {
  nodes: number;
  nodeJsonBytes: number;
  listJsonBytes: number;
  images: number;
  idleMs: number;
  /** The baseline first, if any. */
  bridges: BridgeResult[];
  imports: { plainNodeRssBytes: number; clientNodeRssBytes: number };
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
}

const round = (v: number[]) => v.map((l) => Math.round(l * 100) / 100);

/** The Node as a kubelet registers it (the apiserver sets uid, resourceVersion, managedFields). */
export function nodeBody(i: number): Record<string, unknown> {
  const n = kubeNode(i, 0, Date.UTC(2026, 0, 1), undefined, MAX_IMAGES);
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, managedFields: _m, ...metadata } = n.metadata as Record<string, unknown>;
  return { ...n, metadata };
}

export async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export function procStatus(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? Number.NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** RSS of `node -e <code>` once the code ran (median of 3). */
function nodeRss(code: string): number {
  const v = Array.from({ length: 3 }, () =>
    Number(
      execFileSync(process.execPath, ['--input-type=module', '-e', `${code}; console.log(process.memoryUsage().rss)`], { cwd: ROOT, encoding: 'utf8' }).trim(),
    ),
  );
  return summarize(v).median;
}

async function oneRun(kube: KubeCluster, configFile: string, root: string, nodes: number, idleMs: number): Promise<ScaleRun> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(root, 'src', 'main.ts'), 'run', '--dry-run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid!;
  let active = 0;
  let latest = 0;
  const sampler = setInterval(() => {
    const s = procStatus(pid);
    if (s) latest = s.rss;
    if (s && !firstAt) active = Math.max(active, s.rss);
  }, 20);
  let firstAt = 0;
  const marks = { startedMs: Number.NaN, syncedMs: Number.NaN, startedRssBytes: Number.NaN, syncedRssBytes: Number.NaN };
  let out = '';
  let err = '';
  const first = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no full dry-run output within 120 s:\n${out.slice(-2000)}\n${err.slice(-2000)}`)), 120_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      let i: number;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        if (line.includes('"kube-salt-bridge starting"')) [marks.startedMs, marks.startedRssBytes] = [performance.now() - t0, procStatus(pid)?.rss ?? latest];
        if (line.includes('"node list synced"')) [marks.syncedMs, marks.syncedRssBytes] = [performance.now() - t0, procStatus(pid)?.rss ?? latest];
        if (!line.includes('dry run: would fire')) continue;
        const l = JSON.parse(line) as { event?: { data?: { nodes?: number } } };
        if (l.event?.data?.nodes === nodes) {
          firstAt = performance.now();
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.once('exit', (code) => reject(new Error(`bridge exited ${code}:\n${out.slice(-2000)}\n${err.slice(-2000)}`)));
  });
  try {
    await first;
    await sleep(idleMs);
    const s = procStatus(pid);
    if (!s) throw new Error('bridge gone before the idle sample');
    void kube;
    return { ...marks, firstOutputMs: firstAt - t0, peakRssBytes: s.hwm, idleRssBytes: s.rss, activeRssBytes: active };
  } finally {
    clearInterval(sampler);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
  }
}

function commitOf(root: string): string {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export interface ScaleOptions {
  nodes: number;
  runs: number;
  idleMs: number;
  bridge: { root: string; commit?: string };
  baseline?: { root: string; commit?: string };
  log: (s: string) => void;
}

export async function benchScale(o: ScaleOptions): Promise<ScaleResult> {
  const loadavgAtStart = round(loadavg());
  const imports = {
    plainNodeRssBytes: nodeRss('0'),
    clientNodeRssBytes: nodeRss("await import('@kubernetes/client-node')"),
  };
  o.log(
    `node RSS: plain ${(imports.plainNodeRssBytes / MiB).toFixed(1)} MiB, after importing @kubernetes/client-node ${(imports.clientNodeRssBytes / MiB).toFixed(1)} MiB`,
  );
  let kube: KubeCluster | undefined;
  try {
    kube = await startKube(CLUSTER);
    const k = kube;
    const t = performance.now();
    await pool(
      Array.from({ length: o.nodes }, (_, i) => i),
      8,
      async (i) => {
        await k.admin.req('POST', '/api/v1/nodes', nodeBody(i));
      },
    );
    o.log(`created ${o.nodes} Nodes in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const one = await k.admin.req<{ items: Array<{ status?: { addresses?: unknown[]; images?: unknown[] } }> }>('GET', `/api/v1/nodes?limit=1`);
    const sample = one.items[0];
    if (sample?.status?.addresses?.length !== 4 || sample.status.images?.length !== MAX_IMAGES) {
      throw new Error(`scale sanity: the stored Node lost its status: ${JSON.stringify(sample).slice(0, 500)}`);
    }
    const nodeJsonBytes = Buffer.byteLength(JSON.stringify(sample));
    const listJsonBytes = Buffer.byteLength(JSON.stringify(await k.admin.req('GET', '/api/v1/nodes')));

    const salt = {
      apiUrl: 'https://127.0.0.1:9',
      apiCaFile: k.caFile,
      bridge: { username: 'unused', password: 'unused-in-a-dry-run' },
    } as unknown as SaltStack;
    const { file } = await writeBridgeConfig({
      clusters: [{ name: CLUSTER, kube: k, safety: { maxShrinkFraction: 1, minNodes: 1 } }],
      salt,
      privateKey: testKeys('scale benchmark').privateText,
      extra: { log: { level: 'info' } },
    });
    const bridges = [...(o.baseline ? [{ ...o.baseline, baseline: true }] : []), { ...o.bridge, baseline: false }].map((b) => ({
      root: b.root,
      commit: b.commit ?? commitOf(b.root),
      baseline: b.baseline,
      runs: [] as ScaleRun[],
    }));
    for (let r = 0; r < o.runs; r++) {
      for (const b of bridges) {
        const run = await oneRun(k, file, b.root, o.nodes, o.idleMs);
        o.log(
          `${b.baseline ? 'baseline' : 'bridge'} ${b.commit} run ${r + 1}: started ${run.startedMs.toFixed(0)} ms (RSS ${(run.startedRssBytes / MiB).toFixed(1)} MiB), synced ${run.syncedMs.toFixed(0)} ms (RSS ${(run.syncedRssBytes / MiB).toFixed(1)} MiB), first full output ${run.firstOutputMs.toFixed(0)} ms; RSS peak ${(run.peakRssBytes / MiB).toFixed(1)} MiB, idle ${(run.idleRssBytes / MiB).toFixed(1)} MiB; load ${round(loadavg()).join(' / ')}`,
        );
        b.runs.push(run);
      }
    }
    return {
      nodes: o.nodes,
      nodeJsonBytes,
      listJsonBytes,
      images: MAX_IMAGES,
      idleMs: o.idleMs,
      bridges: bridges.map((b) => ({
        ...b,
        firstOutputMs: summarize(b.runs.map((r) => r.firstOutputMs)),
        peakRssBytes: summarize(b.runs.map((r) => r.peakRssBytes)),
        idleRssBytes: summarize(b.runs.map((r) => r.idleRssBytes)),
      })),
      imports,
      loadavgAtStart,
      loadavgAtEnd: round(loadavg()),
    };
  } finally {
    await stopInOrder(kube);
  }
}

const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

export function scaleMarkdown(s: ScaleResult, command: string): string {
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const tables = s.bridges.flatMap((b) => [
    `${b.baseline ? 'Baseline: the bridge at' : 'The bridge at'} ${b.commit}${b.baseline ? '' : s.bridges.length > 1 ? " (runs alternating with the baseline's)" : ''}:`,
    '',
    '| run | started (RSS) | synced (RSS) | start → first full output | RSS peak (VmHWM) | RSS idle |',
    '|-----|---------------|--------------|---------------------------|------------------|----------|',
    ...b.runs.map(
      (r, i) =>
        `| ${i + 1} | ${sec(r.startedMs)} (${mib(r.startedRssBytes)}) | ${sec(r.syncedMs)} (${mib(r.syncedRssBytes)}) | ${sec(r.firstOutputMs)} | ${mib(r.peakRssBytes)} | ${mib(r.idleRssBytes)} |`,
    ),
    `| median | | | ${sec(b.firstOutputMs.median)} | ${mib(b.peakRssBytes.median)} | ${mib(b.idleRssBytes.median)} |`,
    '',
  ]);
  return [
    `${SCALE_HEADING}: the bridge process against ${s.nodes.toLocaleString('en-US')} realistic Nodes`,
    '',
    `- command: \`${command}\` (under \`flock /tmp/ksb-realstack.lock\`)`,
    `- load average (1/5/15 min) at start ${s.loadavgAtStart.join(' / ')}, at end ${s.loadavgAtEnd.join(' / ')} (2 CPUs shared with other work: the times move with the load)`,
    '',
    `The bridge process (\`run --dry-run\`, log level info) against a real kube-apiserver holding ${s.nodes.toLocaleString('en-US')} Nodes of`,
    `${(s.nodeJsonBytes / 1024).toFixed(1)} KiB JSON each as served (${s.images} images, 5 conditions, dual-stack; the whole list ${mib(s.listJsonBytes)}).`,
    'Times are from the spawn of the process: "started" is its "kube-salt-bridge starting" line (modules loaded, config read),',
    '"synced" its "node list synced" line (the paginated list done and applied), "first full output" the "dry run: would fire"',
    `line for all nodes; RSS in brackets is the process's VmRSS at that line; peak is the kernel's VmHWM; idle is VmRSS ${s.idleMs / 1000} s after the output.`,
    '',
    ...tables,
    `For comparison: \`node\` alone ${mib(s.imports.plainNodeRssBytes)} RSS, after \`import('@kubernetes/client-node')\` ${mib(s.imports.clientNodeRssBytes)}.`,
    '',
  ].join('\n');
}

export const SCALE_HEADING = '## 5. Scale';

/** Puts the scale section into RESULTS.md in place of an older one (it is the file's last section). */
export function withScaleSection(md: string, section: string): string {
  const at = md.indexOf(SCALE_HEADING);
  const head = (at >= 0 ? md.slice(0, at) : md).replace(/\n*$/, '\n\n');
  return head + section;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      nodes: { type: 'string', default: '5000' },
      runs: { type: 'string', default: '3' },
      'idle-ms': { type: 'string', default: '10000' },
      'bridge-root': { type: 'string', default: ROOT },
      'bridge-commit': { type: 'string' },
      'baseline-root': { type: 'string' },
      'baseline-commit': { type: 'string' },
      'no-write': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const argv = process.argv.slice(2);
  const command = `npm run bench -- scale${argv.length ? ` ${argv.join(' ')}` : ''}`;
  const r = await benchScale({
    nodes: Number(a.nodes),
    runs: Number(a.runs),
    idleMs: Number(a['idle-ms']),
    bridge: { root: a['bridge-root'], commit: a['bridge-commit'] },
    baseline: a['baseline-root'] ? { root: a['baseline-root'], commit: a['baseline-commit'] } : undefined,
    log: console.log,
  });
  const md = scaleMarkdown(r, command);
  console.log(`\n${md}`);
  if (!a['no-write']) {
    const dir = import.meta.dirname;
    const resultsMd = join(dir, 'RESULTS.md');
    writeFileSync(resultsMd, withScaleSection(existsSync(resultsMd) ? readFileSync(resultsMd, 'utf8') : '', md));
    writeFileSync(join(dir, 'scale.json'), JSON.stringify({ date: new Date().toISOString(), command, ...r }, null, 2) + '\n');
    console.log('wrote bench/RESULTS.md (section 5) and bench/scale.json');
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  main().catch((err: Error) => {
    console.error(`bench scale failed: ${err.stack ?? err.message}`);
    process.exit(1);
  });
}

// Scale: the bridge process (`run --dry-run`) against a real kube-apiserver holding N realistic
// Nodes (50 images, 5 conditions, dual-stack: about 13.7 KB of JSON each as the apiserver serves
// them). Measured from outside, on the process: its RSS (sampled from /proc every 20 ms, and the
// kernel's high-water mark VmHWM), the time from spawn to the first full output (the dry run's
// "would fire" line for all N nodes), the time and RSS at each start-up line (from the log lines'
// own timestamps), and the RSS once idle. Also the time and RSS of loading the modules alone (a
// plain node, node after importing @kubernetes/client-node, after importing the bridge's CLI), for
// comparison.
//
//   npm run bench -- scale [--nodes N[,N...]] [--runs R] [--idle-ms MS] [--entry dist|src] [--node-flags FLAGS]
//                          [--bridge-root DIR [--bridge-commit C]] [--baseline-root DIR [--baseline-commit C] [--baseline-node-flags FLAGS]]
//                          [--no-write]
//
// --nodes takes several counts (e.g. 50,5000): the Nodes are created up to each count in turn and
// the runs repeated there. --entry dist (the default) runs the installed form, `node
// bin/kube-salt-bridge.js` (the compiled dist/ of each root: `npm run build` first; what the systemd
// unit, the Salt formula and the image run), --entry src `node src/main.ts` (a git checkout,
// type stripping). Each bridge runs with the node options on its root's bin/kube-salt-bridge.js
// first line (`#!/usr/bin/env -S node ...`), as the installed command does; --node-flags=FLAGS
// (with `=`: they start with a dash) replaces them.
//
// --bridge-root runs the bridge of another checkout than this one; --baseline-root also runs the
// bridge of a second checkout (e.g. `git archive` of an older commit, with node_modules linked),
// its runs alternating with the other's on the same apiserver, for before/after figures under the
// same load; --baseline-node-flags gives it other node options (the same root with other flags is a
// baseline too). --*-commit names a checkout that is no git work tree. Heavy at 5,000 nodes: run it under the real-stack
// lock (flock /tmp/ksb-realstack.lock).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

/** A start-up log line: ms from spawn (its own pino `time`) and the latest RSS sample when it was read. */
export interface Mark {
  ms: number;
  rssBytes: number;
}

/** The start-up lines marked, in order, by the key they are stored under. */
export const MARKS = {
  started: '"kube-salt-bridge starting"',
  serving: '"serving /healthz /readyz /metrics /status"',
  synced: '"node list synced"',
} as const;

export interface ScaleRun {
  /** Each start-up line seen: started (modules loaded, config and key read), serving (HTTP up, list begins), synced (list done). */
  marks: Partial<Record<keyof typeof MARKS, Mark>>;
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
  nodeFlags: string[];
  runs: ScaleRun[];
  firstOutputMs: Summary;
  peakRssBytes: Summary;
  idleRssBytes: Summary;
}

export interface ScaleSize {
  nodes: number;
  nodeJsonBytes: number;
  listJsonBytes: number;
  /** The baseline first, if any. */
  bridges: BridgeResult[];
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
}

/** Loading modules in a fresh `node` (median of 3): ms from process start until loaded, and RSS then. */
export interface ImportCost {
  what: string;
  ms: number;
  rssBytes: number;
}

export interface ScaleResult {
  images: number;
  idleMs: number;
  entry: Entry;
  /** Given for every bridge; undefined: each ran with its launcher's. */
  nodeFlags?: string[];
  sizes: ScaleSize[];
  imports: ImportCost[];
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
}

export type Entry = 'dist' | 'src';

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

/** `node -e <code>`: ms from process start (performance.now) once the code ran, and the RSS then (median of 3). */
function importCost(what: string, code: string, nodeFlags: string[]): ImportCost {
  const v = Array.from({ length: 3 }, () => {
    const out = execFileSync(
      process.execPath,
      [...nodeFlags, '--input-type=module', '-e', `${code}; console.log(performance.now(), process.memoryUsage().rss)`],
      { cwd: ROOT, encoding: 'utf8' },
    );
    const [ms, rss] = out.trim().split(' ').map(Number);
    return { ms: ms!, rss: rss! };
  });
  return { what, ms: summarize(v.map((x) => x.ms)).median, rssBytes: summarize(v.map((x) => x.rss)).median };
}

/** The node options on the first line of a root's bin/kube-salt-bridge.js (`#!/usr/bin/env -S node ...`). */
export function launcherFlags(root: string): string[] {
  const first = readFileSync(join(root, 'bin', 'kube-salt-bridge.js'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node (.*)$/.exec(first);
  return m ? m[1]!.split(' ').filter(Boolean) : [];
}

function bridgeArgs(root: string, entry: Entry): string[] {
  return [join(root, entry === 'dist' ? 'bin/kube-salt-bridge.js' : 'src/main.ts')];
}

async function oneRun(
  kube: KubeCluster,
  configFile: string,
  root: string,
  o: { nodes: number; idleMs: number; entry: Entry; nodeFlags: string[] },
): Promise<ScaleRun> {
  const { nodes, idleMs } = o;
  const t0 = performance.now();
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...o.nodeFlags, ...bridgeArgs(root, o.entry), 'run', '--dry-run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  const lineMarks: ScaleRun['marks'] = {};
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
        for (const [key, msg] of Object.entries(MARKS) as Array<[keyof typeof MARKS, string]>) {
          if (lineMarks[key] || !line.includes(msg)) continue;
          const time = (JSON.parse(line) as { time?: unknown }).time;
          lineMarks[key] = { ms: typeof time === 'number' ? time - spawnedAt : Number.NaN, rssBytes: procStatus(pid)?.rss ?? latest };
        }
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
    return { marks: lineMarks, ...marks, firstOutputMs: firstAt - t0, peakRssBytes: s.hwm, idleRssBytes: s.rss, activeRssBytes: active };
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
  /** Node counts, ascending: the Nodes are created up to each in turn. */
  nodes: number[];
  runs: number;
  idleMs: number;
  entry: Entry;
  /** Node options for every bridge; default: each root's launcherFlags. */
  nodeFlags?: string[];
  bridge: { root: string; commit?: string };
  baseline?: { root: string; commit?: string; nodeFlags?: string[] };
  log: (s: string) => void;
}

export async function benchScale(o: ScaleOptions): Promise<ScaleResult> {
  const loadavgAtStart = round(loadavg());
  const cli = (root: string) => pathToFileURL(join(root, o.entry === 'dist' ? 'dist/cli.js' : 'src/cli.ts')).href;
  const imports = [
    importCost('node alone', '0', o.nodeFlags ?? []),
    importCost("import('@kubernetes/client-node') (its index: the whole generated API)", "await import('@kubernetes/client-node')", o.nodeFlags ?? []),
    ...(o.baseline
      ? [
          importCost(
            `the bridge's modules at ${o.baseline.commit ?? commitOf(o.baseline.root)} (its ${o.entry === 'dist' ? 'dist/cli.js' : 'src/cli.ts'})`,
            `await import(${JSON.stringify(cli(o.baseline.root))})`,
            o.nodeFlags ?? launcherFlags(o.baseline.root),
          ),
        ]
      : []),
    importCost(
      `the bridge's modules at ${o.bridge.commit ?? commitOf(o.bridge.root)} (its ${o.entry === 'dist' ? 'dist/cli.js' : 'src/cli.ts'})`,
      `await import(${JSON.stringify(cli(o.bridge.root))})`,
      o.nodeFlags ?? launcherFlags(o.bridge.root),
    ),
  ];
  for (const i of imports) o.log(`modules: ${i.what}: ${i.ms.toFixed(0)} ms, RSS ${mib(i.rssBytes)}`);
  let kube: KubeCluster | undefined;
  try {
    kube = await startKube(CLUSTER);
    const k = kube;
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
    const sizes: ScaleSize[] = [];
    let created = 0;
    for (const nodes of o.nodes) {
      const t = performance.now();
      await pool(
        Array.from({ length: nodes - created }, (_, i) => created + i),
        8,
        async (i) => {
          await k.admin.req('POST', '/api/v1/nodes', nodeBody(i));
        },
      );
      o.log(`created ${nodes - created} Nodes (${nodes} in all) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      created = nodes;
      const one = await k.admin.req<{ items: Array<{ status?: { addresses?: unknown[]; images?: unknown[] } }> }>('GET', `/api/v1/nodes?limit=1`);
      const sample = one.items[0];
      if (sample?.status?.addresses?.length !== 4 || sample.status.images?.length !== MAX_IMAGES) {
        throw new Error(`scale sanity: the stored Node lost its status: ${JSON.stringify(sample).slice(0, 500)}`);
      }
      const nodeJsonBytes = Buffer.byteLength(JSON.stringify(sample));
      const listJsonBytes = Buffer.byteLength(JSON.stringify(await k.admin.req('GET', '/api/v1/nodes')));
      const sizeLoadAtStart = round(loadavg());
      const bridges = [...(o.baseline ? [{ ...o.baseline, baseline: true }] : []), { ...o.bridge, baseline: false }].map((b) => ({
        root: b.root,
        commit: b.commit ?? commitOf(b.root),
        baseline: b.baseline,
        nodeFlags: ('nodeFlags' in b && b.nodeFlags) || o.nodeFlags || launcherFlags(b.root),
        runs: [] as ScaleRun[],
      }));
      for (let r = 0; r < o.runs; r++) {
        for (const b of bridges) {
          const run = await oneRun(k, file, b.root, { nodes, idleMs: o.idleMs, entry: o.entry, nodeFlags: b.nodeFlags });
          const m = (key: keyof typeof MARKS) =>
            run.marks[key] ? `${key} ${run.marks[key].ms.toFixed(0)} ms (RSS ${mib(run.marks[key].rssBytes)})` : `no ${key} line`;
          o.log(
            `${nodes} nodes, ${b.baseline ? 'baseline' : 'bridge'} ${b.commit} [${b.nodeFlags.join(' ')}] run ${r + 1}: ${m('started')}, ${m('serving')}, ${m('synced')}, first full output ${run.firstOutputMs.toFixed(0)} ms; RSS peak ${mib(run.peakRssBytes)}, idle ${mib(run.idleRssBytes)}; load ${round(loadavg()).join(' / ')}`,
          );
          b.runs.push(run);
        }
      }
      sizes.push({
        nodes,
        nodeJsonBytes,
        listJsonBytes,
        bridges: bridges.map((b) => ({
          ...b,
          firstOutputMs: summarize(b.runs.map((r) => r.firstOutputMs)),
          peakRssBytes: summarize(b.runs.map((r) => r.peakRssBytes)),
          idleRssBytes: summarize(b.runs.map((r) => r.idleRssBytes)),
        })),
        loadavgAtStart: sizeLoadAtStart,
        loadavgAtEnd: round(loadavg()),
      });
    }
    return { images: MAX_IMAGES, idleMs: o.idleMs, entry: o.entry, nodeFlags: o.nodeFlags, sizes, imports, loadavgAtStart, loadavgAtEnd: round(loadavg()) };
  } finally {
    await stopInOrder(kube);
  }
}

const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

export function scaleMarkdown(s: ScaleResult, command: string): string {
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const mark = (m: Mark | undefined) => (m ? `${sec(m.ms)} (${mib(m.rssBytes)})` : '-');
  const tables = s.sizes.flatMap((z) => [
    `### ${z.nodes.toLocaleString('en-US')} Nodes`,
    '',
    `${(z.nodeJsonBytes / 1024).toFixed(1)} KiB JSON each as served; the whole list ${mib(z.listJsonBytes)}. Load average (1/5/15 min) ${z.loadavgAtStart.join(' / ')} before these runs, ${z.loadavgAtEnd.join(' / ')} after.`,
    '',
    ...z.bridges.flatMap((b) => [
      `${b.baseline ? 'Baseline: the bridge at' : 'The bridge at'} ${b.commit}${b.nodeFlags.length ? ` with \`${b.nodeFlags.join(' ')}\`` : ' with no node flags'}${b.baseline ? '' : z.bridges.length > 1 ? " (runs alternating with the baseline's)" : ''}:`,
      '',
      '| run | started (RSS) | serving (RSS) | synced (RSS) | start → first full output | RSS peak (VmHWM) | RSS idle |',
      '|-----|---------------|---------------|--------------|---------------------------|------------------|----------|',
      ...b.runs.map(
        (r, i) =>
          `| ${i + 1} | ${mark(r.marks.started)} | ${mark(r.marks.serving)} | ${mark(r.marks.synced)} | ${sec(r.firstOutputMs)} | ${mib(r.peakRssBytes)} | ${mib(r.idleRssBytes)} |`,
      ),
      `| median | | | | ${sec(b.firstOutputMs.median)} | ${mib(b.peakRssBytes.median)} | ${mib(b.idleRssBytes.median)} |`,
      '',
    ]),
  ]);
  const how = s.entry === 'dist' ? '`node bin/kube-salt-bridge.js` (the compiled dist/, as installed)' : '`node src/main.ts` (the sources, type stripping)';
  return [
    `${SCALE_HEADING}: the bridge process against ${s.sizes.map((z) => z.nodes.toLocaleString('en-US')).join(' and ')} realistic Nodes`,
    '',
    `- command: \`${command}\` (under \`flock /tmp/ksb-realstack.lock\`)`,
    `- load average (1/5/15 min) at start ${s.loadavgAtStart.join(' / ')}, at end ${s.loadavgAtEnd.join(' / ')} (2 CPUs shared with other work: the times move with the load)`,
    `- the process: ${how} with ${s.nodeFlags ? (s.nodeFlags.length ? `\`${s.nodeFlags.join(' ')}\`` : 'no node flags') : "the node flags of its launcher's first line"}, \`run --dry-run\`, log level info`,
    '',
    `The bridge process against a real kube-apiserver holding the Nodes (${s.images} images, 5 conditions, dual-stack each).`,
    'Times are from the spawn of the process, read from each log line\'s own timestamp: "started" is its "kube-salt-bridge starting" line',
    '(modules loaded, config and signing key read), "serving" the HTTP endpoints up (the list starts right after), "synced" its',
    '"node list synced" line (the paginated list done and applied); "first full output" is when the bench read the "dry run: would fire"',
    `line for all nodes. RSS in brackets is the process's VmRSS when the line was read; peak is the kernel's VmHWM; idle is VmRSS ${s.idleMs / 1000} s after the output.`,
    '',
    ...tables,
    'Loading the modules alone (a fresh `node`, median of 3: ms from process start until loaded, RSS then):',
    '',
    '| modules | loaded after | RSS |',
    '|---------|--------------|-----|',
    ...s.imports.map((i) => `| ${i.what} | ${i.ms.toFixed(0)} ms | ${mib(i.rssBytes)} |`),
    '',
    ...whereItGoes(s),
  ].join('\n');
}

/** Per size, the bridge's (not the baseline's) medians cut into start-up phases and RSS parts. */
function whereItGoes(s: ScaleResult): string[] {
  const modules = s.imports.at(-1);
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const med = (v: number[]) => summarize(v.filter(Number.isFinite)).median;
  const rows = s.sizes.flatMap((z) => {
    const b = z.bridges.find((x) => !x.baseline);
    if (!b || !modules) return [];
    const started = med(b.runs.map((r) => r.marks.started?.ms ?? Number.NaN));
    const serving = med(b.runs.map((r) => r.marks.serving?.ms ?? Number.NaN));
    const synced = med(b.runs.map((r) => r.marks.synced?.ms ?? Number.NaN));
    return [
      `| ${z.nodes.toLocaleString('en-US')} | ${sec(started)} | ${sec(serving - started)} | ${sec(synced - serving)} | ${sec(b.firstOutputMs.median - synced)} | ${mib(modules.rssBytes)} | ${mib(b.idleRssBytes.median - modules.rssBytes)} |`,
    ];
  });
  if (rows.length === 0) return [];
  return [
    `Where it goes (the bridge at ${s.sizes[0]!.bridges.find((x) => !x.baseline)!.commit}, medians): start-up until the "starting" line (node, the modules, the config and the`,
    'signing key), then until "serving" (HTTP up), the paginated list until "synced", the plan and signature until the output;',
    "the modules' RSS (loading them alone, above) and what the process holds beyond them once idle (the nodes, V8's heap around",
    'them, buffers):',
    '',
    '| Nodes | to "starting" | to "serving" | the list | to the output | RSS of the modules | idle RSS beyond them |',
    '|-------|---------------|--------------|----------|---------------|--------------------|----------------------|',
    ...rows,
    '',
  ];
}

export const SCALE_HEADING = '## 5. Scale';

/** Puts the scale section into RESULTS.md in place of an older one (up to the next `## ` heading, which stays), else at the end. */
export function withScaleSection(md: string, section: string): string {
  const at = md.indexOf(SCALE_HEADING);
  if (at < 0) return md.replace(/\n*$/, '\n\n') + section;
  const next = md.indexOf('\n## ', at + SCALE_HEADING.length);
  const head = md.slice(0, at).replace(/\n*$/, '\n\n');
  return next < 0 ? head + section : `${head}${section.replace(/\n*$/, '\n')}${md.slice(next)}`;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      nodes: { type: 'string', default: '5000' },
      entry: { type: 'string', default: 'dist' },
      'node-flags': { type: 'string' },
      runs: { type: 'string', default: '3' },
      'idle-ms': { type: 'string', default: '10000' },
      'bridge-root': { type: 'string', default: ROOT },
      'bridge-commit': { type: 'string' },
      'baseline-root': { type: 'string' },
      'baseline-commit': { type: 'string' },
      'baseline-node-flags': { type: 'string' },
      'no-write': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const argv = process.argv.slice(2);
  const command = `npm run bench -- scale${argv.length ? ` ${argv.join(' ')}` : ''}`;
  const nodes = a.nodes.split(',').map(Number);
  if (nodes.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= nodes[i - 1]!))) throw new Error('--nodes: ascending positive counts, e.g. 50,5000');
  if (a.entry !== 'dist' && a.entry !== 'src') throw new Error('--entry: dist or src');
  const r = await benchScale({
    nodes,
    entry: a.entry,
    nodeFlags: a['node-flags']?.split(' ').filter(Boolean),
    runs: Number(a.runs),
    idleMs: Number(a['idle-ms']),
    bridge: { root: a['bridge-root'], commit: a['bridge-commit'] },
    baseline: a['baseline-root']
      ? { root: a['baseline-root'], commit: a['baseline-commit'], nodeFlags: a['baseline-node-flags']?.split(' ').filter(Boolean) }
      : undefined,
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

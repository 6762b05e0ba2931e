// The peer side by side: stone/k8s-node-external-ip-watcher (Go: a client-go Node informer →
// text/template → output file → command; built by scripts/build-peer.sh, given as PEER_BIN) and the
// bridge process (`run --dry-run`), on the same real kube-apiserver holding the same realistic
// Nodes (bench/scale.ts's, plus an ExternalIP each: the peer only reads ExternalIP, so the bridge
// is configured with addressTypes [ExternalIP], families [ipv4] — one address per node for both).
//
// Per size (e.g. 50 and 5,000 Nodes), `runs` times, alternating (peer, then bridge, each alone):
// - start → first full output: the peer's "Executing command" line after it rendered every node
//   (the output file is written and fsynced by then), the bridge's "dry run: would fire" line
//   carrying every node (the payload built and signed);
// - RSS peak (VmHWM) and idle (VmRSS `idleMs` after that output).
// In the last run both stay up, then, with both watching the same Nodes:
// - per change: a Node created (one POST) → the peer's output written / the bridge's signed
//   payload, ms from the create call's return; then deleted, the same (changes spaced by the
//   bridge's publish.minIntervalMs so that each is a leading edge);
// - heartbeats: status PATCHes as a kubelet sends them (the Ready condition's lastHeartbeatTime),
//   round robin over the Nodes: outputs each process produced (should be 0) and the CPU it spent
//   (utime + stime from /proc/<pid>/stat; the peer's also of the commands it ran) from the first
//   PATCH until `settleMs` after the last returned, against the same window idle before.
import { spawn, execFileSync, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { startKube, type KubeCluster } from '../test/harness/kube.ts';
import { writeBridgeConfig } from '../test/harness/bridge.ts';
import type { SaltStack } from '../test/harness/salt.ts';
import { sleep, stopInOrder, workDir } from '../test/harness/proc.ts';
import { freePort, ROOT } from '../test/harness/tools.ts';
import { testKeys } from '../test/harness/keys.ts';
import { launcherFlags, nodeBody, pool, procStatus } from './scale.ts';
import { nodeIp4 } from './nodes.ts';
import { summarize, type Summary } from './stats.ts';

const CLUSTER = 'peer';
const CONCURRENCY = 8;
const START_TIMEOUT_MS = 15 * 60_000;
const CHANGE_TIMEOUT_MS = 60_000;
const TICK_MS = 1000 / 100; // USER_HZ on Linux

export type Entry = 'dist' | 'src';

export interface PeerOptions {
  /** The peer's binary (scripts/build-peer.sh). */
  bin: string;
  /** Node counts, ascending: the Nodes are created up to each in turn. */
  sizes: number[];
  runs: number;
  idleMs: number;
  /** Joins (each followed by its leave) per size. */
  changes: number;
  heartbeats: number;
  settleMs: number;
  /** The bridge's publish settings (the product defaults unless told). */
  minIntervalMs: number;
  maxDelayMs: number;
  /** How the bridge runs: dist (bin/kube-salt-bridge.js, the installed form; needs `npm run build`) or src (src/main.ts). */
  entry: Entry;
  /** The checkout whose bridge runs (default this one); its commit when it is no git work tree. */
  bridgeRoot?: string;
  bridgeCommit?: string;
  log: (s: string) => void;
}

export interface StartRun {
  /** ms from spawn to the first full output. */
  firstOutputMs: number;
  /** Outputs written until (and including) the first full one. */
  outputsUntilFull: number;
  peakRssBytes: number;
  idleRssBytes: number;
  /** CPU (ms) spent from spawn until the idle sample (the peer's incl. its commands). */
  cpuMs: number;
}

export interface Side {
  runs: StartRun[];
  firstOutputMs: Summary;
  peakRssBytes: Summary;
  idleRssBytes: Summary;
  /** ms from the create (delete) call's return to the output for it. */
  joinMs: Summary;
  leaveMs: Summary;
  heartbeats: { outputs: number; cpuMs: number; idleCpuMs: number };
}

export interface PeerSize {
  nodes: number;
  peer: Side;
  bridge: Side;
  heartbeatWindowMs: number;
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
}

export interface PeerResult {
  peer: { bin: string; version: string; go: string };
  bridge: { entry: Entry; commit: string; minIntervalMs: number; maxDelayMs: number };
  idleMs: number;
  changes: number;
  heartbeats: number;
  settleMs: number;
  sizes: PeerSize[];
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
}

const round = (v: number[]) => v.map((l) => Math.round(l * 100) / 100);
const MiB = 2 ** 20;

/** scale.ts's realistic Node with an ExternalIP (the peer's only input) besides its InternalIPs. */
export function peerNodeBody(i: number): Record<string, unknown> {
  const n = nodeBody(i) as { status: { addresses: Array<{ type: string; address: string }> } };
  n.status.addresses = [...n.status.addresses, { type: 'ExternalIP', address: externalIp(i) }];
  return n;
}
export const externalIp = (i: number): string => nodeIp4(i).replace(/^100\./, '52.');

function cpuTicks(pid: number): { self: number; children: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the command: state(3) ... utime(14) stime(15) cutime(16) cstime(17), here 0-based from state
    return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

interface Waiter {
  pred: (line: string) => boolean;
  resolve: (at: number) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A process whose stdout lines are matched by waiters and counted by a predicate ("an output"). */
class Watched {
  readonly name: string;
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly t0 = performance.now();
  outputs = 0;
  private readonly isOutput: (line: string) => boolean;
  private waiters: Waiter[] = [];
  private buf = '';
  private tail: string[] = [];
  private exited = false;

  constructor(name: string, cmd: string, args: string[], isOutput: (line: string) => boolean) {
    this.name = name;
    this.isOutput = isOutput;
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GOTRACEBACK: 'none' } });
    const onData = (d: Buffer) => {
      this.buf += d.toString('utf8');
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.line(line);
      }
    };
    this.child.stdout.on('data', onData);
    this.child.stderr.on('data', (d: Buffer) => {
      this.tail.push(d.toString('utf8'));
      if (this.tail.length > 20) this.tail.shift();
    });
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`${this.name} exited (${code ?? signal}):\n${this.tail.join('').slice(-2000)}`));
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private line(line: string): void {
    const at = performance.now();
    if (this.isOutput(line)) this.outputs++;
    this.tail.push(line.slice(0, 300) + '\n');
    if (this.tail.length > 20) this.tail.shift();
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(line)) return true;
      clearTimeout(w.timer);
      w.resolve(at);
      return false;
    });
  }

  /** performance.now() when a line matching `pred` arrives (lines from now on). */
  waitLine(pred: (line: string) => boolean, what: string, timeoutMs: number): Promise<number> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs / 1000} s:\n${this.tail.join('').slice(-2000)}`));
      }, timeoutMs);
      this.waiters.push({ pred, resolve, reject, timer });
    });
  }

  /** CPU ms, the process's own plus (with children) its reaped children's. */
  cpuMs(children: boolean): number {
    const t = cpuTicks(this.pid);
    if (!t) throw new Error(`${this.name} gone`);
    return (t.self + (children ? t.children : 0)) * TICK_MS;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000).then(() => this.child.kill('SIGKILL'))]);
  }
}

/** The peer's log (slog text): a render of all `n` nodes, then the command it runs after the file is fsynced. */
const peerRendered = (line: string): number | undefined => {
  if (!line.includes('msg="Rendering template"')) return undefined;
  return Number(/ nodeCount=(\d+)/.exec(line)?.[1] ?? Number.NaN);
};
const peerExecuting = (line: string) => line.includes('msg="Executing command"');
const bridgeFired = (line: string) => line.includes('dry run: would fire');
const bridgeNodes = (line: string): number | undefined => {
  if (!bridgeFired(line)) return undefined;
  return (JSON.parse(line) as { event?: { data?: { nodes?: number } } }).event?.data?.nodes;
};

/** Waits for the peer's "Executing command" that follows a render of `n` nodes. */
function peerOutputOf(p: Watched, n: number, timeoutMs: number): Promise<number> {
  let rendered = false;
  return p.waitLine(
    (line) => {
      const c = peerRendered(line);
      if (c !== undefined) rendered = c === n;
      return rendered && peerExecuting(line);
    },
    `output of ${n} nodes`,
    timeoutMs,
  );
}

function commitOf(root: string): string {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export function peerVersion(bin: string): { version: string; go: string } {
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  let go = 'unknown';
  try {
    go = /^\S+:\s+(go\S+)/m.exec(execFileSync('go', ['version', bin], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    // go not on PATH: the binary still runs
  }
  return { version, go };
}

export async function benchPeer(o: PeerOptions): Promise<PeerResult> {
  const loadavgAtStart = round(loadavg());
  const { version, go } = peerVersion(o.bin);
  const root = o.bridgeRoot ?? ROOT;
  if (o.entry === 'dist' && !existsSync(join(root, 'dist', 'main.js'))) throw new Error(`bridge entry dist: ${root}/dist/ is missing (npm run build)`);
  let kube: KubeCluster | undefined;
  const running: Watched[] = [];
  try {
    kube = await startKube(CLUSTER);
    const k = kube;
    const dir = workDir('peer');
    mkdirSync(dir, { recursive: true });
    const template = join(dir, 'ips.tmpl');
    // The README's "Simple IP List" template: one address a line.
    writeFileSync(template, '{{- range .AllIPs }}\n{{ . }}\n{{- end }}\n');
    const output = join(dir, 'node-ips.txt');
    const peerConfig = join(dir, 'config.yaml');
    writeFileSync(
      peerConfig,
      [
        'logLevel: info',
        `kubeConfig: ${k.bridgeKubeconfig}`,
        `templatePath: ${template}`,
        `outputPath: ${output}`,
        'command: /bin/true',
        'resyncInterval: 300',
        'minNodeCount: 1',
        `metricsAddr: 127.0.0.1:${await freePort()}`,
        '',
      ].join('\n'),
    );
    const salt = {
      apiUrl: 'https://127.0.0.1:9',
      apiCaFile: k.caFile,
      bridge: { username: 'unused', password: 'unused-in-a-dry-run' },
    } as unknown as SaltStack;
    const { file: bridgeConfig } = await writeBridgeConfig({
      clusters: [{ name: CLUSTER, kube: k, families: ['ipv4'], safety: { maxShrinkFraction: 1, minNodes: 1 }, more: { addressTypes: ['ExternalIP'] } }],
      salt,
      privateKey: testKeys('peer benchmark').privateText,
      publish: { minIntervalMs: o.minIntervalMs, maxDelayMs: o.maxDelayMs },
      extra: { log: { level: 'info' } },
    });
    const startPeer = () => new Watched('peer', o.bin, ['--config', peerConfig], peerExecuting);
    const startBridge = () =>
      new Watched(
        'bridge',
        process.execPath,
        // With the node flags of the installed launcher's first line, as the process runs in production.
        [...launcherFlags(root), join(root, o.entry === 'dist' ? 'bin/kube-salt-bridge.js' : 'src/main.ts'), 'run', '--dry-run', '--config', bridgeConfig],
        bridgeFired,
      );

    let created = 0;
    let extra = 1_000_000; // indexes of the Nodes that join and leave
    const sizes: PeerSize[] = [];
    for (const n of o.sizes) {
      const sizeLoadStart = round(loadavg());
      const t = performance.now();
      await pool(
        Array.from({ length: n - created }, (_, j) => created + j),
        CONCURRENCY,
        async (i) => {
          await k.admin.req('POST', '/api/v1/nodes', peerNodeBody(i));
        },
      );
      o.log(`peer: created Nodes ${created}..${n - 1} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      created = n;
      const runs = { peer: [] as StartRun[], bridge: [] as StartRun[] };
      let both: { peer: Watched; bridge: Watched } | undefined;
      for (let r = 0; r < o.runs; r++) {
        const last = r === o.runs - 1;
        const measure = async (w: Watched, full: Promise<number>, children: boolean): Promise<StartRun> => {
          running.push(w);
          let peakSampled = 0;
          const sampler = setInterval(() => {
            const s = procStatus(w.pid);
            if (s) peakSampled = Math.max(peakSampled, s.rss);
          }, 20);
          try {
            const at = await full;
            const outputsUntilFull = w.outputs;
            await sleep(o.idleMs);
            const s = procStatus(w.pid);
            if (!s) throw new Error(`${w.name} gone before the idle sample`);
            return {
              firstOutputMs: at - w.t0,
              outputsUntilFull,
              peakRssBytes: Math.max(s.hwm, peakSampled),
              idleRssBytes: s.rss,
              cpuMs: w.cpuMs(children),
            };
          } finally {
            clearInterval(sampler);
          }
        };
        const peer = startPeer();
        const pr = await measure(peer, peerOutputOf(peer, n, START_TIMEOUT_MS), true);
        if (!last) await stopAndForget(peer, running);
        const bridge = startBridge();
        const br = await measure(
          bridge,
          bridge.waitLine((l) => bridgeNodes(l) === n, `output of ${n} nodes`, START_TIMEOUT_MS),
          false,
        );
        if (!last) await stopAndForget(bridge, running);
        else both = { peer, bridge };
        runs.peer.push(pr);
        runs.bridge.push(br);
        const f = (x: StartRun) =>
          `first full output ${(x.firstOutputMs / 1000).toFixed(2)} s (${x.outputsUntilFull} outputs), RSS peak ${(x.peakRssBytes / MiB).toFixed(1)} MiB, idle ${(x.idleRssBytes / MiB).toFixed(1)} MiB, CPU ${(x.cpuMs / 1000).toFixed(2)} s`;
        o.log(`peer: ${n} nodes run ${r + 1}: peer ${f(pr)}; bridge ${f(br)}; load ${round(loadavg()).join(' / ')}`);
      }
      const { peer, bridge } = both!;

      // Per change: one join, then its leave, both processes watching.
      const join_ = { peer: [] as number[], bridge: [] as number[] };
      const leave = { peer: [] as number[], bridge: [] as number[] };
      for (let c = 0; c < o.changes; c++) {
        const i = extra++;
        await sleep(o.minIntervalMs + 100);
        for (const [phase, count, call] of [
          ['join', n + 1, () => k.admin.req('POST', '/api/v1/nodes', peerNodeBody(i))],
          ['leave', n, () => k.admin.req('DELETE', `/api/v1/nodes/${(nodeBody(i) as { metadata: { name: string } }).metadata.name}`)],
        ] as const) {
          const pOut = peerOutputOf(peer, count, CHANGE_TIMEOUT_MS);
          const bOut = bridge.waitLine((l) => bridgeFired(l) && !l.includes('"reason":"resync"'), `output after the ${phase}`, CHANGE_TIMEOUT_MS);
          await call();
          const returned = performance.now();
          const [pAt, bAt] = await Promise.all([pOut, bOut]);
          (phase === 'join' ? join_ : leave).peer.push(pAt - returned);
          (phase === 'join' ? join_ : leave).bridge.push(bAt - returned);
          if (phase === 'join') await sleep(o.minIntervalMs + 100);
        }
      }
      o.log(
        `peer: ${n} nodes, ${o.changes} joins: peer p50 ${summarize(join_.peer).median.toFixed(1)} ms, bridge p50 ${summarize(join_.bridge).median.toFixed(1)} ms; load ${round(loadavg()).join(' / ')}`,
      );

      // Heartbeats: the same window idle first, then the PATCHes.
      await sleep(o.minIntervalMs + 100);
      const names = Array.from({ length: n }, (_, i) => (nodeBody(i) as { metadata: { name: string } }).metadata.name);
      const cpu = () => ({ peer: peer.cpuMs(true), bridge: bridge.cpuMs(false) });
      const hbStart = performance.now();
      const before = { peer: peer.outputs, bridge: bridge.outputs };
      const c0 = cpu();
      const beat0 = Date.UTC(2026, 0, 2);
      await pool(
        Array.from({ length: o.heartbeats }, (_, j) => j),
        CONCURRENCY,
        async (j) => {
          const beat = new Date(beat0 + j * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
          await k.admin.req(
            'PATCH',
            `/api/v1/nodes/${names[j % n]}/status`,
            { status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: beat }] } },
            'application/strategic-merge-patch+json',
          );
        },
      );
      await sleep(o.settleMs);
      const window = performance.now() - hbStart;
      const c1 = cpu();
      const outputs = { peer: peer.outputs - before.peer, bridge: bridge.outputs - before.bridge };
      await sleep(window);
      const c2 = cpu();
      o.log(
        `peer: ${n} nodes, ${o.heartbeats} heartbeats in ${(window / 1000).toFixed(1)} s: peer ${outputs.peer} outputs, CPU ${(c1.peer - c0.peer).toFixed(0)} ms (idle ${(c2.peer - c1.peer).toFixed(0)}); bridge ${outputs.bridge} outputs, CPU ${(c1.bridge - c0.bridge).toFixed(0)} ms (idle ${(c2.bridge - c1.bridge).toFixed(0)}); load ${round(loadavg()).join(' / ')}`,
      );
      await stopAndForget(peer, running);
      await stopAndForget(bridge, running);

      const side = (w: 'peer' | 'bridge'): Side => ({
        runs: runs[w],
        firstOutputMs: summarize(runs[w].map((x) => x.firstOutputMs)),
        peakRssBytes: summarize(runs[w].map((x) => x.peakRssBytes)),
        idleRssBytes: summarize(runs[w].map((x) => x.idleRssBytes)),
        joinMs: summarize(join_[w]),
        leaveMs: summarize(leave[w]),
        heartbeats: { outputs: outputs[w], cpuMs: c1[w] - c0[w], idleCpuMs: c2[w] - c1[w] },
      });
      sizes.push({
        nodes: n,
        peer: side('peer'),
        bridge: side('bridge'),
        heartbeatWindowMs: window,
        loadavgAtStart: sizeLoadStart,
        loadavgAtEnd: round(loadavg()),
      });
    }
    return {
      peer: { bin: o.bin, version, go },
      bridge: { entry: o.entry, commit: o.bridgeCommit ?? commitOf(root), minIntervalMs: o.minIntervalMs, maxDelayMs: o.maxDelayMs },
      idleMs: o.idleMs,
      changes: o.changes,
      heartbeats: o.heartbeats,
      settleMs: o.settleMs,
      sizes,
      loadavgAtStart,
      loadavgAtEnd: round(loadavg()),
    };
  } finally {
    for (const w of running.splice(0)) await w.stop();
    await stopInOrder(kube);
  }
}

async function stopAndForget(w: Watched, running: Watched[]): Promise<void> {
  await w.stop();
  const at = running.indexOf(w);
  if (at >= 0) running.splice(at, 1);
}

// Fan-out on the real stack: kube-apiserver + etcd, salt-master + salt-api, N salt-minions each in
// its own network namespace with a redis behind the allow-list, and the bridge process. Three figures:
//
// 1. fan-out: a Node joins; the time (from the Kubernetes API call) until a TCP connection from
//    the new node's address is accepted by every minion, and by each one. Real packets: one
//    streaming prober (bench/prober.py) in a "node host" namespace probes every minion at once.
// 2. minion CPU per apply: CPU time (user + system) one minion spends on one apply job (the forked
//    job process, module load, verify, the firewall commands, the return), per backend (ipset,
//    nftables, iptables) and list size. Measured per minion with a cgroup (cpuacct, ns precision)
//    holding every process of its namespace, idle rate subtracted, and split with /proc (clock
//    ticks) into the job tree (cutime + cstime of the minion processes once the job is reaped)
//    and the minion's own processes (receiving and decoding the publish, forking).
// 3. bytes per minion per change: one single-node change at a large list (dual-stack); the bytes
//    each minion's namespace received on its veth (rx_bytes of eth0 inside the namespace), for a
//    targeted minion and for one whose pillar does not name the cluster (the master's compound
//    publish goes to every minion), background traffic subtracted; the event's size on the bus.
//    With publish.delta on the bridge (when its config has the key) also the delta form.
//
//   npm run bench -- fanout [--minions N] [--trials T] [--cpu-sizes 100,1000,5000] [--cpu-trials K]
//                          [--bytes-nodes 5000] [--parts fanout,cpu,bytes] [--minion-threads] [--quick] [--no-write]
//
// Heavy (20 minions on this machine's 2 cores): run it under flock /tmp/ksb-realstack.lock.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startKube, type KubeCluster, type NodeAddress } from '../test/harness/kube.ts';
import { startLab, type Lab, type Host } from '../test/harness/netns.ts';
import { startSalt, type SaltStack, type Minion, type BusEvent } from '../test/harness/salt.ts';
import { startRedis, probe, REDIS_PORT } from '../test/harness/redis.ts';
import { startBridge, type BridgeProc } from '../test/harness/bridge.ts';
import { teardownAll, sleep, run, RUN_ID } from '../test/harness/proc.ts';
import { ROOT } from '../test/harness/tools.ts';
import { testKeys } from '../test/harness/keys.ts';
import { percentile } from './stats.ts';
import { nodeIp4 as wideIp4, nodeIp6 as wideIp6 } from './nodes.ts';

const KEYS = testKeys('benchmark fan-out');
const CLUSTER = 'fan';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
const BASE_NODES = [101, 102, 103, 104, 105];
const OUTSIDER = 110;
const PROBER = join(import.meta.dirname, 'prober.py');
/** A dropped SYN costs this much per attempt; an accepted connection takes < 5 ms here. */
const PROBE_TIMEOUT_S = 0.1;
const STEP_TIMEOUT_MS = 120_000;
const BACKENDS = ['ipset', 'nftables', 'iptables'] as const;
const CGROUP_ROOT = '/sys/fs/cgroup/cpuacct';
const CLK_TCK = 100;

export interface Dist {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

export function dist(values: readonly number[]): Dist {
  const v = values.filter((x) => Number.isFinite(x));
  return {
    n: v.length,
    p50: percentile(v, 50),
    p95: percentile(v, 95),
    p99: percentile(v, 99),
    max: v.length ? Math.max(...v) : Number.NaN,
    min: v.length ? Math.min(...v) : Number.NaN,
    mean: v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN,
  };
}

export interface FanoutOptions {
  /** Minions, each in its own namespace with a redis behind the allow-list. */
  minions: number;
  /** Joins measured in part 1 (at most 99). */
  trials: number;
  /** List sizes (addresses, v4 + v6: half as many dual-stack Nodes) of part 2. */
  cpuSizes: number[];
  /** Applies measured per size in part 2 (a Node joins, then leaves: each is one apply). */
  cpuTrials: number;
  /** Dual-stack Nodes in the cluster for part 3 (and the last CPU figure). */
  bytesNodes: number;
  parts: { fanout: boolean; cpu: boolean; bytes: boolean };
  /** Prober interval per destination (ms). */
  pollMs: number;
  publish: { minIntervalMs: number; maxDelayMs: number };
  /** Minion config multiprocessing: false (jobs in threads of the minion process). */
  minionThreads: boolean;
  log: (s: string) => void;
}

export function quickOptions(log: (s: string) => void): FanoutOptions {
  return {
    minions: 4,
    trials: 3,
    cpuSizes: [100],
    cpuTrials: 2,
    bytesNodes: 500,
    parts: { fanout: true, cpu: true, bytes: true },
    pollMs: 20,
    publish: { minIntervalMs: 500, maxDelayMs: 2000 },
    minionThreads: false,
    log,
  };
}

export function defaultOptions(log: (s: string) => void): FanoutOptions {
  return {
    minions: 20,
    trials: 20,
    cpuSizes: [100, 1000, 5000],
    cpuTrials: 6,
    bytesNodes: 5000,
    parts: { fanout: true, cpu: true, bytes: true },
    pollMs: 20,
    publish: { minIntervalMs: 500, maxDelayMs: 2000 },
    minionThreads: false,
    log,
  };
}

export interface FanoutTrial {
  /** ms from the start of the Node's create call. */
  apiCallMs: number;
  busSeenMs: number;
  /** Per minion id: the first accepted connection from the new address, and the job return. */
  acceptMs: Record<string, number>;
  returnMs: Record<string, number>;
  lastAcceptMs: number;
  lastReturnMs: number;
  /** Targeted re-sends of the generation (events with a minions hint) during the trial. */
  resends: number;
  loadavg1: number;
}

export interface CpuSample {
  backend: string;
  /** The payload form applied. */
  form: 'full' | 'delta';
  entries: number;
  /** cgroup (all processes of the minion's namespace), idle rate subtracted, ms. */
  totalMs: number;
  /** /proc: cutime + cstime of the minion's processes (the reaped job tree), ms (10 ms ticks). */
  jobMs: number;
  /** /proc: utime + stime of the minion's long-lived processes (publish receive, fork), ms. */
  minionMs: number;
  /** ms from the change to the job return. */
  returnMs: number;
}

/** The firewall objects a backend leaves in the kernel of a minion's namespace. */
export interface KernelState {
  /** `-A` lines of iptables-save / ip6tables-save (every table). */
  iptablesRules: number;
  ip6tablesRules: number;
  /** `add` lines of `ipset save` (set members). */
  ipsetMembers: number;
  /** Rules and set elements of `nft -j list ruleset` (the iptables-nft tables included). */
  nftRules: number;
  nftElements: number;
}

/** Counts what the firewall holds in a namespace: what an apply at a given size leaves behind. */
async function kernelState(host: { exec(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string }> }): Promise<KernelState> {
  const out = async (cmd: string): Promise<string> => {
    const r = await host.exec('bash', ['-c', cmd]);
    if (r.code !== 0) throw new Error(`${cmd}: exit ${String(r.code)}`);
    return r.stdout;
  };
  const lines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;
  const nft = JSON.parse(await out('nft -j list ruleset')) as { nftables?: Array<Record<string, { elem?: unknown[] }>> };
  let nftRules = 0;
  let nftElements = 0;
  for (const o of nft.nftables ?? []) {
    if (o.rule) nftRules++;
    const set = o.set ?? o.map;
    if (set && Array.isArray(set.elem)) nftElements += set.elem.length;
  }
  return {
    iptablesRules: lines(await out('iptables-save'), /^-A /),
    ip6tablesRules: lines(await out('ip6tables-save'), /^-A /),
    ipsetMembers: lines(await out('ipset save'), /^add /),
    nftRules,
    nftElements,
  };
}

export interface BytesForm {
  form: 'full' | 'delta';
  entries: number;
  /** Targeted full re-sends of the generation (delta form: to minions that answered need_full). */
  resends: number;
  /** The event's data as JSON on the bus (what the bridge published, what the reactor passes on). */
  eventBytes: number;
  /** Per minion: bytes received / sent by its namespace during the change, background subtracted. */
  rx: Record<string, number>;
  tx: Record<string, number>;
  targeted: string[];
  untargeted: string[];
  /** Sum of rx over every minion: what the master sent for this change. */
  rxAll: number;
  windowMs: number;
  backgroundRxPerS: Record<string, number>;
}

export interface FanoutResult {
  minions: number;
  publish: { minIntervalMs: number; maxDelayMs: number };
  probe: { pollMs: number; timeoutS: number };
  stackStartMs: number;
  fanout: null | {
    trials: FanoutTrial[];
    lastAccept: Dist;
    lastReturn: Dist;
    busSeen: Dist;
    perMinion: Record<string, { accept: Dist; ret: Dist }>;
  };
  cpu: null | {
    method: string;
    idleMsPerS: Record<string, number>;
    samples: CpuSample[];
    /** backend → entries → distributions. */
    table: Record<string, Record<string, { total: Dist; job: Dist; minion: Dist; ret: Dist }>>;
    /** A test.ping job on the same minions (minion-1 ipset, ...): what any Salt job costs. */
    floor: Record<string, { total: Dist; job: Dist; minion: Dist }>;
    /** The minions ran jobs in threads (multiprocessing: false), not in forked processes. */
    minionThreads: boolean;
    /** backend → entries → what the firewall holds in the minion's namespace after those applies. */
    kernel: Record<string, Record<string, KernelState>>;
  };
  bytes: null | { deltaSupported: boolean; forms: BytesForm[] };
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
}

const now = () => performance.now();
const round2 = (v: number[]) => v.map((l) => Math.round(l * 100) / 100);

function dual(lab: Lab, n: number): NodeAddress[] {
  return [
    { type: 'InternalIP', address: lab.nodeIp4(n) },
    { type: 'InternalIP', address: lab.nodeIp6(n) },
  ];
}

/** The event has `ip` in its list (full form), or adds it (`join`) / removes it (delta form, with base_digest). */
function carries(e: BusEvent, ip: string, join: boolean): boolean {
  if (Array.isArray(e.data.ipv4)) return (e.data.ipv4 as string[]).includes(ip) === join;
  const change = join ? e.data.added : e.data.removed;
  return typeof e.data.base_digest === 'string' && Array.isArray(change) && (change as string[]).includes(ip);
}

const isApplyReturn = (e: BusEvent, id: string, gen: unknown) =>
  /^salt\/job\/\d+\/ret\//.test(e.tag) &&
  e.data.id === id &&
  e.data.fun === 'kube_allowlist.apply' &&
  (e.data.return as { generation?: unknown } | undefined)?.generation === gen;

/** The first event of the cluster (full form or delta) after index `from` whose list matches. */
function nextListEvent(salt: SaltStack, from: number, what: string, match: (e: BusEvent) => boolean): Promise<{ at: number; e: BusEvent }> {
  return salt
    .waitForEvent(what, (e) => e.tag === TAG && e.data.minions === undefined && salt.events.indexOf(e) >= from && match(e), STEP_TIMEOUT_MS)
    .then((e) => ({ at: now(), e }));
}

/** Waits for every minion's apply return of generation `gen`; resolves with (id → time seen). */
async function returns(salt: SaltStack, ids: string[], gen: unknown, from: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await Promise.all(
    ids.map(async (id) => {
      const e = await salt.waitForEvent(
        `${id} returned generation ${String(gen)}`,
        (r) => salt.events.indexOf(r) >= from && isApplyReturn(r, id, gen),
        STEP_TIMEOUT_MS,
      );
      const ret = e.data.return as { applied?: unknown; reason?: unknown };
      if (ret.applied !== true) throw new Error(`${id}: apply of generation ${String(gen)} not applied: ${String(ret.reason)}`);
      out[id] = e.at - performance.timeOrigin;
    }),
  );
  return out;
}

/**
 * One bench/prober.py in `from` probing every destination at once from `src` (its multi-destination
 * form); resolves, once it runs, with the wait for all of them to be WANT (dst → performance.now()).
 */
async function multiProbe(from: Host, src: string, dsts: string[], pollMs: number): Promise<{ result: Promise<Map<string, number>>; kill: () => void }> {
  const c = spawn(
    'ip',
    [
      'netns',
      'exec',
      from.ns,
      'python3',
      PROBER,
      src,
      dsts.join(','),
      String(REDIS_PORT),
      'accept',
      String(pollMs / 1000),
      String(PROBE_TIMEOUT_S),
      String(STEP_TIMEOUT_MS / 1000),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let buf = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  const seen = new Map<string, number>();
  const result = new Promise<Map<string, number>>((resolve, reject) => {
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.stdout.on('data', (d: Buffer) => {
      const t = now();
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'ready') {
          onReady();
          continue;
        }
        const r = JSON.parse(line) as { dst?: string; ok: boolean | null; ago_ms?: number; attempts: number };
        const dst = r.dst ?? dsts[0]!;
        if (r.ok !== true) reject(new Error(`${src} → ${dst}: TCP connection still dropped after ${STEP_TIMEOUT_MS} ms (${r.attempts} attempts)`));
        seen.set(dst, t - (r.ago_ms ?? 0));
        if (seen.size === dsts.length) resolve(seen);
      }
    });
    c.on('close', (code) => {
      onReady();
      if (code !== 0) reject(new Error(`prober exited ${code}: ${err}`));
    });
  });
  result.catch(() => undefined);
  await ready;
  return {
    result,
    kill: () => {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    },
  };
}

// --- CPU accounting ---------------------------------------------------------------------------

interface ProcTimes {
  /** pid → [utime + stime, cutime + cstime] in ticks. */
  procs: Map<number, [number, number]>;
  /** Children (any state, zombies included) of those processes. */
  children: Set<number>;
}

async function nsPids(host: Host): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', host.ns]);
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

function readProcTimes(pids: number[]): ProcTimes {
  const procs = new Map<number, [number, number]>();
  const children = new Set<number>();
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      // Fields after the comm: state(3) ... utime(14) stime(15) cutime(16) cstime(17), 1-based from pid.
      procs.set(pid, [Number(f[11]) + Number(f[12]), Number(f[13]) + Number(f[14])]);
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean)) children.add(Number(c));
      }
    } catch {
      /* gone */
    }
  }
  return { procs, children };
}

/** A cpuacct cgroup holding every process of a minion's namespace (their forks inherit it). */
class CpuGroup {
  readonly dir: string;
  readonly host: Host;
  constructor(host: Host) {
    this.host = host;
    this.dir = join(CGROUP_ROOT, `ksb-bench-${RUN_ID}-${host.ns}`);
  }
  async enter(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    for (const pid of await nsPids(this.host)) {
      try {
        writeFileSync(join(this.dir, 'cgroup.procs'), `${pid}\n`);
      } catch {
        /* gone */
      }
    }
  }
  /** user + system ns of the group. */
  usageNs(): number {
    return Number(readFileSync(join(this.dir, 'cpuacct.usage_user'), 'utf8')) + Number(readFileSync(join(this.dir, 'cpuacct.usage_sys'), 'utf8'));
  }
  remove(): void {
    if (!existsSync(this.dir)) return;
    try {
      for (const pid of readFileSync(join(this.dir, 'cgroup.procs'), 'utf8').split(/\s+/).filter(Boolean)) {
        try {
          writeFileSync(join(CGROUP_ROOT, 'cgroup.procs'), `${pid}\n`);
        } catch {
          /* gone */
        }
      }
      rmdirSync(this.dir);
    } catch {
      /* left for the next run's clean-up */
    }
  }
}

function cgroupsUsable(): boolean {
  try {
    return existsSync(join(CGROUP_ROOT, 'cpuacct.usage_user')) && existsSync(join(CGROUP_ROOT, 'cgroup.procs'));
  } catch {
    return false;
  }
}

/** Waits until the job processes forked during a measurement are gone and reaped (no new child left). */
async function reaped(host: Host, before: ProcTimes, timeoutMs = 10_000): Promise<ProcTimes> {
  const t0 = now();
  for (;;) {
    const pids = (await nsPids(host)).filter((p) => before.procs.has(p));
    const t = readProcTimes(pids);
    const fresh = [...t.children].filter((c) => !before.children.has(c));
    if (fresh.length === 0 || now() - t0 > timeoutMs) return t;
    await sleep(20);
  }
}

/** Δ over the processes present in both readings, in ms: [own, reaped children]. */
function procDelta(a: ProcTimes, b: ProcTimes): [number, number] {
  let own = 0;
  let kids = 0;
  for (const [pid, [u, c]] of b.procs) {
    const x = a.procs.get(pid);
    if (!x) continue;
    own += u - x[0];
    kids += c - x[1];
  }
  return [(own * 1000) / CLK_TCK, (kids * 1000) / CLK_TCK];
}

// --- bytes --------------------------------------------------------------------------------------

async function ifBytes(host: Host): Promise<[number, number]> {
  const r = await host.exec('cat', ['/sys/class/net/eth0/statistics/rx_bytes', '/sys/class/net/eth0/statistics/tx_bytes']);
  const [rx, tx] = r.stdout.trim().split(/\s+/).map(Number);
  return [rx!, tx!];
}

async function allBytes(minions: Minion[]): Promise<Map<string, [number, number]>> {
  const out = new Map<string, [number, number]>();
  await Promise.all(minions.map(async (m) => out.set(m.id, await ifBytes(m.host))));
  return out;
}

/** The bridge config has publish.delta (the delta form of the contract). */
export function bridgeHasDelta(): boolean {
  try {
    return /\bdelta\s*:/.test(readFileSync(join(ROOT, 'src', 'config', 'schema.ts'), 'utf8'));
  } catch {
    return false;
  }
}

// --- the run ----------------------------------------------------------------------------------

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export async function benchFanout(o: FanoutOptions): Promise<FanoutResult> {
  if (o.trials > 99) throw new Error('at most 99 trials (node addresses 1..99 of the lab)');
  const loadavgAtStart = round2(loadavg());
  let kube: KubeCluster | undefined;
  let lab: Lab | undefined;
  let salt: SaltStack | undefined;
  let bridge: BridgeProc | undefined;
  const groups: CpuGroup[] = [];
  const result: FanoutResult = {
    minions: o.minions,
    publish: o.publish,
    probe: { pollMs: o.pollMs, timeoutS: PROBE_TIMEOUT_S },
    stackStartMs: 0,
    fanout: null,
    cpu: null,
    bytes: null,
    loadavgAtStart,
    loadavgAtEnd: [],
  };
  try {
    const s0 = now();
    o.log(`starting kube-apiserver + etcd, salt-master + salt-api, ${o.minions} salt-minions (each in a netns with redis); load ${loadavgAtStart.join(' / ')}`);
    kube = await startKube(CLUSTER);
    lab = await startLab();
    salt = await startSalt(lab, { minions: o.minions, ...(o.minionThreads ? { minionConfig: { multiprocessing: false } } : {}) });
    const k = kube;
    const l = lab;
    const s = salt;
    const ms = s.minions;
    const pillarFor = (backend: string | null) =>
      backend === null
        ? // Untargeted: the pillar names another cluster, so I@kube_allowlist:clusters:fan does not match.
          { kube_allowlist: { public_keys: [KEYS.publicText], clusters: { elsewhere: {} }, rules: [] } }
        : {
            kube_allowlist: {
              public_keys: [KEYS.publicText],
              backend,
              clusters: { [CLUSTER]: {} },
              max_shrink: 1,
              rules: [{ name: 'redis', clusters: [CLUSTER], proto: 'tcp', ports: [REDIS_PORT], others: 'drop' }],
            },
          };
    await s.setPillar(Object.fromEntries(ms.map((m) => [m.id, pillarFor('ipset')])));
    await Promise.all(ms.map((m) => startRedis(m.host)));
    const nodes = await l.addHost('nodes');
    for (let n = 1; n <= o.trials; n++) await nodes.addAddress(l.nodeIp4(n));
    for (const n of [...BASE_NODES, OUTSIDER]) await nodes.addAddress(l.nodeIp4(n));
    for (const n of BASE_NODES) await k.createNode(`base-${n}`, dual(l, n));
    const startBridgeWith = async (extraPublish: Record<string, unknown> = {}) => {
      const b = await startBridge({
        clusters: [{ name: CLUSTER, kube: k, safety: { maxShrinkFraction: 1, minNodes: 1 } }],
        salt: s,
        privateKey: KEYS.privateText,
        publish: { ...o.publish, retry: { initialMs: 1000, maxMs: 60_000 }, ...extraPublish },
        extra: { log: { level: 'info' } },
      });
      await b.waitReady();
      return b;
    };
    // The full form for parts 1 and 2 (the delta form, when the bridge has it, is measured in part 3).
    const deltaSupported = bridgeHasDelta();
    bridge = await startBridgeWith(deltaSupported ? { delta: false } : {});
    // Every minion enforces the first list: the base node accepted, the outsider dropped.
    for (const m of ms) {
      for (let t = 0; ; t++) {
        const [base, out] = await Promise.all([probe(nodes, l.nodeIp4(BASE_NODES[0]!), m.host.ipv4, 0.3), probe(nodes, l.nodeIp4(OUTSIDER), m.host.ipv4, 0.3)]);
        if (base.ok && !out.ok) break;
        if (t > 300) throw new Error(`${m.id}: the first list is not enforced (base ${String(base.ok)}, outsider ${String(out.ok)})`);
        await sleep(200);
      }
    }
    result.stackStartMs = now() - s0;
    o.log(`stack up in ${(result.stackStartMs / 1000).toFixed(1)} s`);
    let joined = 0;

    // 1. fan-out ------------------------------------------------------------------------------
    if (o.parts.fanout) {
      const trials: FanoutTrial[] = [];
      for (let i = 1; i <= o.trials; i++) {
        await sleep(1000); // quiet period: each change on its own
        const ip = l.nodeIp4(i);
        const prober = await multiProbe(
          nodes,
          ip,
          ms.map((m) => m.host.ipv4),
          o.pollMs,
        );
        try {
          const from = s.events.length;
          const load = loadavg()[0]!;
          const ev = nextListEvent(s, from, `event with ${ip}`, (e) => Array.isArray(e.data.ipv4) && (e.data.ipv4 as string[]).includes(ip));
          ev.catch(() => undefined);
          const t0 = now();
          await k.createNode(`join-${i}`, dual(l, i));
          const apiCallMs = now() - t0;
          const accepted = await prober.result;
          const { at: busAt, e } = await ev;
          const rets = await returns(
            s,
            ms.map((m) => m.id),
            e.data.generation,
            from,
          );
          joined = i;
          const acceptMs = Object.fromEntries(ms.map((m) => [m.id, accepted.get(m.host.ipv4)! - t0]));
          const returnMs = Object.fromEntries(ms.map((m) => [m.id, rets[m.id]! - t0]));
          const resends = s.events.slice(from).filter((x) => x.tag === TAG && x.data.minions !== undefined && x.data.generation === e.data.generation).length;
          // The prober saw +PONG; one fresh harness probe to the slowest minion confirms it holds.
          const slowest = ms.reduce((a, b) => (acceptMs[a.id]! >= acceptMs[b.id]! ? a : b));
          const c = await probe(nodes, ip, slowest.host.ipv4, 0.5);
          if (!c.ok) throw new Error(`${slowest.id}: the prober saw ${ip} accepted, then probe() saw it dropped (${c.error})`);
          const t: FanoutTrial = {
            apiCallMs,
            busSeenMs: busAt - t0,
            acceptMs,
            returnMs,
            lastAcceptMs: Math.max(...Object.values(acceptMs)),
            lastReturnMs: Math.max(...Object.values(returnMs)),
            resends,
            loadavg1: Math.round(load * 100) / 100,
          };
          trials.push(t);
          o.log(
            `  join #${String(i).padStart(2)}: bus ${Math.round(t.busSeenMs)} ms, first accept ${Math.round(Math.min(...Object.values(acceptMs)))} ms, last accept ${Math.round(t.lastAcceptMs)} ms, last return ${Math.round(t.lastReturnMs)} ms${resends ? `, ${resends} re-sends` : ''} (load ${t.loadavg1})`,
          );
        } finally {
          prober.kill();
        }
      }
      result.fanout = {
        trials,
        lastAccept: dist(trials.map((t) => t.lastAcceptMs)),
        lastReturn: dist(trials.map((t) => t.lastReturnMs)),
        busSeen: dist(trials.map((t) => t.busSeenMs)),
        perMinion: Object.fromEntries(
          ms.map((m) => [m.id, { accept: dist(trials.map((t) => t.acceptMs[m.id]!)), ret: dist(trials.map((t) => t.returnMs[m.id]!)) }]),
        ),
      };
    }

    // 2 + 3: three targeted minions (one per backend), the others untargeted ------------------
    if (!o.parts.cpu && !o.parts.bytes) return result;
    const targeted = ms.slice(0, Math.min(BACKENDS.length, ms.length));
    const untargeted = ms.slice(targeted.length);
    const backendOf = new Map(targeted.map((m, i) => [m.id, BACKENDS[i]!]));
    await s.setPillar(Object.fromEntries(ms.map((m) => [m.id, pillarFor(backendOf.get(m.id) ?? null)])));
    const targetIds = targeted.map((m) => m.id);
    let bulk = 0;
    let gen: unknown;
    // After the pillar change the next apply converges each targeted minion to its backend (the untargeted keep their rules).
    let converged = false;
    const labNodes = () => BASE_NODES.length + joined;
    // The toggled Node (below) counts while it is in the cluster.
    const entriesNow = () => 2 * (labNodes() + bulk + (toggle % 2));
    /** Adds bulk Nodes (worst-case-length addresses) until `total` dual-stack Nodes; waits until every targeted minion applied it. */
    const growTo = async (total: number) => {
      const want = Math.max(0, total - labNodes());
      const items = Array.from({ length: Math.max(0, want - bulk) }, (_, j) => bulk + j);
      if (items.length === 0) {
        if (!converged) {
          // Nothing to add: a join and a leave converge the backends the pillar just chose.
          for (let r = 0; r < 2; r++) {
            const c = await toggleNode();
            await returns(s, targetIds, c.gen, c.from);
          }
          converged = true;
        }
        return;
      }
      const from = s.events.length;
      const t = now();
      await pool(items, 8, (j) =>
        k.admin.req('POST', '/api/v1/nodes', {
          metadata: { name: `bulk-${j}` },
          status: {
            addresses: [
              { type: 'InternalIP', address: wideIp4(j) },
              { type: 'InternalIP', address: wideIp6(j) },
            ],
          },
        }),
      );
      bulk = Math.max(bulk, want);
      const count = entriesNow();
      const ev = await nextListEvent(
        s,
        from,
        `the list of ${count} entries`,
        (e) => (e.data.ipv4 as string[]).length + (e.data.ipv6 as string[]).length === count,
      );
      gen = ev.e.data.generation;
      await returns(s, targetIds, gen, from);
      converged = true;
      o.log(`  ${count} entries (${labNodes() + bulk} Nodes): created in ${((now() - t) / 1000).toFixed(1)} s, applied by ${targetIds.join(', ')}`);
    };
    // A Node that joins then leaves: one apply each. Address outside the bulk range.
    let toggle = 0;
    const toggleNode = async (): Promise<{ from: number; t0: number; gen: unknown; busAt: number }> => {
      const present = toggle % 2 === 1;
      const ip4 = wideIp4(100_000);
      const from = s.events.length;
      const ev = nextListEvent(s, from, present ? 'the leave' : 'the join', (e) => carries(e, ip4, !present));
      ev.catch(() => undefined);
      const t0 = now();
      if (present) await k.deleteNode('toggle');
      else
        await k.admin.req('POST', '/api/v1/nodes', {
          metadata: { name: 'toggle' },
          status: {
            addresses: [
              { type: 'InternalIP', address: ip4 },
              { type: 'InternalIP', address: wideIp6(100_000) },
            ],
          },
        });
      toggle++;
      const { at, e } = await ev;
      gen = e.data.generation;
      return { from, t0, gen, busAt: at };
    };

    const samples: CpuSample[] = [];
    const kernel: NonNullable<FanoutResult['cpu']>['kernel'] = {};
    const floor: Array<{ backend: string; totalMs: number; jobMs: number; minionMs: number }> = [];
    let measureCpu: ((entries: number, form: 'full' | 'delta') => Promise<void>) | undefined;
    const useCgroup = cgroupsUsable();
    const idleMsPerS: Record<string, number> = {};
    if (o.parts.cpu) {
      if (useCgroup) {
        for (const m of targeted) {
          const g = new CpuGroup(m.host);
          await g.enter();
          groups.push(g);
        }
      }
      const groupOf = new Map(groups.map((g, i) => [targeted[i]!.id, g]));
      // Idle rate of each minion (its schedule loop, redis): subtracted from each measurement.
      await sleep(1500);
      {
        const a = targeted.map((m) => groupOf.get(m.id)?.usageNs() ?? 0);
        const t = now();
        await sleep(5000);
        const dt = (now() - t) / 1000;
        targeted.forEach((m, i) => (idleMsPerS[m.id] = ((groupOf.get(m.id)?.usageNs() ?? 0) - a[i]!) / 1e6 / dt));
      }
      o.log(
        `  idle CPU: ${targeted.map((m) => `${m.id} ${idleMsPerS[m.id]!.toFixed(2)} ms/s`).join(', ')} (${useCgroup ? 'cgroup cpuacct' : 'no cgroup: /proc only'})`,
      );
      /** CPU of each targeted minion around `trigger` (which resolves once every job returned, with the return times). */
      const cpuAround = async (trigger: () => Promise<{ t0: number; rets: Record<string, number> }>) => {
        await sleep(1000);
        const before = await Promise.all(
          targeted.map(async (m) => ({ p: readProcTimes(await nsPids(m.host)), g: groupOf.get(m.id)?.usageNs() ?? Number.NaN, t: now() })),
        );
        const { t0, rets } = await trigger();
        return Promise.all(
          targeted.map(async (m, i) => {
            const b = before[i]!;
            const after = await reaped(m.host, b.p);
            const usage = groupOf.get(m.id)?.usageNs() ?? Number.NaN;
            const dt = (now() - b.t) / 1000;
            const [own, kids] = procDelta(b.p, after);
            return { id: m.id, totalMs: (usage - b.g) / 1e6 - idleMsPerS[m.id]! * dt, jobMs: kids, minionMs: own, returnMs: rets[m.id]! - t0 };
          }),
        );
      };
      measureCpu = async (entries: number, form: 'full' | 'delta') => {
        const per = await cpuAround(async () => {
          const { from, t0, gen: g } = await toggleNode();
          return { t0, rets: await returns(s, targetIds, g, from) };
        });
        for (const x of per)
          samples.push({ backend: backendOf.get(x.id)!, form, entries, totalMs: x.totalMs, jobMs: x.jobMs, minionMs: x.minionMs, returnMs: x.returnMs });
      };
      // The floor: what any Salt job costs these minions (test.ping, published to the same three).
      for (let r = 0; r < o.cpuTrials; r++) {
        const per = await cpuAround(async () => {
          const t0 = now();
          const ret = await s.salt(targetIds.join(','), 'test.ping', [], { tgtType: 'list', timeoutS: 60 });
          const missing = targetIds.filter((id) => ret[id] !== true);
          if (missing.length) throw new Error(`test.ping: no answer from ${missing.join(', ')}`);
          return { t0, rets: Object.fromEntries(targetIds.map((id) => [id, now()])) };
        });
        for (const x of per) floor.push({ backend: backendOf.get(x.id)!, totalMs: x.totalMs, jobMs: x.jobMs, minionMs: x.minionMs });
      }
      o.log(
        `  CPU of a test.ping job: ${targeted
          .map((m) => {
            const v = floor.filter((x) => x.backend === backendOf.get(m.id));
            return `${m.id} ${dist(v.map((x) => x.totalMs)).p50.toFixed(0)} ms (job ${dist(v.map((x) => x.jobMs)).p50.toFixed(0)}, minion ${dist(v.map((x) => x.minionMs)).p50.toFixed(0)})`;
          })
          .join('; ')}`,
      );
      for (const size of o.cpuSizes) {
        await growTo(Math.ceil(size / 2));
        const entries = entriesNow();
        for (let r = 0; r < o.cpuTrials; r++) await measureCpu(entries, 'full');
        for (const m of targeted) (kernel[backendOf.get(m.id)!] ??= {})[String(entries)] = await kernelState(m.host);
        const mine = samples.filter((x) => x.entries === entries);
        o.log(
          `  CPU per apply at ${entries} entries: ${BACKENDS.filter((b) => [...backendOf.values()].includes(b))
            .map((b) => {
              const v = mine.filter((x) => x.backend === b);
              return `${b} ${dist(v.map((x) => x.totalMs)).p50.toFixed(0)} ms (job ${dist(v.map((x) => x.jobMs)).p50.toFixed(0)}, minion ${dist(v.map((x) => x.minionMs)).p50.toFixed(0)})`;
            })
            .join('; ')} (load ${round2(loadavg()).join(' / ')})`,
        );
      }
      if (o.parts.bytes) {
        await growTo(o.bytesNodes);
        const entries = entriesNow();
        for (let r = 0; r < Math.max(2, Math.ceil(o.cpuTrials / 2)); r++) await measureCpu(entries, 'full');
      }
    }

    // 3. bytes per minion per change -----------------------------------------------------------
    if (o.parts.bytes) {
      await growTo(o.bytesNodes);
      const forms: BytesForm[] = [];
      const measureBytes = async (form: 'full' | 'delta') => {
        await sleep(2000);
        // Background: the same minions with no change, over a window as long as a change takes.
        const bg0 = await allBytes(ms);
        const tb = now();
        await sleep(4000);
        const bg1 = await allBytes(ms);
        const bgS = (now() - tb) / 1000;
        const before = await allBytes(ms);
        const t0 = now();
        const { from, gen: g } = await toggleNode();
        const ev = s.events.slice(from).find((e) => e.tag === TAG && e.data.generation === g && e.data.minions === undefined)!;
        await returns(s, targetIds, g, from);
        // Every minion got the publish at about the same time; let the last bytes (returns, acks, a full re-send) land.
        await sleep(1500);
        const after = await allBytes(ms);
        const windowMs = now() - t0;
        const rx: Record<string, number> = {};
        const tx: Record<string, number> = {};
        const backgroundRxPerS: Record<string, number> = {};
        for (const m of ms) {
          const [r0, t0b] = before.get(m.id)!;
          const [r1, t1] = after.get(m.id)!;
          const bgRx = (bg1.get(m.id)![0] - bg0.get(m.id)![0]) / bgS;
          const bgTx = (bg1.get(m.id)![1] - bg0.get(m.id)![1]) / bgS;
          backgroundRxPerS[m.id] = bgRx;
          rx[m.id] = r1 - r0 - (bgRx * windowMs) / 1000;
          tx[m.id] = t1 - t0b - (bgTx * windowMs) / 1000;
        }
        const { _stamp: _s, ...data } = ev.data;
        const resends = s.events.slice(from).filter((e) => e.tag === TAG && e.data.generation === g && e.data.minions !== undefined);
        const f: BytesForm = {
          form: typeof ev.data.base_digest === 'string' ? 'delta' : 'full',
          entries: entriesNow(),
          eventBytes: Buffer.byteLength(JSON.stringify(data)),
          resends: resends.length,
          rx,
          tx,
          targeted: targetIds,
          untargeted: untargeted.map((m) => m.id),
          rxAll: Object.values(rx).reduce((a, b) => a + b, 0),
          windowMs,
          backgroundRxPerS,
        };
        if (f.form !== form) throw new Error(`bytes: expected the ${form} form, the bridge fired the ${f.form} form`);
        forms.push(f);
        const med = (ids: string[]) =>
          percentile(
            ids.map((id) => rx[id]!),
            50,
          );
        o.log(
          `  bytes (${form}) at ${f.entries} entries: event ${(f.eventBytes / 1024).toFixed(1)} KiB; rx per targeted minion ${(med(targetIds) / 1024).toFixed(1)} KiB, per untargeted ${untargeted.length ? (med(f.untargeted) / 1024).toFixed(1) : '-'} KiB; all minions ${(f.rxAll / 1024).toFixed(1)} KiB${f.resends ? `; ${f.resends} full re-sends` : ''}`,
        );
      };
      await measureBytes('full');
      await measureBytes('full');
      if (deltaSupported) {
        await bridge.stop();
        const from = s.events.length;
        bridge = await startBridgeWith({ delta: true });
        // The first publish after a start is full: wait until every targeted minion applied it.
        const first = await nextListEvent(s, from, 'the first publish after the restart', () => true);
        await returns(s, targetIds, first.e.data.generation, from);
        await measureBytes('delta');
        await measureBytes('delta');
        if (measureCpu) for (let r = 0; r < Math.max(2, Math.ceil(o.cpuTrials / 2)); r++) await measureCpu(entriesNow(), 'delta');
      }
      result.bytes = { deltaSupported, forms };
    }

    if (o.parts.cpu) {
      const key = (x: CpuSample) => `${x.entries}${x.form === 'delta' ? ' delta' : ''}`;
      const table: NonNullable<FanoutResult['cpu']>['table'] = {};
      for (const x of samples) (table[x.backend] ??= {})[key(x)] ??= { total: dist([]), job: dist([]), minion: dist([]), ret: dist([]) };
      for (const [b, sizes] of Object.entries(table))
        for (const e of Object.keys(sizes)) {
          const v = samples.filter((x) => x.backend === b && key(x) === e);
          sizes[e] = {
            total: dist(v.map((x) => x.totalMs)),
            job: dist(v.map((x) => x.jobMs)),
            minion: dist(v.map((x) => x.minionMs)),
            ret: dist(v.map((x) => x.returnMs)),
          };
        }
      result.cpu = {
        method: useCgroup
          ? 'cpuacct cgroup per minion namespace (usage_user + usage_sys, ns), idle rate subtracted; split by /proc cutime+cstime (reaped job tree) and utime+stime (minion processes), 10 ms ticks'
          : '/proc only: cutime+cstime (reaped job tree) and utime+stime (minion processes), 10 ms ticks',
        idleMsPerS,
        samples,
        table,
        floor: Object.fromEntries(
          [...new Set(floor.map((x) => x.backend))].map((b) => {
            const v = floor.filter((x) => x.backend === b);
            return [b, { total: dist(v.map((x) => x.totalMs)), job: dist(v.map((x) => x.jobMs)), minion: dist(v.map((x) => x.minionMs)) }];
          }),
        ),
        minionThreads: o.minionThreads,
        kernel,
      };
    }

    return result;
  } finally {
    result.loadavgAtEnd = round2(loadavg());
    await bridge?.stop().catch(() => undefined);
    await salt?.stop().catch(() => undefined);
    await lab?.stop().catch(() => undefined);
    await kube?.stop().catch(() => undefined);
    for (const g of groups) g.remove();
    teardownAll();
  }
}

// --- report -------------------------------------------------------------------------------------

const fmt = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')) : '-');
const kib = (b: number) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KiB` : '-');

export function fanoutMarkdown(r: FanoutResult, command: string): string {
  const out: string[] = [];
  out.push(`- command: \`${command}\` (under \`flock /tmp/ksb-realstack.lock\`)`);
  out.push(
    `- load average (1/5/15 min) at start ${r.loadavgAtStart.join(' / ')}, at end ${r.loadavgAtEnd.join(' / ')} (2 CPUs shared with other work on the machine: the times move with the load)`,
  );
  out.push(
    `- ${r.minions} salt-minions, each in its own network namespace with a redis behind the allow-list; bridge publish.minIntervalMs=${r.publish.minIntervalMs}, maxDelayMs=${r.publish.maxDelayMs}`,
  );
  out.push('');
  if (r.fanout) {
    const f = r.fanout;
    out.push(
      `**Fan-out** (${f.trials.length} joins, ipset backend on every minion; ms from the Node's create call; TCP: one prober in a node namespace starts a connection + Redis PING to every minion every ${r.probe.pollMs} ms):`,
    );
    out.push('');
    out.push('| | p50 | p95 | p99 | max |');
    out.push('|---|---|---|---|---|');
    const row = (name: string, d: Dist) => `| ${name} | ${fmt(d.p50)} | ${fmt(d.p95)} | ${fmt(d.p99)} | ${fmt(d.max)} |`;
    out.push(row('event seen on the bus', f.busSeen));
    out.push(row(`TCP accepted by the last of ${r.minions} minions`, f.lastAccept));
    out.push(row(`job return of the last of ${r.minions} minions`, f.lastReturn));
    const firsts = dist(f.trials.map((t) => Math.min(...Object.values(t.acceptMs))));
    out.push(row('TCP accepted by the first minion', firsts));
    out.push(row('TCP accepted, every minion and join pooled', dist(f.trials.flatMap((t) => Object.values(t.acceptMs)))));
    out.push('');
    out.push('Per minion (TCP accepted, ms):');
    out.push('');
    out.push('| minion | p50 | p95 | max | job return p50 |');
    out.push('|---|---|---|---|---|');
    for (const [id, d] of Object.entries(f.perMinion))
      out.push(`| ${id} | ${fmt(d.accept.p50)} | ${fmt(d.accept.p95)} | ${fmt(d.accept.max)} | ${fmt(d.ret.p50)} |`);
    const resends = f.trials.reduce((a, t) => a + t.resends, 0);
    out.push('');
    out.push(`Targeted re-sends during the joins: ${resends}.`);
    out.push('');
  }
  if (r.cpu) {
    out.push(`**Minion CPU per apply** (one Node joins or leaves: one apply job with a change; ${r.cpu.method}):`);
    out.push('');
    out.push('| backend | entries (v4+v6) | total p50 | total p95 | job tree p50 | minion processes p50 | job return p50 | n |');
    out.push('|---|---|---|---|---|---|---|---|');
    for (const [b, sizes] of Object.entries(r.cpu.table))
      for (const [e, d] of Object.entries(sizes).sort((x, y) => parseInt(x[0]) - parseInt(y[0]) || x[0].localeCompare(y[0])))
        out.push(
          `| ${b} | ${parseInt(e).toLocaleString('en-US')}${e.endsWith('delta') ? ' (delta form)' : ''} | ${fmt(d.total.p50)} ms | ${fmt(d.total.p95)} ms | ${fmt(d.job.p50)} ms | ${fmt(d.minion.p50)} ms | ${fmt(d.ret.p50)} ms | ${d.total.n} |`,
        );
    for (const [b, d] of Object.entries(r.cpu.floor))
      out.push(
        `| ${b} minion: a test.ping job | - | ${fmt(d.total.p50)} ms | ${fmt(d.total.p95)} ms | ${fmt(d.job.p50)} ms | ${fmt(d.minion.p50)} ms | - | ${d.total.n} |`,
      );
    out.push('');
    out.push("**What each backend leaves in the kernel** (the minion's namespace after the applies at that size; nft counts include the iptables-nft tables):");
    out.push('');
    out.push('| backend | entries (v4+v6) | iptables rules | ip6tables rules | ipset members | nft rules | nft set elements |');
    out.push('|---|---|---|---|---|---|---|');
    for (const [b, sizes] of Object.entries(r.cpu.kernel))
      for (const [e, k] of Object.entries(sizes).sort((x, y) => Number(x[0]) - Number(y[0])))
        out.push(
          `| ${b} | ${Number(e).toLocaleString('en-US')} | ${k.iptablesRules} | ${k.ip6tablesRules} | ${k.ipsetMembers} | ${k.nftRules} | ${k.nftElements} |`,
        );
    out.push('');
    if (r.cpu.minionThreads) out.push('The minions ran with `multiprocessing: false` (each job in a thread of the minion process, no fork).');
    out.push(
      `Idle CPU of a minion namespace (subtracted): ${Object.entries(r.cpu.idleMsPerS)
        .map(([id, v]) => `${id} ${v.toFixed(2)} ms/s`)
        .join(', ')}.`,
    );
    out.push('');
  }
  if (r.bytes) {
    out.push('**Bytes per minion per change** (one Node joins or leaves; rx/tx of eth0 inside each minion namespace, background rate subtracted):');
    out.push('');
    out.push(
      '| form | entries | event on the bus | rx, targeted minion (p50) | rx, untargeted minion (p50) | tx, targeted (p50) | rx, all minions | full re-sends |',
    );
    out.push('|---|---|---|---|---|---|---|---|');
    for (const f of r.bytes.forms) {
      const med = (ids: string[], v: Record<string, number>) =>
        ids.length
          ? percentile(
              ids.map((id) => v[id]!),
              50,
            )
          : Number.NaN;
      out.push(
        `| ${f.form} | ${f.entries.toLocaleString('en-US')} | ${kib(f.eventBytes)} | ${kib(med(f.targeted, f.rx))} | ${kib(med(f.untargeted, f.rx))} | ${kib(med(f.targeted, f.tx))} | ${kib(f.rxAll)} (${f.targeted.length} targeted + ${f.untargeted.length} untargeted) | ${f.resends} |`,
      );
    }
    out.push('');
    if (!r.bytes.deltaSupported) out.push('The bridge has no delta form yet (no `publish.delta` in src/config/schema.ts): full form only.');
    out.push('');
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      minions: { type: 'string' },
      trials: { type: 'string' },
      'cpu-sizes': { type: 'string' },
      'cpu-trials': { type: 'string' },
      'bytes-nodes': { type: 'string' },
      parts: { type: 'string' },
      'poll-ms': { type: 'string' },
      'min-interval-ms': { type: 'string' },
      'max-delay-ms': { type: 'string' },
      'minion-threads': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const o = a.quick ? quickOptions(console.log) : defaultOptions(console.log);
  if (a.minions) o.minions = Number(a.minions);
  if (a.trials) o.trials = Number(a.trials);
  if (a['cpu-sizes']) o.cpuSizes = a['cpu-sizes'].split(',').map(Number);
  if (a['cpu-trials']) o.cpuTrials = Number(a['cpu-trials']);
  if (a['bytes-nodes']) o.bytesNodes = Number(a['bytes-nodes']);
  if (a['poll-ms']) o.pollMs = Number(a['poll-ms']);
  if (a['min-interval-ms']) o.publish.minIntervalMs = Number(a['min-interval-ms']);
  if (a['max-delay-ms']) o.publish.maxDelayMs = Number(a['max-delay-ms']);
  o.minionThreads = a['minion-threads'];
  if (a.parts) {
    const p = new Set(a.parts.split(','));
    o.parts = { fanout: p.has('fanout'), cpu: p.has('cpu'), bytes: p.has('bytes') };
  }
  const argv = process.argv.slice(2);
  const command = `npm run bench -- fanout${argv.length ? ` ${argv.join(' ')}` : ''}`;
  const r = await benchFanout(o);
  const md = fanoutMarkdown(r, command);
  console.log(`\n${md}`);
  if (!a['no-write']) {
    const file = join(import.meta.dirname, 'fanout.json');
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), command, ...r }, null, 2) + '\n');
    console.log('wrote bench/fanout.json');
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(e);
    teardownAll();
    process.exit(1);
  });
}

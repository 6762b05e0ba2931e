// Part 4: end to end on the real stack (as scripts/demo.ts runs it): kube-apiserver + etcd,
// salt-master + salt-api, three salt-minions, each with redis in its own network namespace and
// one firewall backend each (minion-1 ipset, minion-2 nftables, minion-3 iptables), and the
// bridge process. Measures join/leave latencies with real packets on every minion (the last of
// the three is the figure), then the bridge left alone for a while (events it fires, its CPU and
// RSS), the bursts (bench/burst.ts), and the original formula's mode as the baseline:
// `salt minion-1 kube_allowlist.pull <cluster>` per call, and the same function run by Salt's
// own scheduler on the minion (schedule.add through the master) every N seconds.
import { readFileSync } from 'node:fs';
import { startKube, type KubeCluster, type NodeAddress } from '../test/harness/kube.ts';
import { startLab, type Lab, type Host } from '../test/harness/netns.ts';
import { startSalt, type SaltStack, type Minion, type BusEvent } from '../test/harness/salt.ts';
import { startRedis, probe } from '../test/harness/redis.ts';
import { startBridge, type BridgeProc } from '../test/harness/bridge.ts';
import { teardownAll, sleep, waitFor, workDir } from '../test/harness/proc.ts';
import { freePort } from '../test/harness/tools.ts';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { spawn } from 'node:child_process';
import { relay } from './relay.ts';
import { testKeys } from '../test/harness/keys.ts';
import { percentile, summarize, type Summary } from './stats.ts';
import { benchBurst, type BurstResult } from './burst.ts';

const KEYS = testKeys('benchmark end to end');
const CLUSTER = 'bench';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
const BASE_NODES = [101, 102, 103, 104, 105];
const OUTSIDER = 110;
/** Node addresses of the pull baseline (40 + k) and of the schedule baseline's joins (60 + k). */
const PULL_IP_BASE = 40;
const SCHEDULE_IP_BASE = 60;
/** One backend per minion: minion-1 ipset, minion-2 nftables, minion-3 iptables. */
export const BACKENDS = ['ipset', 'nftables', 'iptables'] as const;
/** probe() timeout: a dropped SYN costs this much; an accepted connection on this bridge takes < 5 ms. */
const PROBE_TIMEOUT_S = 0.1;
const POLL_MS = 20;
const STEP_TIMEOUT_MS = 20_000;
/** utime/stime in /proc/<pid>/stat are in clock ticks (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

export type ProbeMode = 'stream' | 'harness';

export interface E2EOptions {
  iterations: number;
  /**
   * stream: one long-lived prober (bench/prober.py) in the node namespace, an attempt to every
   * minion every 20 ms, confirmed by one harness probe() afterwards; harness: probe() (a new python
   * per attempt) to each minion in a loop.
   */
  probe: ProbeMode;
  pulls: number;
  /** The bridge's publish.minIntervalMs / maxDelayMs (the product defaults unless overridden). */
  minIntervalMs: number;
  maxDelayMs: number;
  /** Nodes created and then deleted in the burst part (0: skip it). */
  burstNodes: number;
  /** Seconds the bridge is left alone after the joins and leaves (0: skip the idle window). */
  idleS: number;
  /** The bridge's publish.resyncIntervalSeconds (the product default, 600, unless overridden). */
  resyncIntervalS: number;
  /** Salt schedule periods (s) of the scheduled pull baseline, and the joins measured at each. */
  scheduleIntervalsS: number[];
  scheduleTrials: number[];
  log: (s: string) => void;
}

/** A Summary with the 99th percentile (nearest rank: the max below 100 samples). */
export interface Dist extends Summary {
  readonly p99: number;
}
const dist = (v: readonly number[]): Dist => ({ ...summarize(v), p99: percentile(v, 99) });

export interface MinionSample {
  jobReturn: number;
  tcp: number;
}

export interface Sample {
  /** ms from the start of the Kubernetes API call(s) that create/delete the Node. */
  apiCallMs: number;
  /** The payload's issued_at: when the bridge's run signed it (after watch + quiet period). */
  issued: number;
  busSeen: number;
  /** Salt's _stamp of the event (when the master fired it), same clock, ms from the same start. */
  busStamp: number;
  /** The last minion's job return and TCP state change (the figure). */
  jobReturn: number;
  tcp: number;
  /** Per minion id. */
  minions: Record<string, MinionSample>;
  generation: number;
  /** Duration of the probe() call that observed the new state (the measurement's granularity). */
  probeMs: number;
  probes: number;
}

export interface Phase {
  apiCallMs: Dist;
  issued: Dist;
  busStamp: Dist;
  busSeen: Dist;
  /** The last of the minions, per sample. */
  jobReturn: Dist;
  tcp: Dist;
  /** Every minion on its own. */
  minions: Array<{ id: string; backend: string; jobReturn: Dist; tcp: Dist }>;
  samples: Sample[];
}

export interface IdleResult {
  /** The window: seconds the bridge was left alone (no Node changed, no minion restarted). */
  seconds: number;
  resyncIntervalS: number;
  /** Events of the cluster's tag on the bus in the window, and what they were. */
  events: number;
  newGenerations: number;
  /** Same generation again, no `minions` hint: the periodic resync. */
  resyncs: number;
  /** Targeted re-sends (`minions` hint). */
  resends: number;
  /** Bytes of the resyncs' payloads as on the bus (JSON, without Salt's _stamp): total and the largest. */
  resyncBytes: number;
  resyncMaxBytes: number;
  /** Events fired other than the periodic resync (the expectation: 0). */
  otherEvents: number;
  /** The bridge's own count (ksb_publishes_total by kind) over the window. */
  metrics: { publish: number; republish: number; resend: number };
  /** kube_allowlist.apply returns on the bus in the window (every minion, every event). */
  applyReturns: number;
  /** utime + stime of the bridge process over the window. */
  cpuMs: number;
  cpuMsPerMinute: number;
  /** VmRSS of the bridge at the end of the window, and VmHWM (the peak since start). */
  rssBytes: number;
  peakRssBytes: number;
}

export interface ScheduleRun {
  /** The schedule's period (`seconds`), s. */
  intervalS: number;
  trials: number;
  /** ms from the Node create call to the first accepted TCP connection from its IP at minion-1. */
  tcp: Dist;
  /** ms from the Node create call to the scheduled job's return (the one that applied it) on the bus. */
  jobReturn: Dist;
  /** Scheduled pull returns seen on the bus while the schedule ran (the scheduler really fired it). */
  scheduledReturns: number;
  /** tcp p50 over the bridge's join → TCP accepted p50: the last of the minions, and minion-1 alone (same minion, backend). */
  ratioToBridgeP50: number;
  ratioToBridgeSameMinionP50: number;
  samples: Array<{ delayMs: number; tcp: number; jobReturn: number }>;
}

export interface E2EResult {
  iterations: number;
  publish: { minIntervalMs: number; maxDelayMs: number; resyncIntervalSeconds: number };
  /** The backend of the first minion (kept for older readers); `minions` lists them all. */
  backend: string;
  minions: Array<{ id: string; backend: string }>;
  probe: { mode: ProbeMode; timeoutS: number; pollMs: number; acceptedMs: Summary; droppedMs: Summary };
  join: Phase;
  leave: Phase;
  /** The bridge left alone after the joins and leaves; null when --idle-s 0. */
  idle: IdleResult | null;
  pull: {
    calls: number;
    wallMs: Summary;
    /** `salt minion-1 test.ping`: the CLI round trip every `salt` call pays. */
    pingMs: Summary;
    admittedAfterReturn: number;
    results: Array<{ wallMs: number; changed: unknown; reason: unknown }>;
  };
  /** kube_allowlist.pull run by Salt's scheduler on minion-1, one entry per period. */
  schedule: ScheduleRun[];
  /** Burst of Node creations, then deletions (bench/burst.ts); null when skipped. */
  burst: BurstResult | null;
  stackStartMs: number;
}

const now = () => performance.now();
const wallAt = (t: number) => performance.timeOrigin + t;
/** Salt's _stamp ("2026-11-22T10:00:00.123456", UTC) → performance.now() scale. */
const stampToPerf = (stamp: unknown): number => (typeof stamp === 'string' ? Date.parse(`${stamp.slice(0, 23)}Z`) - performance.timeOrigin : Number.NaN);

function dual(lab: Lab, n: number): NodeAddress[] {
  return [
    { type: 'InternalIP', address: lab.nodeIp4(n) },
    { type: 'InternalIP', address: lab.nodeIp6(n) },
  ];
}

/** The list the event leaves holds `ip` (full form), or it adds `ip` / removes it (delta form). */
function carries(e: BusEvent, ip: string, present: boolean): boolean {
  if (Array.isArray(e.data.ipv4)) return (e.data.ipv4 as string[]).includes(ip) === present;
  const change = present ? e.data.added : e.data.removed;
  return typeof e.data.base_digest === 'string' && Array.isArray(change) && (change as string[]).includes(ip);
}

/** Resolves with (time seen, event) for the first event after index `from` that matches. */
function nextEvent(
  salt: SaltStack,
  from: number,
  what: string,
  match: (e: BusEvent) => boolean,
  timeoutMs = STEP_TIMEOUT_MS,
): Promise<{ at: number; e: BusEvent }> {
  return salt.waitForEvent(what, (e) => match(e) && salt.events.indexOf(e) >= from, timeoutMs).then((e) => ({ at: now(), e }));
}

const PROBER = join(import.meta.dirname, 'prober.py');

/**
 * Starts bench/prober.py in the node namespace, probing every destination at once (its
 * multi-destination form); resolves once it runs, with the wait for each to be WANT (dst → time).
 */
async function streamProbe(
  nodes: Host,
  src: string,
  dsts: string[],
  want: boolean,
  maxMs = STEP_TIMEOUT_MS,
): Promise<{ result: Promise<Map<string, { at: number; attempts: number }>>; kill: () => void }> {
  const c = spawn(
    'ip',
    [
      'netns',
      'exec',
      nodes.ns,
      'python3',
      PROBER,
      src,
      dsts.join(','),
      '6379',
      want ? 'accept' : 'drop',
      String(POLL_MS / 1000),
      String(PROBE_TIMEOUT_S),
      String(maxMs / 1000),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let buf = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  const seen = new Map<string, { at: number; attempts: number }>();
  const result = new Promise<Map<string, { at: number; attempts: number }>>((resolve, reject) => {
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
        if (r.ok !== want) {
          reject(new Error(`${src} → ${dst}: TCP connection still ${want ? 'dropped' : 'accepted'} after ${maxMs} ms (${r.attempts} attempts)`));
          continue;
        }
        seen.set(dst, { at: t - (r.ago_ms ?? 0), attempts: r.attempts });
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

const isApplyReturn = (r: BusEvent, id: string, gen: unknown) =>
  /^salt\/job\/\d+\/ret\//.test(r.tag) &&
  r.data.id === id &&
  r.data.fun === 'kube_allowlist.apply' &&
  (r.data.return as { generation?: unknown } | undefined)?.generation === gen;

async function measure(
  mode: ProbeMode,
  salt: SaltStack,
  ms: Minion[],
  nodes: Host,
  ip: string,
  wantOk: boolean,
  change: () => Promise<void>,
  probeStats: { ok: number[]; dropped: number[] },
): Promise<Sample> {
  const dsts = ms.map((m) => m.host.ipv4);
  const stream = mode === 'stream' ? await streamProbe(nodes, ip, dsts, wantOk) : undefined;
  const from = salt.events.length;
  const t0 = now();
  const ev = nextEvent(
    salt,
    from,
    `event ${wantOk ? 'with' : 'without'} ${ip}`,
    (e) => e.tag === TAG && e.data.minions === undefined && carries(e, ip, wantOk),
  );
  const rets = ev.then(({ e }) =>
    Promise.all(
      ms.map((m) => nextEvent(salt, from, `${m.id}: job return of generation ${String(e.data.generation)}`, (r) => isApplyReturn(r, m.id, e.data.generation))),
    ),
  );
  ev.catch(() => undefined);
  rets.catch(() => undefined);
  try {
    await change();
    const apiCallMs = now() - t0;
    let probes = 0;
    let probeMs = 0;
    const tcp = new Map<string, number>();
    if (stream) {
      const r = await stream.result;
      for (const [dst, x] of r) {
        tcp.set(dst, x.at - t0);
        probes = Math.max(probes, x.attempts);
      }
      probeMs = POLL_MS;
      // Confirm with the harness's own probe (one fresh connection) that the state holds on the last minion.
      const last = [...r.entries()].sort((a, b) => b[1].at - a[1].at)[0]![0];
      const p0 = now();
      const c = await probe(nodes, ip, last, 0.5);
      (c.ok ? probeStats.ok : probeStats.dropped).push(now() - p0);
      if (c.ok !== wantOk) throw new Error(`${ip} → ${last}: the prober saw ${wantOk ? 'accepted' : 'dropped'} but probe() then saw the opposite (${c.error})`);
    } else {
      while (now() - t0 < STEP_TIMEOUT_MS && tcp.size < dsts.length) {
        const p0 = now();
        for (const dst of dsts) {
          if (tcp.has(dst)) continue;
          const q0 = now();
          const r = await probe(nodes, ip, dst, PROBE_TIMEOUT_S);
          const q1 = now();
          probes++;
          (r.ok ? probeStats.ok : probeStats.dropped).push(q1 - q0);
          if (r.ok === wantOk) {
            tcp.set(dst, q1 - t0);
            probeMs = Math.max(probeMs, q1 - q0);
          }
        }
        await sleep(Math.max(0, POLL_MS - (now() - p0)));
      }
      if (tcp.size < dsts.length) throw new Error(`${ip}: TCP connection still ${wantOk ? 'dropped' : 'accepted'} after ${STEP_TIMEOUT_MS} ms on some minion`);
    }
    const e = await ev;
    const j = await rets;
    const minions: Record<string, MinionSample> = {};
    ms.forEach((m, k) => (minions[m.id] = { jobReturn: j[k]!.at - t0, tcp: tcp.get(m.host.ipv4)! }));
    return {
      apiCallMs,
      issued: Date.parse(String(e.e.data.issued_at)) - performance.timeOrigin - t0,
      busSeen: e.at - t0,
      busStamp: stampToPerf(e.e.data._stamp) - t0,
      jobReturn: Math.max(...Object.values(minions).map((x) => x.jobReturn)),
      tcp: Math.max(...Object.values(minions).map((x) => x.tcp)),
      minions,
      generation: Number(e.e.data.generation),
      probeMs,
      probes,
    };
  } finally {
    stream?.kill();
  }
}

const summaries = (s: Sample[], ms: Array<{ id: string; backend: string }>): Phase => ({
  apiCallMs: dist(s.map((x) => x.apiCallMs)),
  issued: dist(s.map((x) => x.issued)),
  busSeen: dist(s.map((x) => x.busSeen)),
  busStamp: dist(s.map((x) => x.busStamp)),
  jobReturn: dist(s.map((x) => x.jobReturn)),
  tcp: dist(s.map((x) => x.tcp)),
  minions: ms.map(({ id, backend }) => ({
    id,
    backend,
    jobReturn: dist(s.map((x) => x.minions[id]!.jobReturn)),
    tcp: dist(s.map((x) => x.minions[id]!.tcp)),
  })),
  samples: s,
});

/** utime + stime (ms) of a process, from /proc/<pid>/stat. */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5); f[0] is field 3 (state).
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

function memOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** ksb_publishes_total of the cluster, summed by reason (publish, republish, resend). */
async function publishCounts(bridge: BridgeProc): Promise<{ publish: number; republish: number; resend: number }> {
  const text = await bridge.metrics();
  const out = { publish: 0, republish: 0, resend: 0 };
  for (const m of text.matchAll(/^ksb_publishes_total\{([^}]*)\} (\S+)$/gm)) {
    if (!m[1]!.includes(`cluster="${CLUSTER}"`)) continue;
    const reason = /reason="([^"]+)"/.exec(m[1]!)?.[1] as keyof typeof out | undefined;
    if (reason && reason in out) out[reason] += Number(m[2]);
  }
  return out;
}

/** The bridge left alone for `seconds`: what it fired (bus and its own metrics), its CPU time and RSS. */
async function idleWindow(salt: SaltStack, bridge: BridgeProc, seconds: number, resyncIntervalS: number, log: (s: string) => void): Promise<IdleResult> {
  const pid = bridge.child.pid!;
  // The generation published before the window: an event of the tag with it again is a republish.
  const before = salt.events.filter((e) => e.tag === TAG && e.data.minions === undefined).at(-1);
  let lastGen = before ? Number(before.data.generation) : Number.NaN;
  const from = salt.events.length;
  const m0 = await publishCounts(bridge);
  const c0 = cpuMsOf(pid);
  const t0 = now();
  log(`idle: the bridge left alone for ${seconds} s (resync every ${resyncIntervalS} s)`);
  await sleep(seconds * 1000);
  const c1 = cpuMsOf(pid);
  const elapsed = now() - t0;
  const m1 = await publishCounts(bridge);
  const mem = memOf(pid);
  const window = salt.events.slice(from);
  let newGenerations = 0;
  let resends = 0;
  const resyncSizes: number[] = [];
  for (const e of window) {
    if (e.tag !== TAG) continue;
    if (e.data.minions !== undefined) {
      resends++;
      continue;
    }
    const gen = Number(e.data.generation);
    if (gen === lastGen) {
      const { _stamp: _, ...payload } = e.data;
      resyncSizes.push(Buffer.byteLength(JSON.stringify(payload)));
    } else newGenerations++;
    lastGen = gen;
  }
  const events = window.filter((e) => e.tag === TAG).length;
  const r: IdleResult = {
    seconds: Math.round(elapsed / 100) / 10,
    resyncIntervalS,
    events,
    newGenerations,
    resyncs: resyncSizes.length,
    resends,
    resyncBytes: resyncSizes.reduce((a, b) => a + b, 0),
    resyncMaxBytes: resyncSizes.length ? Math.max(...resyncSizes) : 0,
    otherEvents: events - resyncSizes.length,
    metrics: { publish: m1.publish - m0.publish, republish: m1.republish - m0.republish, resend: m1.resend - m0.resend },
    applyReturns: window.filter((e) => /^salt\/job\/\d+\/ret\//.test(e.tag) && e.data.fun === 'kube_allowlist.apply').length,
    cpuMs: c1 - c0,
    cpuMsPerMinute: ((c1 - c0) * 60_000) / elapsed,
    rssBytes: mem.rss,
    peakRssBytes: mem.hwm,
  };
  log(
    `  ${r.events} event(s) (${r.resyncs} resync, ${r.newGenerations} new generation, ${r.resends} re-send); bridge CPU ${Math.round(r.cpuMs)} ms, RSS ${(r.rssBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  return r;
}

/**
 * The pull formula's mode on a real Salt schedule: kube_allowlist.pull on minion-1 every
 * `intervalS` seconds by the minion's own scheduler (schedule.add through the master; the bridge is
 * stopped). Each trial waits a stratified random part of the period, creates a Node and measures
 * until a TCP connection from its IP is accepted: a join at a random time against the schedule.
 */
async function scheduledPulls(
  salt: SaltStack,
  m: Minion,
  kube: KubeCluster,
  lab: Lab,
  nodes: Host,
  intervalS: number,
  trials: number,
  firstIp: number,
  bridgeP50: { last: number; same: number },
  log: (s: string) => void,
): Promise<ScheduleRun> {
  const name = `ksb-bench-pull-${intervalS}s`;
  const from = salt.events.length;
  const add = await salt.salt(
    m.id,
    'schedule.add',
    [name, 'function=kube_allowlist.pull', `job_args=["${CLUSTER}"]`, `seconds=${intervalS}`, 'persist=False'],
    {
      timeoutS: 60,
    },
  );
  if ((add[m.id] as { result?: unknown } | undefined)?.result !== true) throw new Error(`schedule.add ${name}: ${JSON.stringify(add).slice(0, 500)}`);
  log(`schedule: kube_allowlist.pull ${CLUSTER} every ${intervalS} s on ${m.id} (Salt's scheduler), ${trials} join(s)`);
  const isPullReturn = (e: BusEvent) => /^salt\/job\/\d+\/ret\//.test(e.tag) && e.data.id === m.id && e.data.fun === 'kube_allowlist.pull';
  // Stratified phases: trial k waits (perm[k] + U) / trials of a period after the previous join was admitted.
  const perm = Array.from({ length: trials }, (_, k) => k);
  for (let k = trials - 1; k > 0; k--) {
    const j = Math.floor(Math.random() * (k + 1));
    [perm[k], perm[j]] = [perm[j]!, perm[k]!];
  }
  const samples: ScheduleRun['samples'] = [];
  try {
    for (let k = 0; k < trials; k++) {
      const n = firstIp + k;
      const ip = lab.nodeIp4(n);
      const delayMs = ((perm[k]! + Math.random()) / trials) * intervalS * 1000;
      await sleep(delayMs);
      const maxMs = (intervalS + 60) * 1000;
      const stream = await streamProbe(nodes, ip, [m.host.ipv4], true, maxMs);
      try {
        const fromK = salt.events.length;
        const t0 = now();
        await kube.createNode(`scheduled-${n}`, dual(lab, n));
        const seen = (await stream.result).get(m.host.ipv4)!;
        const tcp = seen.at - t0;
        // The return of the scheduled job that applied it (the scheduler's, not ours: no `salt` call
        // ran): fired after the apply, so not before the accepted connection (a pull that returned
        // earlier read the list before the join; pulls are seconds apart).
        const ret = await nextEvent(
          salt,
          fromK,
          `${m.id}: scheduled kube_allowlist.pull return after the join of ${ip}`,
          (e) => isPullReturn(e) && (e.data.return as { applied?: unknown } | undefined)?.applied === true && e.at - performance.timeOrigin >= seen.at - 500,
          30_000,
        );
        samples.push({ delayMs, tcp, jobReturn: ret.at - t0 });
        log(`  #${k + 1}: waited ${Math.round(delayMs)} ms, then join → TCP accepted ${Math.round(tcp)} ms (scheduled return ${Math.round(ret.at - t0)} ms)`);
      } finally {
        stream.kill();
      }
    }
  } finally {
    await salt.salt(m.id, 'schedule.delete', [name, 'persist=False'], { timeoutS: 60 }).catch(() => undefined);
  }
  const tcp = dist(samples.map((s) => s.tcp));
  return {
    intervalS,
    trials,
    tcp,
    jobReturn: dist(samples.map((s) => s.jobReturn)),
    scheduledReturns: salt.events.slice(from).filter(isPullReturn).length,
    ratioToBridgeP50: tcp.median / bridgeP50.last,
    ratioToBridgeSameMinionP50: tcp.median / bridgeP50.same,
    samples,
  };
}

export async function benchE2E(o: E2EOptions): Promise<E2EResult> {
  let kube: KubeCluster | undefined;
  let lab: Lab | undefined;
  let salt: SaltStack | undefined;
  let bridge: BridgeProc | undefined;
  let rootRelay: Server | undefined;
  const scheduleTotal = o.scheduleTrials.reduce((a, b) => a + b, 0);
  if (o.iterations >= 100) throw new Error('at most 99 iterations (node addresses 1..99 of the lab)');
  if (o.pulls > SCHEDULE_IP_BASE - PULL_IP_BASE) throw new Error(`at most ${SCHEDULE_IP_BASE - PULL_IP_BASE} pulls`);
  if (SCHEDULE_IP_BASE + scheduleTotal > 100) throw new Error(`at most ${100 - SCHEDULE_IP_BASE} scheduled joins in all`);
  if (o.scheduleTrials.length !== o.scheduleIntervalsS.length) throw new Error('one trial count per schedule interval');
  try {
    const s0 = now();
    o.log(`starting kube-apiserver + etcd, salt-master + salt-api, ${BACKENDS.length} salt-minions (each in its netns, with redis; ${BACKENDS.join(', ')})`);
    kube = await startKube(CLUSTER);
    lab = await startLab();
    salt = await startSalt(lab, { minions: BACKENDS.length });
    const ms = salt.minions;
    const m = ms[0]!;
    const minionInfo = ms.map((x, k) => ({ id: x.id, backend: BACKENDS[k]! }));
    await salt.setPillar(
      Object.fromEntries(
        minionInfo.map(({ id, backend }) => [
          id,
          {
            kube_allowlist: {
              public_keys: [KEYS.publicText],
              backend,
              // kubeconfig: only for kube_allowlist.pull (the minion shares this filesystem).
              clusters: { [CLUSTER]: { kubeconfig: kube!.bridgeKubeconfig } },
              // The burst part deletes all but 5 nodes: the guard is configured to allow it.
              max_shrink: 1,
              rules: [{ name: 'redis', clusters: [CLUSTER], proto: 'tcp', ports: [6379], others: 'drop' }],
            },
          },
        ]),
      ),
    );
    for (const x of ms) await startRedis(x.host);
    const nodes = await lab.addHost('nodes');
    const ips = new Set<number>([...BASE_NODES, OUTSIDER]);
    for (let n = 1; n <= o.iterations; n++) ips.add(n);
    for (let k = 0; k < o.pulls; k++) ips.add(PULL_IP_BASE + k);
    for (let k = 0; k < scheduleTotal; k++) ips.add(SCHEDULE_IP_BASE + k);
    for (const n of ips) await nodes.addAddress(lab.nodeIp4(n));
    for (const n of BASE_NODES) await kube.createNode(`base-${n}`, dual(lab, n));

    bridge = await startBridge({
      clusters: [{ name: CLUSTER, kube, safety: { maxShrinkFraction: 1, minNodes: 1 } }],
      salt,
      privateKey: KEYS.privateText,
      // The product defaults (src/config/schema.ts) unless overridden on the command line.
      publish: {
        minIntervalMs: o.minIntervalMs,
        maxDelayMs: o.maxDelayMs,
        resyncIntervalSeconds: o.resyncIntervalS,
        retry: { initialMs: 1000, maxMs: 60_000 },
      },
      extra: { log: { level: 'info' } },
    });
    await bridge.waitReady();
    const reach = async (x: Minion, n: number) => (await probe(nodes, lab!.nodeIp4(n), x.host.ipv4, 0.3)).ok;
    await waitFor(
      'first list applied on every minion (outsider dropped, base node accepted)',
      async () => {
        for (const x of ms) if ((await reach(x, OUTSIDER)) || !(await reach(x, BASE_NODES[0]!))) return false;
        return true;
      },
      60_000,
      200,
    );
    const stackStartMs = now() - s0;
    o.log(`stack up in ${(stackStartMs / 1000).toFixed(1)} s; ${o.iterations} joins + leaves, each seen on ${ms.length} minions`);

    const probeStats = { ok: [] as number[], dropped: [] as number[] };
    const joins: Sample[] = [];
    const leaves: Sample[] = [];
    for (let i = 1; i <= o.iterations; i++) {
      const ip = lab.nodeIp4(i);
      const name = `bench-${i}`;
      await sleep(1000); // quiet period: each change is measured on its own
      joins.push(await measure(o.probe, salt, ms, nodes, ip, true, () => kube!.createNode(name, dual(lab!, i)).then(() => undefined), probeStats));
      await sleep(1000);
      leaves.push(await measure(o.probe, salt, ms, nodes, ip, false, () => kube!.deleteNode(name), probeStats));
      const j = joins.at(-1)!;
      const l = leaves.at(-1)!;
      const per = (s: Sample) => ms.map((x) => Math.round(s.minions[x.id]!.tcp)).join('/');
      o.log(
        `  #${String(i).padStart(2)}  join: bus ${Math.round(j.busSeen)} ms, last return ${Math.round(j.jobReturn)} ms, tcp ${per(j)} ms   leave: bus ${Math.round(l.busSeen)} ms, last return ${Math.round(l.jobReturn)} ms, tcp ${per(l)} ms`,
      );
    }

    const idle = o.idleS > 0 ? await idleWindow(salt, bridge, o.idleS, o.resyncIntervalS, o.log) : null;

    let burst: BurstResult | null = null;
    if (o.burstNodes > 0) {
      await sleep(2000);
      burst = await benchBurst({ kube, salt, cluster: CLUSTER, minions: ms.map((x) => x.id), nodes: o.burstNodes, log: o.log });
    }

    // Baseline: the mode of the pull formula this project replaced (docs/ARCHITECTURE.md), a pull the operator (or a schedule) runs.
    o.log(`baseline: ${o.pulls} x salt ${m.id} kube_allowlist.pull ${CLUSTER} (bridge stopped)`);
    await bridge.stop();
    bridge = undefined;
    // The minion lives in its own network namespace and the apiserver listens on the root
    // namespace's loopback only: relay 127.0.0.1:<port> inside the namespace to it, so that the
    // harness's kubeconfig (server https://127.0.0.1:<port>) works unchanged on the minion.
    const apiPort = Number(new URL(kube.url).port);
    const hop = await freePort();
    rootRelay = await relay(lab.gw4, hop, '127.0.0.1', apiPort);
    m.host.daemon(
      'relay-apiserver',
      process.execPath,
      [join(import.meta.dirname, 'relay.ts'), '127.0.0.1', String(apiPort), lab.gw4, String(hop)],
      join(workDir('relay'), 'relay.log'),
    );
    await waitFor(
      'apiserver reachable from the minion namespace',
      async () => (await m.host.exec('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${apiPort}`])).code === 0,
      15_000,
      100,
    );
    const pingMs: number[] = [];
    for (let k = 0; k < Math.min(5, o.pulls); k++) {
      const t0 = now();
      const r = await salt.salt(m.id, 'test.ping', [], { timeoutS: 30 });
      if (r[m.id] !== true) throw new Error(`test.ping: ${JSON.stringify(r)}`);
      pingMs.push(now() - t0);
    }
    const results: E2EResult['pull']['results'] = [];
    let admitted = 0;
    for (let k = 0; k < o.pulls; k++) {
      const n = PULL_IP_BASE + k;
      await kube.createNode(`pulled-${n}`, dual(lab, n)); // each pull has a change to apply
      const t0 = now();
      const r = await salt.salt(m.id, 'kube_allowlist.pull', [CLUSTER], { timeoutS: 60 });
      const wall = now() - t0;
      const ret = r[m.id] as { changed?: unknown; reason?: unknown; applied?: unknown } | string | undefined;
      if (typeof ret !== 'object' || ret.applied !== true) throw new Error(`kube_allowlist.pull failed: ${JSON.stringify(r).slice(0, 500)}`);
      if (await reach(m, n)) admitted++;
      results.push({ wallMs: wall, changed: ret.changed, reason: ret.reason });
      o.log(`  pull #${k + 1}: ${Math.round(wall)} ms (changed: ${String(ret.changed)})`);
    }

    const join1 = summaries(joins, minionInfo);
    const schedule: ScheduleRun[] = [];
    let firstIp = SCHEDULE_IP_BASE;
    for (const [k, intervalS] of o.scheduleIntervalsS.entries()) {
      const trials = o.scheduleTrials[k]!;
      const bridgeP50 = { last: join1.tcp.median, same: join1.minions[0]!.tcp.median };
      schedule.push(await scheduledPulls(salt, m, kube, lab, nodes, intervalS, trials, firstIp, bridgeP50, o.log));
      firstIp += trials;
    }

    return {
      iterations: o.iterations,
      publish: { minIntervalMs: o.minIntervalMs, maxDelayMs: o.maxDelayMs, resyncIntervalSeconds: o.resyncIntervalS },
      backend: BACKENDS[0],
      minions: minionInfo,
      probe: { mode: o.probe, timeoutS: PROBE_TIMEOUT_S, pollMs: POLL_MS, acceptedMs: summarize(probeStats.ok), droppedMs: summarize(probeStats.dropped) },
      join: join1,
      leave: summaries(leaves, minionInfo),
      idle,
      pull: { calls: o.pulls, wallMs: summarize(results.map((r) => r.wallMs)), pingMs: summarize(pingMs), admittedAfterReturn: admitted, results },
      schedule,
      burst,
      stackStartMs,
    };
  } finally {
    rootRelay?.close();
    await bridge?.stop().catch(() => undefined);
    await salt?.stop().catch(() => undefined);
    await lab?.stop().catch(() => undefined);
    await kube?.stop().catch(() => undefined);
    teardownAll();
  }
}

export { wallAt };

// Part 4: end to end on the real stack (as scripts/demo.ts runs it): kube-apiserver + etcd,
// salt-master + salt-api, one salt-minion with redis in its own network namespace (ipset backend),
// and the bridge process. Measures join/leave latencies with real packets, then the original
// formula's mode (`salt minion-1 kube_allowlist.pull <cluster>`) as the baseline.
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
import { summarize, type Summary } from './stats.ts';
import { benchBurst, type BurstResult } from './burst.ts';

const KEYS = testKeys('benchmark end to end');
const CLUSTER = 'bench';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
const BASE_NODES = [101, 102, 103, 104, 105];
const OUTSIDER = 110;
/** probe() timeout: a dropped SYN costs this much; an accepted connection on this bridge takes < 5 ms. */
const PROBE_TIMEOUT_S = 0.1;
const POLL_MS = 20;
const STEP_TIMEOUT_MS = 20_000;

export type ProbeMode = 'stream' | 'harness';

export interface E2EOptions {
  iterations: number;
  /**
   * stream: one long-lived prober (bench/prober.py) in the node namespace, an attempt every 20 ms,
   * confirmed by one harness probe() afterwards; harness: probe() (a new python per attempt) in a loop.
   */
  probe: ProbeMode;
  pulls: number;
  /** The bridge's publish.minIntervalMs / maxDelayMs (the product defaults unless overridden). */
  minIntervalMs: number;
  maxDelayMs: number;
  /** Nodes created and then deleted in the burst part (0: skip it). */
  burstNodes: number;
  log: (s: string) => void;
}

export interface Sample {
  /** ms from the start of the Kubernetes API call(s) that create/delete the Node. */
  apiCallMs: number;
  /** The payload's issued_at: when the bridge's run signed it (after watch + quiet period). */
  issued: number;
  busSeen: number;
  /** Salt's _stamp of the event (when the master fired it), same clock, ms from the same start. */
  busStamp: number;
  jobReturn: number;
  tcp: number;
  generation: number;
  /** Duration of the probe() call that observed the new state (the measurement's granularity). */
  probeMs: number;
  probes: number;
}

export interface Phase {
  apiCallMs: Summary;
  issued: Summary;
  busStamp: Summary;
  busSeen: Summary;
  jobReturn: Summary;
  tcp: Summary;
  samples: Sample[];
}

export interface E2EResult {
  iterations: number;
  publish: { minIntervalMs: number; maxDelayMs: number };
  backend: string;
  probe: { mode: ProbeMode; timeoutS: number; pollMs: number; acceptedMs: Summary; droppedMs: Summary };
  join: Phase;
  leave: Phase;
  pull: {
    calls: number;
    wallMs: Summary;
    /** `salt minion-1 test.ping`: the CLI round trip every `salt` call pays. */
    pingMs: Summary;
    admittedAfterReturn: number;
    results: Array<{ wallMs: number; changed: unknown; reason: unknown }>;
  };
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

/** Resolves with (time seen, event) for the first event after index `from` that matches. */
function nextEvent(salt: SaltStack, from: number, what: string, match: (e: BusEvent) => boolean): Promise<{ at: number; e: BusEvent }> {
  return salt.waitForEvent(what, (e) => match(e) && salt.events.indexOf(e) >= from, STEP_TIMEOUT_MS).then((e) => ({ at: now(), e }));
}

const PROBER = join(import.meta.dirname, 'prober.py');

/** Starts bench/prober.py in the node namespace; resolves once it runs, with the wait for WANT. */
async function streamProbe(
  nodes: Host,
  src: string,
  dst: string,
  want: boolean,
): Promise<{ result: Promise<{ at: number; attempts: number }>; kill: () => void }> {
  const c = spawn(
    'ip',
    [
      'netns',
      'exec',
      nodes.ns,
      'python3',
      PROBER,
      src,
      dst,
      '6379',
      want ? 'accept' : 'drop',
      String(POLL_MS / 1000),
      String(PROBE_TIMEOUT_S),
      String(STEP_TIMEOUT_MS / 1000),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let buf = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  const result = new Promise<{ at: number; attempts: number }>((resolve, reject) => {
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
        const r = JSON.parse(line) as { ok: boolean | null; ago_ms?: number; attempts: number };
        if (r.ok === want) resolve({ at: t - (r.ago_ms ?? 0), attempts: r.attempts });
        else reject(new Error(`${src}: TCP connection still ${want ? 'dropped' : 'accepted'} after ${STEP_TIMEOUT_MS} ms (${r.attempts} attempts)`));
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

async function measure(
  mode: ProbeMode,
  salt: SaltStack,
  m: Minion,
  nodes: Host,
  ip: string,
  wantOk: boolean,
  change: () => Promise<void>,
  listHas: (e: BusEvent) => boolean,
  probeStats: { ok: number[]; dropped: number[] },
): Promise<Sample> {
  const stream = mode === 'stream' ? await streamProbe(nodes, ip, m.host.ipv4, wantOk) : undefined;
  const from = salt.events.length;
  const t0 = now();
  const ev = nextEvent(salt, from, `event ${wantOk ? 'with' : 'without'} ${ip}`, (e) => e.tag === TAG && listHas(e));
  const ret = ev.then(({ e }) =>
    nextEvent(
      salt,
      from,
      `job return of generation ${String(e.data.generation)}`,
      (r) =>
        /^salt\/job\/\d+\/ret\//.test(r.tag) &&
        r.data.id === m.id &&
        r.data.fun === 'kube_allowlist.apply' &&
        (r.data.return as { generation?: unknown } | undefined)?.generation === e.data.generation,
    ),
  );
  ev.catch(() => undefined);
  ret.catch(() => undefined);
  try {
    await change();
    const apiCallMs = now() - t0;
    let probes = 0;
    let probeMs = 0;
    let tcp = Number.NaN;
    if (stream) {
      const r = await stream.result;
      tcp = r.at - t0;
      probes = r.attempts;
      probeMs = POLL_MS;
      // Confirm with the harness's own probe (one fresh connection) that the state holds.
      const p0 = now();
      const c = await probe(nodes, ip, m.host.ipv4, 0.5);
      (c.ok ? probeStats.ok : probeStats.dropped).push(now() - p0);
      if (c.ok !== wantOk) throw new Error(`${ip}: the prober saw ${wantOk ? 'accepted' : 'dropped'} but probe() then saw the opposite (${c.error})`);
    } else {
      while (now() - t0 < STEP_TIMEOUT_MS) {
        const p0 = now();
        const r = await probe(nodes, ip, m.host.ipv4, PROBE_TIMEOUT_S);
        const p1 = now();
        probes++;
        (r.ok ? probeStats.ok : probeStats.dropped).push(p1 - p0);
        if (r.ok === wantOk) {
          tcp = p1 - t0;
          probeMs = p1 - p0;
          break;
        }
        await sleep(Math.max(0, POLL_MS - (now() - p1)));
      }
      if (Number.isNaN(tcp)) throw new Error(`${ip}: TCP connection still ${wantOk ? 'dropped' : 'accepted'} after ${STEP_TIMEOUT_MS} ms`);
    }
    const e = await ev;
    const j = await ret;
    return {
      apiCallMs,
      issued: Date.parse(String(e.e.data.issued_at)) - performance.timeOrigin - t0,
      busSeen: e.at - t0,
      busStamp: stampToPerf(e.e.data._stamp) - t0,
      jobReturn: j.at - t0,
      tcp,
      generation: Number(e.e.data.generation),
      probeMs,
      probes,
    };
  } finally {
    stream?.kill();
  }
}

const summaries = (s: Sample[]): Phase => ({
  apiCallMs: summarize(s.map((x) => x.apiCallMs)),
  issued: summarize(s.map((x) => x.issued)),
  busSeen: summarize(s.map((x) => x.busSeen)),
  busStamp: summarize(s.map((x) => x.busStamp)),
  jobReturn: summarize(s.map((x) => x.jobReturn)),
  tcp: summarize(s.map((x) => x.tcp)),
  samples: s,
});

export async function benchE2E(o: E2EOptions): Promise<E2EResult> {
  let kube: KubeCluster | undefined;
  let lab: Lab | undefined;
  let salt: SaltStack | undefined;
  let bridge: BridgeProc | undefined;
  let rootRelay: Server | undefined;
  try {
    const s0 = now();
    o.log('starting kube-apiserver + etcd, salt-master + salt-api, 1 salt-minion (netns) with redis');
    kube = await startKube(CLUSTER);
    lab = await startLab();
    salt = await startSalt(lab, { minions: 1 });
    const m = salt.minions[0]!;
    await salt.setPillar({
      [m.id]: {
        kube_allowlist: {
          public_keys: [KEYS.publicText],
          backend: 'ipset',
          // kubeconfig: only for kube_allowlist.pull (the minion shares this filesystem).
          clusters: { [CLUSTER]: { kubeconfig: kube.bridgeKubeconfig } },
          // The burst part deletes 1,000 of 1,005 nodes: the guard is configured to allow it.
          max_shrink: 1,
          rules: [{ name: 'redis', clusters: [CLUSTER], proto: 'tcp', ports: [6379], others: 'drop' }],
        },
      },
    });
    await startRedis(m.host);
    const nodes = await lab.addHost('nodes');
    const maxIp = Math.max(o.iterations, 40 + o.pulls);
    if (maxIp >= 100) throw new Error('at most 59 pulls / 99 iterations (node addresses 1..99 of the lab)');
    for (let n = 1; n <= maxIp; n++) await nodes.addAddress(lab.nodeIp4(n));
    for (const n of [...BASE_NODES, OUTSIDER]) await nodes.addAddress(lab.nodeIp4(n));
    for (const n of BASE_NODES) await kube.createNode(`base-${n}`, dual(lab, n));

    bridge = await startBridge({
      clusters: [{ name: CLUSTER, kube, safety: { maxShrinkFraction: 1, minNodes: 1 } }],
      salt,
      privateKey: KEYS.privateText,
      // The product defaults (src/config/schema.ts) unless overridden on the command line.
      publish: { minIntervalMs: o.minIntervalMs, maxDelayMs: o.maxDelayMs, retry: { initialMs: 1000, maxMs: 60_000 } },
      extra: { log: { level: 'info' } },
    });
    await bridge.waitReady();
    const reach = async (n: number) => (await probe(nodes, lab!.nodeIp4(n), m.host.ipv4, 0.3)).ok;
    await waitFor(
      'first list applied (outsider dropped, base node accepted)',
      async () => !(await reach(OUTSIDER)) && (await reach(BASE_NODES[0]!)),
      60_000,
      200,
    );
    const stackStartMs = now() - s0;
    o.log(`stack up in ${(stackStartMs / 1000).toFixed(1)} s; ${o.iterations} joins + leaves`);

    const probeStats = { ok: [] as number[], dropped: [] as number[] };
    const joins: Sample[] = [];
    const leaves: Sample[] = [];
    for (let i = 1; i <= o.iterations; i++) {
      const ip = lab.nodeIp4(i);
      const name = `bench-${i}`;
      const has = (e: BusEvent) => Array.isArray(e.data.ipv4) && (e.data.ipv4 as string[]).includes(ip);
      await sleep(1000); // quiet period: each change is measured on its own
      joins.push(await measure(o.probe, salt, m, nodes, ip, true, () => kube!.createNode(name, dual(lab!, i)).then(() => undefined), has, probeStats));
      await sleep(1000);
      leaves.push(
        await measure(
          o.probe,
          salt,
          m,
          nodes,
          ip,
          false,
          () => kube!.deleteNode(name),
          (e) => !has(e),
          probeStats,
        ),
      );
      const j = joins.at(-1)!;
      const l = leaves.at(-1)!;
      o.log(
        `  #${String(i).padStart(2)}  join: bus ${Math.round(j.busSeen)} ms, return ${Math.round(j.jobReturn)} ms, tcp ${Math.round(j.tcp)} ms   leave: bus ${Math.round(l.busSeen)} ms, return ${Math.round(l.jobReturn)} ms, tcp ${Math.round(l.tcp)} ms`,
      );
    }

    let burst: BurstResult | null = null;
    if (o.burstNodes > 0) {
      await sleep(2000);
      burst = await benchBurst({ kube, salt, cluster: CLUSTER, minions: [m.id], nodes: o.burstNodes, log: o.log });
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
      const n = 40 + k;
      await kube.createNode(`pulled-${n}`, dual(lab, n)); // each pull has a change to apply
      const t0 = now();
      const r = await salt.salt(m.id, 'kube_allowlist.pull', [CLUSTER], { timeoutS: 60 });
      const wall = now() - t0;
      const ret = r[m.id] as { changed?: unknown; reason?: unknown; applied?: unknown } | string | undefined;
      if (typeof ret !== 'object' || ret.applied !== true) throw new Error(`kube_allowlist.pull failed: ${JSON.stringify(r).slice(0, 500)}`);
      if (await reach(n)) admitted++;
      results.push({ wallMs: wall, changed: ret.changed, reason: ret.reason });
      o.log(`  pull #${k + 1}: ${Math.round(wall)} ms (changed: ${String(ret.changed)})`);
    }

    return {
      iterations: o.iterations,
      publish: { minIntervalMs: o.minIntervalMs, maxDelayMs: o.maxDelayMs },
      backend: 'ipset',
      probe: { mode: o.probe, timeoutS: PROBE_TIMEOUT_S, pollMs: POLL_MS, acceptedMs: summarize(probeStats.ok), droppedMs: summarize(probeStats.dropped) },
      join: summaries(joins),
      leave: summaries(leaves),
      pull: { calls: o.pulls, wallMs: summarize(results.map((r) => r.wallMs)), pingMs: summarize(pingMs), admittedAfterReturn: admitted, results },
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

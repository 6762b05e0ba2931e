// kube-salt-bridge benchmark: `npm run bench [-- options]` (bash scripts/bench.sh → node --expose-gc bench/run.ts).
// Prints tables and writes the run's results to bench/results/<YYYY-MM-DD>.json and .md (the
// machine, versions, the exact command, the load average before and after each part, every
// figure). bench/RESULTS.md is the hand-written analysis that links them. Speed and memory are
// measured here, never by timed assertions in tests.
//
// Options:
//   --quick                  small sizes (50 nodes, 2 iterations, a 20-node burst, the peer at 50
//                            nodes, the fan-out's quick options); fails unless every figure was
//                            produced (a number); writes to a temporary directory, never bench/
//   --no-e2e                 skip part 4 (the real stack: kube-apiserver, Salt, netns, the bridge)
//   --e2e-iterations N       joins + leaves on the real stack (default 20)
//   --pulls N                kube_allowlist.pull calls for the baseline (default 10)
//   --idle-s S               after the joins and leaves, the bridge left alone S seconds: events it
//                            fired, its CPU time and RSS (default 600; --quick 20; 0 skips)
//   --schedule-intervals S,S the pull baseline on Salt's own schedule on minion-1, one period each
//                            (default 60,5; --quick 5; none skips)
//   --schedule-trials N,N    joins measured at each period (default 4,8: about 5 minutes; --quick 2)
//   --probe stream|harness   how TCP admission is observed (default stream; see bench/e2e.ts)
//   --min-interval-ms N      the bridge's publish.minIntervalMs (default: the product default, 500)
//   --max-delay-ms N         the bridge's publish.maxDelayMs (default: the product default, 2000)
//   --resync-s N             the bridge's publish.resyncIntervalSeconds (default: the product default, 600)
//   --burst-nodes N          Nodes created, then deleted, as fast as the apiserver takes them (default 1000; 0 skips)
//   --peer-bin PATH          the peer's binary (default $PEER_BIN; scripts/build-peer.sh builds it); none: the peer is skipped
//   --peer-sizes N,N         Node counts of the side by side with the peer (default 50,5000)
//   --peer-runs R            start-ups per process and size (default 3)
//   --peer-changes N         joins (+ leaves) per size (default 10)
//   --peer-heartbeats N      kubelet heartbeats per size (default 1000)
//   --bridge-entry dist|src  how the bridge runs beside the peer (default dist when dist/ is built, else src)
//   --bridge-root DIR        the checkout whose bridge runs beside the peer (default this one; e.g. a
//                            `git archive` of a commit, built, node_modules linked), --bridge-commit C names it
//   --no-fanout              skip part 7 (bench/fanout.ts: N minions, bytes and CPU per minion)
//   --results-dir DIR        where the results files go (default bench/results; --quick: a temporary directory)
//   --no-write               print only; write no results files
// `npm run bench -- scale [...]` runs bench/scale.ts instead (section 5 of RESULTS.md), `-- fanout
// [...]` bench/fanout.ts alone.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchChange, benchPlan, benchSource, changeTable, type ChangeResult, type PlanResult, type SourceResult } from './core.ts';
import { benchMinion, type MinionResult } from './minion.ts';
import { bytes, int, missingFigures, ms, table, type Summary } from './stats.ts';
import type { Dist, E2EResult, IdleResult, Phase, ProbeMode } from './e2e.ts';
import type { BurstPhase, BurstResult } from './burst.ts';
import type { PeerResult, Entry } from './peer.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-e2e': { type: 'boolean', default: false },
    'e2e-iterations': { type: 'string' },
    pulls: { type: 'string' },
    'idle-s': { type: 'string' },
    'schedule-intervals': { type: 'string' },
    'schedule-trials': { type: 'string' },
    probe: { type: 'string', default: 'stream' },
    'min-interval-ms': { type: 'string', default: '500' },
    'max-delay-ms': { type: 'string', default: '2000' },
    'resync-s': { type: 'string', default: '600' },
    'burst-nodes': { type: 'string' },
    'peer-bin': { type: 'string', default: process.env.PEER_BIN ?? '' },
    'peer-sizes': { type: 'string' },
    'peer-runs': { type: 'string' },
    'peer-changes': { type: 'string' },
    'peer-heartbeats': { type: 'string' },
    'bridge-entry': { type: 'string' },
    'bridge-root': { type: 'string' },
    'bridge-commit': { type: 'string' },
    'no-fanout': { type: 'boolean', default: false },
    'results-dir': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.probe !== 'stream' && args.probe !== 'harness') throw new Error('--probe must be stream or harness');
const quick = args.quick;
const num = (v: string | undefined, full: number, small: number): number => {
  const n = Number(v ?? (quick ? small : full));
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a count: ${v}`);
  return n;
};

const PLAN_SIZES: Array<[number, number]> = quick
  ? [[50, 2]]
  : [
      [100, 500],
      [1000, 200],
      [5000, 50],
    ];
const CHANGE_SIZES: Array<[number, number]> = quick
  ? [[50, 6]]
  : [
      [100, 300],
      [1000, 300],
      [5000, 150],
    ];
const SOURCE_NODES = quick ? 50 : 5000;
const HEARTBEATS = quick ? 100 : 10_000;
const MINION_NODES = quick ? 50 : 5000;
const MINION_ITERATIONS = quick ? 2 : 20;
const E2E_ITERATIONS = num(args['e2e-iterations'], 20, 2);
const PULLS = num(args.pulls, 10, 1);
const IDLE_S = num(args['idle-s'], 600, 20);
const SCHEDULE_SPEC = args['schedule-intervals'] ?? (quick ? '5' : '60,5');
const SCHEDULE_INTERVALS = SCHEDULE_SPEC === 'none' ? [] : SCHEDULE_SPEC.split(',').map((v) => num(v, 0, 0));
if (SCHEDULE_INTERVALS.some((v) => v < 1)) throw new Error('--schedule-intervals: periods of at least 1 s');
const SCHEDULE_TRIALS = SCHEDULE_INTERVALS.map((_, k) => {
  const given = (args['schedule-trials'] ?? (quick ? '2' : '4,8')).split(',');
  return num(given[Math.min(k, given.length - 1)], 0, 0);
});
const BURST_NODES = num(args['burst-nodes'], 1000, 20);
const PEER_SIZES = (args['peer-sizes'] ?? (quick ? '50' : '50,5000')).split(',').map((s) => num(s, 0, 0));
const PEER_RUNS = num(args['peer-runs'], 3, 1);
const PEER_CHANGES = num(args['peer-changes'], 10, 2);
const PEER_HEARTBEATS = num(args['peer-heartbeats'], 1000, 50);
const BRIDGE_ENTRY: Entry = (args['bridge-entry'] ??
  (!quick && existsSync(join(args['bridge-root'] ?? join(import.meta.dirname, '..'), 'dist', 'main.js')) ? 'dist' : 'src')) as Entry;
if (BRIDGE_ENTRY !== 'dist' && BRIDGE_ENTRY !== 'src') throw new Error('--bridge-entry must be dist or src');

const sh = (cmd: string, a: string[]): string => {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return 'unavailable';
  }
};
const load = () => loadavg().map((l) => Math.round(l * 100) / 100);

function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  const root = join(import.meta.dirname, '..');
  const dirty = sh('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    host: {
      nproc: availableParallelism(),
      cpu,
      memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      kernel: sh('uname', ['-r']),
      loadavgAtStart: load(),
    },
    node: process.version,
    python: sh(join(process.env.KSB_VENV ?? '', 'bin', 'python'), ['--version']).replace('Python ', ''),
    salt: sh('salt', ['--version']),
    kubeApiserver: sh('kube-apiserver', ['--version']),
    redis:
      sh('redis-server', ['--version'])
        .split(' ')
        .find((w) => w.startsWith('v='))
        ?.slice(2) ?? 'unavailable',
    bridgeCommit: `${sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])}${dirty && dirty !== 'unavailable' ? ' (with uncommitted changes)' : ''}`,
    /** The working tree's uncommitted files (what the in-tree parts ran besides the commit). */
    uncommitted: dirty && dirty !== 'unavailable' ? dirty.split('\n').map((l) => l.slice(3)) : [],
  };
}

const cmdArgs = process.argv.slice(2);
const envPrefix = process.env.PEER_BIN ? `PEER_BIN=${process.env.PEER_BIN} ` : '';
const command = {
  npm: `${envPrefix}npm run bench${cmdArgs.length ? ` -- ${cmdArgs.join(' ')}` : ''}`,
  node: `node --expose-gc bench/run.ts${cmdArgs.length ? ` ${cmdArgs.join(' ')}` : ''}`,
};

/** bench/fanout.ts as this file uses it (loaded by path: the part is skipped where the file is not). */
interface FanoutModule {
  quickOptions(log: (s: string) => void): unknown;
  defaultOptions(log: (s: string) => void): unknown;
  benchFanout(o: unknown): Promise<Record<string, unknown>>;
  fanoutMarkdown(r: Record<string, unknown>, command: string): string;
}

/** One part of the run: when it ran, for how long, the load average before and after. */
interface PartRecord {
  startedAt: string;
  seconds: number;
  loadavgBefore: number[];
  loadavgAfter: number[];
}
const parts: Record<string, PartRecord | { skipped: string }> = {};
async function part<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const startedAt = new Date().toISOString();
  const loadavgBefore = load();
  const t = performance.now();
  const r = await fn();
  parts[name] = { startedAt, seconds: Math.round((performance.now() - t) / 100) / 10, loadavgBefore, loadavgAfter: load() };
  log(`   (${name}: ${parts[name].seconds} s; load average before ${loadavgBefore.join(' / ')}, after ${load().join(' / ')})`);
  return r;
}
const skip = (name: string, why: string) => {
  parts[name] = { skipped: why };
  log(`   ${why}`);
};

const log = (s: string) => console.log(s);
const section = (s: string) => console.log(`\n== ${s}`);

// ---- 1. plan core ----
function planTable(rows: PlanResult[], md: boolean): string {
  return table(
    ['nodes', 'entries v4+v6', 'project', 'digest', 'diff', 'build+sign', 'serialize', 'total p50', 'total p95', 'payload', 'request body', 'of 1 MiB'],
    rows.map((r) => [
      int(r.nodes),
      `${int(r.entries.ipv4)}+${int(r.entries.ipv6)}`,
      ms(r.stagesMs.project.median),
      ms(r.stagesMs.digest.median),
      ms(r.stagesMs.diff.median),
      ms(r.stagesMs.buildSign.median),
      ms(r.stagesMs.serialize.median),
      ms(r.stagesMs.total.median),
      ms(r.stagesMs.total.p95),
      bytes(r.payloadBytes),
      bytes(r.requestBodyBytes),
      `${(r.fractionOfLimit * 100).toFixed(1)}%${r.fits ? '' : ' OVER'}`,
    ]),
    md,
  );
}

// ---- 2. source ----
function sourceTable(s: SourceResult, md: boolean): string {
  const h = s.heartbeats;
  return table(
    ['KubeNodeSource, 5,000 dual-stack nodes', 'value'],
    [
      ['heap held by the synced source (after gc)', `${bytes(s.sourceHeapBytes)} (${int(s.sourceBytesPerNode)} B/node)`],
      ['  + the view() snapshot', bytes(s.withViewHeapBytes)],
      [
        'for comparison: the full Node objects (informer cache)',
        `${bytes(s.rawObjectsHeapBytes)} (${int(s.rawBytesPerNode)} B/node; ${bytes(s.nodeJsonBytes)} JSON each)`,
      ],
      [`${int(h.events)} heartbeat-only MODIFIED events`, `${ms(h.ms)} → ${int(h.eventsPerSecond)} events/s (${h.usPerEvent.toFixed(1)} µs/event)`],
      ['  the same incl. JSON.parse of each watch line', `${ms(h.withParseMs)} → ${int(h.withParseEventsPerSecond)} events/s`],
      ['  onChange notifications / ignored updates', `${h.changesNotified} / ${int(h.ignored)}`],
    ],
    md,
  );
}

// ---- 3. minion ----
function minionTable(m: MinionResult, md: boolean): string {
  const row = (name: string, s: Summary, extra = ''): string[] => [name, ms(s.median), ms(s.p95), extra];
  return table(
    ['minion side, 5,000 dual-stack nodes (python ' + m.python + ')', 'p50', 'p95', ''],
    [
      row('json.loads of the payload', m.jsonLoadsMs, bytes(m.payloadBytes)),
      row('payload.verify (json.loads + shape, Ed25519 signature, every entry, digest)', m.verifyMs, `${int(m.entries.ipv4)}+${int(m.entries.ipv6)} entries`),
      row('firewall.ipset_script (render the ipset restore input)', m.ipsetScriptMs, `${int(m.ipsetScriptLines)} lines, ${bytes(m.ipsetScriptBytes)}`),
      row('firewall.plan, empty kernel (first apply)', m.planFirstMs, `${m.planFirstSteps.length} steps`),
      row('parse ipset save + firewall.plan, one node joined', m.planOneJoinMs, m.planOneJoinSteps.join('; ')),
    ],
    md,
  );
}

// ---- 4. e2e ----
function e2eTable(e: E2EResult, md: boolean): string {
  const rows: string[][] = [];
  const add = (phase: string, p: Phase, tcpLabel: string) => {
    const r = (label: string, s: Dist) => rows.push([phase, label, ms(s.median), ms(s.p95), ms(s.p99), ms(s.max)]);
    r('Kubernetes API call(s) returned', p.apiCallMs);
    r('payload signed by the bridge (issued_at)', p.issued);
    r('(a) event fired on the master (_stamp)', p.busStamp);
    r('(a) event seen on the bus (salt-run state.event)', p.busSeen);
    for (const m of p.minions) r(`(b) ${m.id} (${m.backend}) job return for that generation`, m.jobReturn);
    r(`(b) job return, the last of the ${p.minions.length} minions`, p.jobReturn);
    for (const m of p.minions) r(`(c) ${m.id} (${m.backend}): ${tcpLabel}`, m.tcp);
    r(`(c) ${tcpLabel}, the last of the ${p.minions.length} minions`, p.tcp);
  };
  add('join', e.join, 'TCP connection from the new IP accepted');
  add('leave', e.leave, 'TCP connection from the IP dropped');
  const first = e.minions[0]!.id;
  rows.push([
    'baseline',
    `salt ${first} kube_allowlist.pull (wall, per call; picks up changes only when run)`,
    ms(e.pull.wallMs.median),
    ms(e.pull.wallMs.p95),
    '',
    ms(e.pull.wallMs.max),
  ]);
  rows.push(['baseline', `salt ${first} test.ping (CLI round trip floor)`, ms(e.pull.pingMs.median), ms(e.pull.pingMs.p95), '', ms(e.pull.pingMs.max)]);
  for (const s of e.schedule) {
    rows.push([
      'baseline',
      `Salt schedule every ${s.intervalS} s on ${first}: join → TCP accepted (${s.trials} joins; p50 ${s.ratioToBridgeP50.toFixed(1)}× the bridge's last minion, ${s.ratioToBridgeSameMinionP50.toFixed(1)}× its ${first})`,
      ms(s.tcp.median),
      ms(s.tcp.p95),
      ms(s.tcp.p99),
      ms(s.tcp.max),
    ]);
  }
  return table(
    [
      '',
      `real stack, ${e.iterations} joins + ${e.iterations} leaves on ${e.minions.length} minions (ms from the Node create/delete call)`,
      'p50',
      'p95',
      'p99',
      'max',
    ],
    rows,
    md,
  );
}

// ---- 4, idle ----
function idleTable(i: IdleResult, md: boolean): string {
  return table(
    [`the bridge left alone for ${i.seconds} s after the joins and leaves`, 'value'],
    [
      ['events of the cluster fired on the bus', String(i.events)],
      [
        `  of which the periodic resync (publish.resyncIntervalSeconds ${i.resyncIntervalS})`,
        `${i.resyncs} (${bytes(i.resyncBytes)} in all, the largest ${bytes(i.resyncMaxBytes)})`,
      ],
      ['  of which new generations / targeted re-sends', `${i.newGenerations} / ${i.resends}`],
      ['  other than the resync (expected 0)', String(i.otherEvents)],
      ["the bridge's ksb_publishes_total over the window: publish / republish / resend", `${i.metrics.publish} / ${i.metrics.republish} / ${i.metrics.resend}`],
      ['kube_allowlist.apply returns on the bus (all minions)', String(i.applyReturns)],
      ['bridge CPU (utime + stime) over the window', `${ms(i.cpuMs)} (${ms(i.cpuMsPerMinute)} per minute)`],
      ['bridge RSS at the end (VmRSS) / peak since start (VmHWM)', `${bytes(i.rssBytes)} / ${bytes(i.peakRssBytes)}`],
    ],
    md,
  );
}

// ---- 4b. bursts ----
function burstTable(b: BurstResult, md: boolean): string {
  const row = (name: string, f: (p: BurstPhase) => string) => [name, f(b.create), f(b.delete)];
  return table(
    [`burst of ${int(b.nodes)} Nodes (${b.concurrency} API calls in flight), ${b.minions} minion(s)`, 'creations', 'deletions'],
    [
      row('all API calls (first start → last end)', (p) => ms(p.apiMs)),
      row('first call returned (a creation: POST, then the status PATCH with the address)', (p) => ms(p.firstCallMs)),
      row('first event signed by the bridge (issued_at), after the first call started', (p) => ms(p.firstSignedMs)),
      row("first event fired on the master (_stamp; salt-api's runner event.send)", (p) => ms(p.firstFiredMs)),
      row('first event on the bus after the first call', (p) => ms(p.firstEventMs)),
      row('full publishes until the final list (events fired)', (p) => String(p.events)),
      row('targeted re-sends meanwhile', (p) => String(p.resends)),
      row('final list on the bus, after the last call', (p) => ms(p.finalEventAfterLastMs)),
      ...b.create.appliedAfterLastMs.map((x, k) =>
        row(`${x.minion} applied the final list, after the last call`, (p) => ms(p.appliedAfterLastMs[k]?.ms ?? Number.NaN)),
      ),
      row('every minion applied the final list, after the last call', (p) => ms(p.allAppliedAfterLastMs)),
      row('entries in the final list', (p) => int(p.finalEntries)),
      row('load average (1/5/15 min) when the phase started', (p) => p.loadavgAtStart.join(' / ')),
    ],
    md,
  );
}

// ---- 6. the peer side by side ----
function peerTable(p: PeerResult, md: boolean): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const sec = (v: number) => `${(v / 1000).toFixed(2)} s`;
  const rows: string[][] = [];
  for (const z of p.sizes) {
    const n = int(z.nodes);
    const r = (label: string, f: (s: PeerResult['sizes'][number]['bridge']) => string) => rows.push([n, label, f(z.bridge), f(z.peer)]);
    r(`start → first full output (median of ${z.bridge.runs.length})`, (s) => sec(s.firstOutputMs.median));
    r('outputs written until the first full one (fewest–most of the runs)', (s) => {
      const v = s.runs.map((x) => x.outputsUntilFull);
      return Math.min(...v) === Math.max(...v) ? int(v[0]!) : `${int(Math.min(...v))}–${int(Math.max(...v))}`;
    });
    r('RSS peak (VmHWM, median)', (s) => mib(s.peakRssBytes.median));
    r(`RSS idle (${p.idleMs / 1000} s after the output, median)`, (s) => mib(s.idleRssBytes.median));
    r('CPU from spawn to the idle sample (median)', (s) => sec(s.runs.map((x) => x.cpuMs).sort((a, b) => a - b)[Math.floor((s.runs.length - 1) / 2)]!));
    r(`one join: create call returned → output (p50 / max of ${p.changes})`, (s) => `${ms(s.joinMs.median)} / ${ms(s.joinMs.max)}`);
    r(`one leave: delete call returned → output (p50 / max)`, (s) => `${ms(s.leaveMs.median)} / ${ms(s.leaveMs.max)}`);
    r(`${int(p.heartbeats)} heartbeats: outputs`, (s) => int(s.heartbeats.outputs));
    r(
      `${int(p.heartbeats)} heartbeats: CPU (idle in a window as long: ${sec(z.heartbeatWindowMs)})`,
      (s) => `${ms(s.heartbeats.cpuMs)} (${ms(s.heartbeats.idleCpuMs)})`,
    );
    rows.push([n, 'load average (1/5/15 min) at start / end', z.loadavgAtStart.join(' / '), z.loadavgAtEnd.join(' / ')]);
  }
  return table(['nodes', 'figure', `bridge (${p.bridge.commit}, ${p.bridge.entry})`, `peer (${p.peer.version})`], rows, md);
}

async function main(): Promise<void> {
  const info = machine();
  log(`kube-salt-bridge benchmark${quick ? ' (quick)' : ''} — ${info.date}`);
  log(`${info.host.nproc} CPUs (${info.host.cpu}), ${info.host.memGiB} GiB; node ${info.node}, python ${info.python}, ${info.salt}`);
  log(`command: ${command.npm}   (= ${command.node})`);

  section('1. plan core (in-process): projectNodes → digest → diff (first publish) → buildPayload/sign → request body');
  const plan = await part('plan', () => PLAN_SIZES.map(([n, it]) => benchPlan(n, it)));
  log(planTable(plan, false));
  const change = await part('change', async () => {
    const r: ChangeResult[] = [];
    for (const [n, k] of CHANGE_SIZES) r.push(await benchChange(n, k));
    return r;
  });
  log(changeTable(change, false));

  section('2. KubeNodeSource (fake NodeApi, realistic Node objects)');
  const source = await part('source', () => benchSource(SOURCE_NODES, HEARTBEATS));
  log(sourceTable(source, false));

  section('3. minion side (saltext.kube_allowlist helpers in the Salt venv python)');
  const minion = await part('minion', () => benchMinion(MINION_NODES, MINION_ITERATIONS));
  log(minionTable(minion, false));

  let e2e: E2EResult | undefined;
  section('4. end to end on the real stack');
  if (args['no-e2e']) skip('e2e', 'skipped (--no-e2e)');
  else {
    const { benchE2E } = await import('./e2e.ts');
    e2e = await part('e2e', () =>
      benchE2E({
        iterations: E2E_ITERATIONS,
        pulls: PULLS,
        idleS: IDLE_S,
        resyncIntervalS: num(args['resync-s'], 600, 600),
        scheduleIntervalsS: SCHEDULE_INTERVALS,
        scheduleTrials: SCHEDULE_TRIALS,
        probe: args.probe as ProbeMode,
        minIntervalMs: Number(args['min-interval-ms']),
        maxDelayMs: Number(args['max-delay-ms']),
        burstNodes: BURST_NODES,
        log: (s) => log(`   ${s}`),
      }),
    );
    log(e2eTable(e2e, false));
    log(
      `   bridge publish.minIntervalMs=${e2e.publish.minIntervalMs} maxDelayMs=${e2e.publish.maxDelayMs}; backends ${e2e.minions.map((m) => `${m.id} ${m.backend}`).join(', ')}; probe mode ${e2e.probe.mode}`,
    );
    if (e2e.idle) log(idleTable(e2e.idle, false));
    if (e2e.burst) log(burstTable(e2e.burst, false));
  }

  section('6. side by side with the peer (stone/k8s-node-external-ip-watcher) on the same kube-apiserver');
  let peer: PeerResult | undefined;
  if (!args['peer-bin']) skip('peer', 'no peer binary given: skipping the peer (PEER_BIN=… or --peer-bin; bash scripts/build-peer.sh builds it)');
  else {
    const { benchPeer } = await import('./peer.ts');
    peer = await part('peer', () =>
      benchPeer({
        bin: args['peer-bin'],
        sizes: PEER_SIZES,
        runs: PEER_RUNS,
        idleMs: quick ? 2000 : 30_000,
        changes: PEER_CHANGES,
        heartbeats: PEER_HEARTBEATS,
        settleMs: 2000,
        minIntervalMs: Number(args['min-interval-ms']),
        maxDelayMs: Number(args['max-delay-ms']),
        entry: BRIDGE_ENTRY,
        ...(args['bridge-root'] ? { bridgeRoot: args['bridge-root'] } : {}),
        ...(args['bridge-commit'] ? { bridgeCommit: args['bridge-commit'] } : {}),
        log: (s) => log(`   ${s}`),
      }),
    );
    log(peerTable(peer, false));
  }

  section('7. fan-out (bench/fanout.ts): N minions, per-minion bytes and CPU per apply');
  let fanout: Record<string, unknown> | undefined;
  let fanoutMd = '';
  const fanoutFile = join(import.meta.dirname, 'fanout.ts');
  if (args['no-fanout']) skip('fanout', 'skipped (--no-fanout)');
  else if (!existsSync(fanoutFile)) skip('fanout', 'skipped: bench/fanout.ts is not there');
  else {
    const f = (await import(fanoutFile)) as FanoutModule;
    const o = quick ? f.quickOptions((s) => log(`   ${s}`)) : f.defaultOptions((s) => log(`   ${s}`));
    const r = await part('fanout', () => f.benchFanout(o));
    fanout = r;
    fanoutMd = f.fanoutMarkdown(r, command.npm);
    log(fanoutMd);
  }

  const loadavgAtEnd = load();
  const results = {
    ...info,
    quick,
    host: { ...info.host, loadavgAtEnd },
    command,
    peerVersion: peer ? { commit: peer.peer.version, go: peer.peer.go, bin: peer.peer.bin } : null,
    parts,
    plan,
    change,
    source,
    minion,
    e2e: e2e ?? null,
    peer: peer ?? null,
    fanout: fanout ?? null,
  };
  if (quick) {
    // Every figure there, as a number: a part that ran and lost a figure fails the run; no timing is judged.
    // The parts that ran (a skipped part says so in `parts`); with the real stack, the burst too.
    const ran: Record<string, unknown> = { plan, change, source, minion };
    if (!args['no-e2e']) Object.assign(ran, { e2e, burst: e2e?.burst });
    if (peer) ran.peer = peer;
    if (fanout) ran.fanout = fanout;
    const missing = missingFigures(ran);
    if (missing.length) throw new Error(`quick run: ${missing.length} figure(s) missing: ${missing.slice(0, 30).join(', ')}`);
    log(`\nquick run: every figure produced (${Object.keys(ran).join(', ')})`);
  }
  if (!args['no-write']) {
    const dir = args['results-dir'] ?? (quick ? mkdtempSync(join(tmpdir(), 'ksb-bench-')) : join(import.meta.dirname, 'results'));
    mkdirSync(dir, { recursive: true });
    const day = info.date.slice(0, 10);
    writeFileSync(join(dir, `${day}.json`), JSON.stringify(results, null, 2) + '\n');
    writeFileSync(join(dir, `${day}.md`), markdown(results, plan, source, minion, e2e, peer, fanoutMd, change));
    log(`\nwrote ${join(dir, day)}.json and .md`);
  }
}

function markdown(
  info: ReturnType<typeof machine> & { command: typeof command },
  plan: PlanResult[],
  source: SourceResult,
  minion: MinionResult,
  e2e: E2EResult | undefined,
  peer: PeerResult | undefined,
  fanoutMd: string,
  change: ChangeResult[],
): string {
  const p5 = plan.at(-1)!;
  const partLine = ([name, p]: [string, PartRecord | { skipped: string }]) =>
    'skipped' in p
      ? `  - ${name}: ${p.skipped}`
      : `  - ${name}: ${p.startedAt.slice(11, 19)} UTC, ${p.seconds} s; load average before ${p.loadavgBefore.join(' / ')}, after ${p.loadavgAfter.join(' / ')}`;
  const out = [
    '# kube-salt-bridge benchmark results',
    '',
    `- date: ${info.date}`,
    `- machine: ${info.host.nproc} CPUs (\`nproc\`), ${info.host.cpu}, ${info.host.memGiB} GiB RAM, kernel ${info.host.kernel}`,
    `- load average (1/5/15 min) at start ${info.host.loadavgAtStart.join(' / ')}, at end ${(info.host as { loadavgAtEnd?: number[] }).loadavgAtEnd?.join(' / ') ?? '-'} (other work on the machine skews the end-to-end numbers)`,
    `- node ${info.node}; python ${info.python}; ${info.salt}; ${info.kubeApiserver}; redis ${info.redis}`,
    `- bridge at ${info.bridgeCommit}; peer: ${peer ? `stone/k8s-node-external-ip-watcher ${peer.peer.version} (${peer.peer.go})` : 'not run (no PEER_BIN)'}`,
    `- command: \`${info.command.npm}\` (runs \`bash scripts/bench.sh\` → \`${info.command.node}\`)`,
    '- parts (start, duration, load average 1/5/15 min before and after):',
    ...Object.entries(parts).map(partLine),
    '',
    'Generated by `bench/run.ts`; numbers from one run on this machine. Addresses are worst-case length',
    '(15-character IPv4, 39-character IPv6), so the sizes are upper bounds for real clusters.',
    '',
    '## 1. Plan core (in-process)',
    '',
    `Dual-stack nodes (InternalIP v4 + v6 each) plus 50 pod CIDRs; first publish (added = every entry,`,
    `capped at ${1000} by DIFF_CAP). Stage times are medians; "request body" is the salt-api lowstate`,
    '`[{client: "runner", fun: "event.send", tag, data}]` (the bridge posts the object without the array: 2 bytes less).',
    '',
    planTable(plan, true),
    '',
    `5,000 nodes: request body ${bytes(p5.requestBodyBytes)} = ${(p5.fractionOfLimit * 100).toFixed(1)}% of salt-api's 1 MiB limit (${p5.fits ? 'fits' : 'DOES NOT FIT'}).`,
    '',
    "One change on a warm bridge (join, address change, leave in turn): watch event → source → the cluster's plan → payload built and signed, form chosen as the controller does.",
    '',
    changeTable(change, true),
    '',
    '## 2. KubeNodeSource',
    '',
    sourceTable(source, true),
    '',
    '## 3. Minion side',
    '',
    minionTable(minion, true),
    '',
  ];
  if (e2e) {
    out.push(
      `## 4. End to end (real kube-apiserver, salt-master/api, ${e2e.minions.length} minions each in its netns with redis, the bridge)`,
      '',
      `Bridge publish.minIntervalMs=${e2e.publish.minIntervalMs}, maxDelayMs=${e2e.publish.maxDelayMs}, resyncIntervalSeconds=${e2e.publish.resyncIntervalSeconds} (the product defaults unless the command says otherwise);`,
      `one backend per minion: ${e2e.minions.map((m) => `${m.id} ${m.backend}`).join(', ')}. Percentiles are nearest-rank (p99 is the max below 100 samples). Times are ms from the start of the Kubernetes API call that creates (POST + status PATCH with the`,
      `addresses) or deletes the Node. TCP: probe mode \`${e2e.probe.mode}\` — ${
        e2e.probe.mode === 'stream'
          ? `a long-lived prober in the node namespace starts a connection (+ Redis PING) to every minion every ${e2e.probe.pollMs} ms; join = the first accepted connection completed, leave = the first of 3 consecutive attempts whose SYN got no answer within ${e2e.probe.timeoutS * 1000} ms was started; each then confirmed with one harness probe() to the last minion`
          : `harness probe() (a new python per attempt, timeout ${e2e.probe.timeoutS * 1000} ms) polled every ${e2e.probe.pollMs} ms; the time is when the probe that saw the new state returned (probe() itself takes p50 ${ms(e2e.probe.acceptedMs.median)} accepted / ${ms(e2e.probe.droppedMs.median)} dropped)`
      }.`,
      '',
      e2eTable(e2e, true),
      '',
      `Baseline: \`salt minion-1 kube_allowlist.pull bench\` (the mode of the pull formula this project replaced, see docs/ARCHITECTURE.md) with a new Node before each call;`,
      `${e2e.pull.admittedAfterReturn}/${e2e.pull.calls} calls had admitted it when they returned. It only picks up changes when someone`,
      'runs it (by hand or on a schedule); the bridge reacts by itself. "Salt schedule" is that mode as the formula ran: the same function',
      "run by the minion's own scheduler (`schedule.add` through the master, `seconds: N`, the bridge stopped); each join waits a",
      'stratified random part of the period after the previous one was admitted, so it lands at a random time against the schedule.',
      `Ratios are the schedule's join → TCP accepted p50 over the bridge's (the last of the minions, and minion-1 alone: the same minion and backend).`,
      '',
      ...e2e.schedule.map(
        (s) =>
          `- every ${s.intervalS} s: ${s.trials} joins, p50 ${ms(s.tcp.median)} (${s.ratioToBridgeP50.toFixed(1)}× / ${s.ratioToBridgeSameMinionP50.toFixed(1)}×), max ${ms(s.tcp.max)}; the scheduled return that applied it p50 ${ms(s.jobReturn.median)}; ${s.scheduledReturns} scheduled pull returns on the bus while it ran`,
      ),
      ...(e2e.schedule.length ? [''] : []),
    );
    if (e2e.idle) {
      out.push(
        '### Idle',
        '',
        `After the joins and leaves the bridge is left alone for ${e2e.idle.seconds} s (no Node changes, no minion restarts): the events of the cluster's tag on`,
        "the bus in that window (a resync is the same generation again; its bytes are the payload's JSON without Salt's `_stamp`), the bridge's",
        'own ksb_publishes_total, and its CPU time (utime + stime from /proc/<pid>/stat) and RSS (/proc/<pid>/status).',
        '',
        idleTable(e2e.idle, true),
        '',
      );
    }
    if (e2e.burst) {
      out.push(
        '### Bursts',
        '',
        `${int(e2e.burst.nodes)} Nodes (one InternalIP each) created, then deleted, as fast as the kube-apiserver takes them (${e2e.burst.concurrency} calls in`,
        'flight: POST + status PATCH per creation, DELETE per deletion), on the same stack and bridge (publish settings above). The',
        'guard is configured to allow the scale-down: `clusters[].safety.maxShrinkFraction: 1` on the bridge, pillar `max_shrink: 1` on the',
        'minions. "Applied" is the apply return of the final list\'s generation on the bus, per minion and the last of them.',
        '',
        burstTable(e2e.burst, true),
        '',
        `Where the first event's time goes: the bridge signed it ${ms(e2e.burst.create.firstSignedMs - e2e.burst.create.firstCallMs)} after the first creation returned`,
        `(${ms(e2e.burst.delete.firstSignedMs - e2e.burst.delete.firstCallMs)} after the first deletion); the rest, until the master fires it, is salt-api's \`runner\` client running`,
        "`event.send`: a runner job the master starts in a process of its own, the `salt/run/<jid>/ret` the reactor's trust rests on",
        '(docs/event-contract.md). It costs about 400 ms even with nothing else going on (the join rows above: signed → fired on the master),',
        "more while the kube-apiserver is taking a burst on the same 2 cores. No bridge setting shortens it; the floor is Salt's.",
        '',
      );
    }
  } else {
    out.push('## 4. End to end', '', 'Skipped (`--no-e2e`).', '');
  }
  out.push('## 5. Scale', '', 'Not part of this run: `npm run bench -- scale` (bench/scale.ts; its figures in bench/RESULTS.md section 5).', '');
  out.push('## 6. Side by side with the peer', '');
  if (peer) {
    out.push(
      `The peer: [stone/k8s-node-external-ip-watcher](https://github.com/stone/k8s-node-external-ip-watcher) at ${peer.peer.version}, built by`,
      `\`scripts/build-peer.sh\` (${peer.peer.go}), configured as packaged (log level info, resync 300 s, minNodeCount 1, command \`/bin/true\`)`,
      "with the README's one-address-a-line template, its output file on disk. The bridge: `run --dry-run`",
      `(${peer.bridge.entry === 'dist' ? 'the compiled dist/, as installed' : 'src/main.ts'}), log level info, publish ${peer.bridge.minIntervalMs} / ${peer.bridge.maxDelayMs} ms, addressTypes [ExternalIP], families [ipv4].`,
      'Both on the same kube-apiserver holding the same realistic Nodes (bench/scale.ts: 50 images, 5 conditions, dual-stack InternalIPs,',
      "plus one ExternalIP, the peer's only input). Start-ups alternate, each process alone; joins, leaves and heartbeats with both",
      'watching. Output: the peer\'s "Executing command" line after the render (file written and fsynced), the bridge\'s "dry run: would',
      'fire" line (payload built and signed). Heartbeats: strategic-merge PATCHes of the Ready condition\'s lastHeartbeatTime, round robin',
      `over the Nodes, 8 in flight; CPU = utime + stime (the peer's incl. the commands it ran) until ${peer.settleMs / 1000} s after the last returned.`,
      '',
      peerTable(peer, true),
      '',
    );
  } else out.push('Not run: no peer binary given (`PEER_BIN=$(bash scripts/build-peer.sh) npm run bench`).', '');
  out.push('## 7. Fan-out', '');
  out.push(fanoutMd || 'Not run (`--no-fanout`).', '');
  return out.join('\n');
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  process.exit(1);
});

// kube-salt-bridge benchmark: `npm run bench [-- options]` (bash scripts/bench.sh → node --expose-gc bench/run.ts).
// Prints tables and writes bench/results.json and bench/RESULTS.md. Speed and memory are measured
// here, never by timed assertions in tests.
//
// Options:
//   --no-e2e                 skip part 4 (the real stack: kube-apiserver, Salt, netns, the bridge)
//   --e2e-iterations N       joins + leaves on the real stack (default 20)
//   --pulls N                kube_allowlist.pull calls for the baseline (default 10)
//   --probe stream|harness   how TCP admission is observed (default stream; see bench/e2e.ts)
//   --min-interval-ms N      the bridge's publish.minIntervalMs (default: the product default, 500)
//   --max-delay-ms N         the bridge's publish.maxDelayMs (default: the product default, 2000)
//   --burst-nodes N          Nodes created, then deleted, as fast as the apiserver takes them (default 1000; 0 skips)
//   --no-write               print only; do not write results.json / RESULTS.md
// `npm run bench -- scale [...]` runs bench/scale.ts instead (section 5 of RESULTS.md, kept here).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchPlan, benchSource, type PlanResult, type SourceResult } from './core.ts';
import { benchMinion, type MinionResult } from './minion.ts';
import { bytes, int, ms, table, type Summary } from './stats.ts';
import type { E2EResult, Phase, ProbeMode } from './e2e.ts';
import type { BurstPhase, BurstResult } from './burst.ts';

const { values: args } = parseArgs({
  options: {
    'no-e2e': { type: 'boolean', default: false },
    'e2e-iterations': { type: 'string', default: '20' },
    pulls: { type: 'string', default: '10' },
    probe: { type: 'string', default: 'stream' },
    'min-interval-ms': { type: 'string', default: '500' },
    'max-delay-ms': { type: 'string', default: '2000' },
    'burst-nodes': { type: 'string', default: '1000' },
    'no-write': { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.probe !== 'stream' && args.probe !== 'harness') throw new Error('--probe must be stream or harness');

const PLAN_SIZES: Array<[number, number]> = [
  [100, 500],
  [1000, 200],
  [5000, 50],
];
const SOURCE_NODES = 5000;
const HEARTBEATS = 10_000;
const MINION_NODES = 5000;
const MINION_ITERATIONS = 20;

const sh = (cmd: string, a: string[]): string => {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return 'unavailable';
  }
};

function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  return {
    date: new Date().toISOString(),
    host: {
      nproc: availableParallelism(),
      cpu,
      memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      kernel: sh('uname', ['-r']),
      loadavgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
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
  };
}

const cmdArgs = process.argv.slice(2);
const command = {
  npm: `npm run bench${cmdArgs.length ? ` -- ${cmdArgs.join(' ')}` : ''}`,
  node: `node --expose-gc bench/run.ts${cmdArgs.length ? ` ${cmdArgs.join(' ')}` : ''}`,
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
    const r = (label: string, s: Summary) => rows.push([phase, label, ms(s.median), ms(s.p95), ms(s.max)]);
    r('Kubernetes API call(s) returned', p.apiCallMs);
    r('payload signed by the bridge (issued_at)', p.issued);
    r('(a) event fired on the master (_stamp)', p.busStamp);
    r('(a) event seen on the bus (salt-run state.event)', p.busSeen);
    r('(b) minion job return for that generation', p.jobReturn);
    r(`(c) ${tcpLabel}`, p.tcp);
  };
  add('join', e.join, 'TCP connection from the new IP accepted');
  add('leave', e.leave, 'TCP connection from the IP dropped');
  rows.push([
    'baseline',
    `salt ${'minion-1'} kube_allowlist.pull (wall, per call; picks up changes only when run)`,
    ms(e.pull.wallMs.median),
    ms(e.pull.wallMs.p95),
    ms(e.pull.wallMs.max),
  ]);
  rows.push(['baseline', 'salt minion-1 test.ping (CLI round trip floor)', ms(e.pull.pingMs.median), ms(e.pull.pingMs.p95), ms(e.pull.pingMs.max)]);
  return table(['', `real stack, ${e.iterations} joins + ${e.iterations} leaves (ms from the Node create/delete call)`, 'p50', 'p95', 'max'], rows, md);
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
      row('every minion applied the final list, after the last call', (p) => ms(p.allAppliedAfterLastMs)),
      row('entries in the final list', (p) => int(p.finalEntries)),
      row('load average (1/5/15 min) when the phase started', (p) => p.loadavgAtStart.join(' / ')),
    ],
    md,
  );
}

async function main(): Promise<void> {
  const info = machine();
  log(`kube-salt-bridge benchmark — ${info.date}`);
  log(`${info.host.nproc} CPUs (${info.host.cpu}), ${info.host.memGiB} GiB; node ${info.node}, python ${info.python}, ${info.salt}`);
  log(`command: ${command.npm}   (= ${command.node})`);

  section('1. plan core (in-process): projectNodes → digest → diff (first publish) → buildPayload/sign → request body');
  const plan: PlanResult[] = [];
  for (const [n, it] of PLAN_SIZES) plan.push(benchPlan(n, it));
  log(planTable(plan, false));

  section('2. KubeNodeSource (fake NodeApi, realistic Node objects)');
  const source = await benchSource(SOURCE_NODES, HEARTBEATS);
  log(sourceTable(source, false));

  section('3. minion side (saltext.kube_allowlist helpers in the Salt venv python)');
  const minion = benchMinion(MINION_NODES, MINION_ITERATIONS);
  log(minionTable(minion, false));

  let e2e: E2EResult | undefined;
  if (!args['no-e2e']) {
    section('4. end to end on the real stack');
    const { benchE2E } = await import('./e2e.ts');
    e2e = await benchE2E({
      iterations: Number(args['e2e-iterations']),
      pulls: Number(args.pulls),
      probe: args.probe as ProbeMode,
      minIntervalMs: Number(args['min-interval-ms']),
      maxDelayMs: Number(args['max-delay-ms']),
      burstNodes: Number(args['burst-nodes']),
      log: (s) => log(`   ${s}`),
    });
    log(e2eTable(e2e, false));
    log(
      `   bridge publish.minIntervalMs=${e2e.publish.minIntervalMs} maxDelayMs=${e2e.publish.maxDelayMs}; backend ${e2e.backend}; probe mode ${e2e.probe.mode}`,
    );
    if (e2e.burst) log(burstTable(e2e.burst, false));
  }

  const loadavgAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const results = { ...info, host: { ...info.host, loadavgAtEnd }, command, plan, source, minion, e2e: e2e ?? null };
  if (!args['no-write']) {
    const dir = import.meta.dirname;
    writeFileSync(join(dir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
    // Section 5 (scale) is written by `npm run bench -- scale` (bench/scale.ts); keep the last one.
    const resultsMd = join(dir, 'RESULTS.md');
    const previous = existsSync(resultsMd) ? readFileSync(resultsMd, 'utf8') : '';
    const scaleAt = previous.indexOf('\n## 5. Scale');
    writeFileSync(resultsMd, markdown(results, plan, source, minion, e2e) + (scaleAt >= 0 ? `\n${previous.slice(scaleAt + 1)}` : ''));
    log(`\nwrote bench/results.json and bench/RESULTS.md`);
  }
}

function markdown(
  info: ReturnType<typeof machine> & { command: typeof command },
  plan: PlanResult[],
  source: SourceResult,
  minion: MinionResult,
  e2e: E2EResult | undefined,
): string {
  const p5 = plan.at(-1)!;
  const out = [
    '# kube-salt-bridge benchmark results',
    '',
    `- date: ${info.date}`,
    `- machine: ${info.host.nproc} CPUs (\`nproc\`), ${info.host.cpu}, ${info.host.memGiB} GiB RAM, kernel ${info.host.kernel}`,
    `- load average (1/5/15 min) at start ${info.host.loadavgAtStart.join(' / ')}, at end ${(info.host as { loadavgAtEnd?: number[] }).loadavgAtEnd?.join(' / ') ?? '-'} (other work on the machine skews the end-to-end numbers)`,
    `- node ${info.node}; python ${info.python}; ${info.salt}; ${info.kubeApiserver}; redis ${info.redis}`,
    `- command: \`${info.command.npm}\` (runs \`bash scripts/bench.sh\` → \`${info.command.node}\`)`,
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
      '## 4. End to end (real kube-apiserver, salt-master/api, 1 minion in a netns with redis, the bridge)',
      '',
      `Bridge publish.minIntervalMs=${e2e.publish.minIntervalMs}, maxDelayMs=${e2e.publish.maxDelayMs} (the product defaults unless the command says otherwise),`,
      `backend ${e2e.backend}. Times are ms from the start of the Kubernetes API call that creates (POST + status PATCH with the`,
      `addresses) or deletes the Node. TCP: probe mode \`${e2e.probe.mode}\` — ${
        e2e.probe.mode === 'stream'
          ? `a long-lived prober in the node namespace starts a connection (+ Redis PING) every ${e2e.probe.pollMs} ms; join = the first accepted connection completed, leave = the first of 3 consecutive attempts whose SYN got no answer within ${e2e.probe.timeoutS * 1000} ms was started; each then confirmed with one harness probe()`
          : `harness probe() (a new python per attempt, timeout ${e2e.probe.timeoutS * 1000} ms) polled every ${e2e.probe.pollMs} ms; the time is when the probe that saw the new state returned (probe() itself takes p50 ${ms(e2e.probe.acceptedMs.median)} accepted / ${ms(e2e.probe.droppedMs.median)} dropped)`
      }.`,
      '',
      e2eTable(e2e, true),
      '',
      `Baseline: \`salt minion-1 kube_allowlist.pull bench\` (the mode of the pull formula this project replaced, see docs/ARCHITECTURE.md) with a new Node before each call;`,
      `${e2e.pull.admittedAfterReturn}/${e2e.pull.calls} calls had admitted it when they returned. It only picks up changes when someone`,
      'runs it (by hand or on a schedule), so its real join latency is the schedule period plus the wall time above; the bridge reacts by itself.',
      '',
    );
    if (e2e.burst) {
      out.push(
        '### Bursts',
        '',
        `${int(e2e.burst.nodes)} Nodes (one InternalIP each) created, then deleted, as fast as the kube-apiserver takes them (${e2e.burst.concurrency} calls in`,
        'flight: POST + status PATCH per creation, DELETE per deletion), on the same stack and bridge (publish settings above). The',
        'guard is configured to allow the scale-down: `clusters[].safety.maxShrinkFraction: 1` on the bridge, pillar `max_shrink: 1` on the',
        'minion. "Every minion applied" is the apply return of the final list\'s generation on the bus.',
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
  return out.join('\n');
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  process.exit(1);
});

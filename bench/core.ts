// Parts 1 and 2 of the benchmark, in-process: the plan core (projection → digest → diff → signed
// payload → request body) and the KubeNodeSource (memory per node, heartbeat throughput).
import {
  allowListDigest,
  buildDeltaPayload,
  buildPayload,
  chooseForm,
  diffLists,
  payloadBytes,
  ClusterPlanner,
  deferredPayload,
  signDelta,
  type ClusterPlan,
  eventTag,
  projectNodes,
  DIFF_CAP,
  isDelta,
  SALT_API_MAX_BODY_BYTES,
  type EntryLists,
  type ProjectionOptions,
} from '../src/plan/index.ts';
import type { AllowListPayload, ClusterView, EventPayload } from '../src/seams.ts';
import { KubeNodeSource } from '../src/kube/nodeSource.ts';
import { FakeNodeApi, kubeNode, nodeInfos, nodeIp4, POD_CIDRS } from './nodes.ts';
import type { KubeNode, WatchEvent } from '../src/kube/nodeApi.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Controller } from '../src/controller/controller.ts';
import type { StateStore } from '../src/controller/stateStore.ts';
import { createMetrics } from '../src/http/metrics.ts';
import { FakeClock } from '../test/fakes/clock.ts';
import { unitConfig } from '../test/fakes/config.ts';
import { int, ms, summarize, table, type Summary } from './stats.ts';
import { testKeys } from '../test/harness/keys.ts';

/** The bridge's key for the benchmark; the minion side verifies with BENCH_KEYS.publicText. */
export const BENCH_KEYS = testKeys('benchmark');
export const CLUSTER = 'bench';
const PROJECTION: ProjectionOptions = { addressTypes: ['InternalIP'], families: ['ipv4', 'ipv6'], podCIDRs: true, extraEntries: [] };

export interface PlanResult {
  nodes: number;
  entries: { ipv4: number; ipv6: number };
  iterations: number;
  stagesMs: { project: Summary; digest: Summary; diff: Summary; buildSign: Summary; serialize: Summary; total: Summary };
  added: number;
  addedTruncated: boolean;
  payloadBytes: number;
  /** The lowstate the bridge posts to salt-api: [{client, fun, tag, data}]. */
  requestBodyBytes: number;
  /** What src/salt/client.ts actually POSTs: {client, fun, tag, data} (no array). */
  clientBodyBytes: number;
  limitBytes: number;
  fractionOfLimit: number;
  fits: boolean;
}

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with node --expose-gc (npm run bench does)');
  for (let i = 0; i < 3; i++) g();
};

/** The request body of the event.send call carrying `payload`. */
export function requestBody(payload: AllowListPayload, array: boolean): string {
  const low = { client: 'runner', fun: 'event.send', tag: eventTag(payload.cluster), data: payload };
  return JSON.stringify(array ? [low] : low);
}

/** One first publish (nothing published before: added = every entry, capped at DIFF_CAP). */
export function buildFirstPublish(count: number, generation = 1_800_000_000_000): AllowListPayload {
  const view = nodeInfos(count);
  const p = projectNodes(view.values(), PROJECTION);
  const diff = diffLists(undefined, p);
  return buildPayload({ cluster: CLUSTER, generation, list: p, diff, nodes: p.nodes, issuedAtMs: Date.UTC(2026, 10, 22, 10) }, BENCH_KEYS.signer);
}

export function benchPlan(count: number, iterations: number): PlanResult {
  const view = nodeInfos(count);
  const t = {
    project: [] as number[],
    digest: [] as number[],
    diff: [] as number[],
    buildSign: [] as number[],
    serialize: [] as number[],
    total: [] as number[],
  };
  let last: AllowListPayload | undefined;
  let body = '';
  const warmup = Math.max(3, Math.floor(iterations / 10));
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = performance.now();
    const p = projectNodes(view.values(), PROJECTION);
    const t1 = performance.now();
    allowListDigest(p);
    const t2 = performance.now();
    const diff = diffLists(undefined, p);
    const t3 = performance.now();
    last = buildPayload({ cluster: CLUSTER, generation: 1_800_000_000_000 + i, list: p, diff, nodes: p.nodes, issuedAtMs: Date.now() }, BENCH_KEYS.signer);
    const t4 = performance.now();
    body = requestBody(last, false);
    const t5 = performance.now();
    if (i < warmup) continue;
    t.project.push(t1 - t0);
    t.digest.push(t2 - t1);
    t.diff.push(t3 - t2);
    t.buildSign.push(t4 - t3);
    t.serialize.push(t5 - t4);
    t.total.push(t5 - t0);
  }
  const payload = last!;
  const expectNodes = count;
  if (payload.nodes !== expectNodes || payload.ipv4.length !== count + POD_CIDRS || payload.ipv6.length !== count) {
    throw new Error(`plan sanity: ${payload.nodes} nodes, ${payload.ipv4.length}+${payload.ipv6.length} entries for ${count} nodes`);
  }
  const requestBodyBytes = Buffer.byteLength(requestBody(payload, true));
  return {
    nodes: count,
    entries: { ipv4: payload.ipv4.length, ipv6: payload.ipv6.length },
    iterations,
    stagesMs: {
      project: summarize(t.project),
      digest: summarize(t.digest),
      diff: summarize(t.diff),
      buildSign: summarize(t.buildSign),
      serialize: summarize(t.serialize),
      total: summarize(t.total),
    },
    added: payload.added.length,
    addedTruncated: payload.added_truncated === true,
    payloadBytes: Buffer.byteLength(JSON.stringify(payload)),
    requestBodyBytes,
    clientBodyBytes: Buffer.byteLength(body),
    limitBytes: SALT_API_MAX_BODY_BYTES,
    fractionOfLimit: requestBodyBytes / SALT_API_MAX_BODY_BYTES,
    fits: requestBodyBytes <= SALT_API_MAX_BODY_BYTES,
  };
}

export interface SourceResult {
  nodes: number;
  /** Heap held by a synced KubeNodeSource (after gc), total and per node. */
  sourceHeapBytes: number;
  sourceBytesPerNode: number;
  /** The same after view() (the frozen snapshot the controller reads: one more Map). */
  withViewHeapBytes: number;
  /** For comparison: heap of the full Node objects an informer cache would keep. */
  rawObjectsHeapBytes: number;
  rawBytesPerNode: number;
  /** Average JSON size of one Node object as the apiserver sends it. */
  nodeJsonBytes: number;
  heartbeats: {
    events: number;
    ms: number;
    eventsPerSecond: number;
    usPerEvent: number;
    /** The same events arriving as JSON lines, JSON.parse included (client-node parses each line). */
    withParseMs: number;
    withParseEventsPerSecond: number;
    changesNotified: number;
    ignored: number;
  };
}

/** A KubeNodeSource on the in-memory API, with its timers out of the way of a measurement. */
function benchNodeSource(api: FakeNodeApi): KubeNodeSource {
  return new KubeNodeSource({
    cluster: CLUSTER,
    api,
    watchdogMs: 3_600_000,
    relistIntervalMs: 0,
    unreachableAfterMs: 3_600_000,
    requestTimeoutMs: 600_000,
  });
}

export async function benchSource(count: number, heartbeats: number): Promise<SourceResult> {
  const heap = () => process.memoryUsage().heapUsed;

  // Heap of the raw objects, for comparison.
  gc();
  let h0 = heap();
  let raw: unknown[] | null = Array.from({ length: count }, (_, i) => kubeNode(i, 1000, Date.UTC(2026, 0, 1)));
  gc();
  const rawObjectsHeapBytes = heap() - h0;
  const nodeJsonBytes = Buffer.byteLength(JSON.stringify(raw[0]));
  // eslint-disable-next-line no-useless-assignment -- drops the last reference so that gc() collects the objects before the next heap reading
  raw = null;

  const api = new FakeNodeApi(count);
  gc();
  h0 = heap();
  const source = benchNodeSource(api);
  let changes = 0;
  source.onChange(() => changes++);
  await source.start();
  await source.whenSynced();
  while (!api.emit) await new Promise((r) => setImmediate(r));
  gc();
  const sourceHeapBytes = heap() - h0;
  const view = source.view();
  if (view.nodes.size !== count) throw new Error(`source sanity: ${view.nodes.size} nodes, expected ${count}`);
  gc();
  const withViewHeapBytes = heap() - h0;

  // Heartbeats: status-only MODIFIED events (new resourceVersion, new heartbeat time, same addresses).
  // Objects are built before timing; their heavy parts (images, managedFields) are shared.
  const share = kubeNode(0, 0, 0) as Record<string, unknown>;
  const shared = { images: (share.status as Record<string, unknown>).images, managedFields: (share.metadata as Record<string, unknown>).managedFields };
  const events = Array.from({ length: heartbeats }, (_, k) => kubeNode(k % count, 2000 + k, Date.UTC(2026, 0, 1) + 10_000 * (k + 1), shared));
  changes = 0;
  const before = source.stats();
  const emit = api.emit;
  const t0 = performance.now();
  for (const object of events) emit({ type: 'MODIFIED', object });
  const elapsed = performance.now() - t0;
  const after = source.stats();
  const ignored = after.ignoredUpdates - before.ignoredUpdates;
  if (changes !== 0 || ignored !== heartbeats) throw new Error(`heartbeat sanity: ${changes} changes, ${ignored} ignored of ${heartbeats}`);

  // The same through JSON.parse of watch lines (a pool of distinct lines, parsed afresh each time).
  const lines = Array.from({ length: Math.min(500, heartbeats) }, (_, k) =>
    JSON.stringify({ type: 'MODIFIED', object: kubeNode(k % count, 20_000 + k, Date.UTC(2026, 0, 2) + k * 1000) }),
  );
  const t1 = performance.now();
  for (let k = 0; k < heartbeats; k++) emit(JSON.parse(lines[k % lines.length]!) as { type: 'MODIFIED'; object: unknown });
  const withParseMs = performance.now() - t1;
  if (changes !== 0) throw new Error(`heartbeat sanity (parsed): ${String(changes)} changes`);

  await source.stop();
  return {
    nodes: count,
    sourceHeapBytes,
    sourceBytesPerNode: sourceHeapBytes / count,
    withViewHeapBytes,
    rawObjectsHeapBytes,
    rawBytesPerNode: rawObjectsHeapBytes / count,
    nodeJsonBytes,
    heartbeats: {
      events: heartbeats,
      ms: elapsed,
      eventsPerSecond: heartbeats / (elapsed / 1000),
      usPerEvent: (elapsed * 1000) / heartbeats,
      withParseMs,
      withParseEventsPerSecond: heartbeats / (withParseMs / 1000),
      changesNotified: changes,
      ignored,
    },
  };
}

export interface ChangeResult {
  nodes: number;
  changes: number;
  /** Events fired per form (the controller's choice: publish.delta on, deltaMinEntries 256). */
  forms: { delta: number; full: number };
  /**
   * Per change, in ms: `source` = the watch event applied to the KubeNodeSource and its view()
   * taken; `plan` = the ClusterPlanner's plan (projection, digest, diff, verdict); `payload` = the generation's
   * payloads built and signed and the form chosen, as the controller's freshForm does.
   */
  stagesMs: { source: Summary; plan: Summary; payload: Summary; total: Summary };
  /**
   * The same changes through the Controller itself (runCluster, in-memory sink, a state store that
   * writes nothing, logs to nowhere): the watch event applied until the sink is handed the event.
   */
  controllerMs: Summary;
}

const CHANGE_SAFETY = { allowEmpty: false, maxShrinkFraction: 0.5, minNodes: 1 };
const DELTA_MIN_ENTRIES = 256;

/** The change events of benchChange: a join, an address change, a leave, in turn. */
function changeEvent(k: number, count: number, rv: number): WatchEvent {
  const joined = count + Math.floor(k / 3);
  if (k % 3 === 0) return { type: 'ADDED', object: kubeNode(joined, rv, Date.UTC(2026, 0, 1)) };
  if (k % 3 === 1) return { type: 'MODIFIED', object: changedNode(k % count, rv, nodeIp4(400_000 + k)) };
  return { type: 'DELETED', object: kubeNode(joined, rv, Date.UTC(2026, 0, 1)) };
}

/** The controller's total for benchChange: a Controller on a KubeNodeSource, each change run at once. */
async function changeThroughController(count: number, changes: number, warmup: number): Promise<Summary> {
  const dir = mkdtempSync(join(tmpdir(), 'ksb-bench-change-'));
  try {
    const config = unitConfig(dir, BENCH_KEYS.privateText, (kubeconfig) => ({
      salt: { url: 'http://127.0.0.1:8000', username: 'u', eauth: 'file' },
      clusters: [{ name: CLUSTER, kubeconfig, families: ['ipv4', 'ipv6'], podCIDRs: true, safety: CHANGE_SAFETY }],
      state: { dir: join(dir, 'state') },
      http: { listen: '127.0.0.1:0' },
    }));
    const api = new FakeNodeApi(count);
    const source = benchNodeSource(api);
    let firedAt = 0;
    let fired: EventPayload | undefined;
    const sink = {
      fire: (_tag: string, data: EventPayload) => {
        void data.signature; // signed by the time it is fired (the client serialises it)
        firedAt = performance.now();
        fired = data;
        return Promise.resolve();
      },
    };
    const store = { load: () => undefined, save: () => undefined } as unknown as StateStore;
    const nowhere = new Writable({ write: (_c, _e, cb) => cb() });
    const controller = new Controller({
      config,
      sources: new Map([[CLUSTER, source]]),
      sink,
      store,
      metrics: createMetrics(false),
      log: pino({ level: 'info' }, nowhere),
      clock: new FakeClock(Date.now()),
      dryRun: false,
    });
    await source.start();
    await source.whenSynced();
    while (!api.emit) await new Promise((r) => setImmediate(r));
    const emit = api.emit;
    controller.start();
    controller.setActive(true);
    await controller.runCluster(CLUSTER, 'start');
    const total: number[] = [];
    let rv = 5000;
    for (let k = 0; k < warmup + changes; k++) {
      const event = changeEvent(k, count, ++rv);
      fired = undefined;
      const t0 = performance.now();
      emit(event);
      await controller.runCluster(CLUSTER, 'change');
      if (fired === undefined) throw new Error(`controller sanity: nothing fired at step ${k}`);
      if (k >= warmup) total.push(firedAt - t0);
    }
    await controller.stop();
    await source.stop();
    return summarize(total);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A watch object for node `i` whose first InternalIP is `ip4` (an address change when it differs). */
function changedNode(i: number, rv: number, ip4: string): KubeNode {
  const n = kubeNode(i, rv, Date.UTC(2026, 0, 1) + rv);
  const addresses = (n.status!.addresses as Array<{ type: string; address: string }>).map((a, k) => (k === 0 ? { ...a, address: ip4 } : a));
  return { ...n, status: { ...n.status, addresses } };
}

/**
 * One change at a time on a warm bridge: `count` nodes synced and published once, then `changes`
 * single-node changes (a join, an address change, a leave, in turn), each timed from the watch
 * event reaching the KubeNodeSource until the event the controller would fire is built and signed.
 * The controller's calls are reproduced here (its ClusterPlanner, then the full payload and the
 * form choice of Controller.sign/freshForm), with nothing else of the run (metrics, logs, state
 * file, I/O).
 */
export async function benchChange(count: number, changes: number): Promise<ChangeResult> {
  const api = new FakeNodeApi(count);
  const source = benchNodeSource(api);
  await source.start();
  await source.whenSynced();
  while (!api.emit) await new Promise((r) => setImmediate(r));
  const emit = api.emit;
  const state: { published: (EntryLists & { digest: string; generation: number }) | undefined; payload: AllowListPayload | undefined } = {
    published: undefined,
    payload: undefined,
  };
  const planner = new ClusterPlanner();
  const planOf = (view: ClusterView) => planner.plan({ view, projection: PROJECTION, safety: CHANGE_SAFETY, published: state.published });
  let tPlan = 0;
  const publish = (plan: ClusterPlan): EventPayload => {
    tPlan = performance.now();
    const generation = (state.published?.generation ?? 1_800_000_000_000) + 1;
    // Controller.sign: the full form, signed when first read.
    const signed = deferredPayload(
      { cluster: CLUSTER, generation, digest: plan.digest, list: plan.projection, diff: plan.diff, nodes: plan.projection.nodes, issuedAtMs: Date.now() },
      BENCH_KEYS.signer,
    );
    const full = signed.payload;
    // Controller.freshForm: the delta of the plan's change when the base is the published list.
    const base = state.payload;
    let delta: EventPayload | undefined;
    const choice = chooseForm({
      enabled: true,
      publishedBefore: base !== undefined,
      entries: full.ipv4.length + full.ipv6.length,
      minEntries: DELTA_MIN_ENTRIES,
      sizes: () => {
        const at = { cluster: CLUSTER, generation, nodes: full.nodes, issuedAtMs: Date.parse(full.issued_at) };
        delta =
          base!.digest === state.published?.digest
            ? signDelta({ ...at, digest: full.digest, baseDigest: base!.digest, added: plan.change.added, removed: plan.change.removed }, BENCH_KEYS.signer)
            : buildDeltaPayload({ ...at, base: base!, list: full }, BENCH_KEYS.signer);
        return { delta: payloadBytes(delta), full: signed.bytes };
      },
    });
    state.payload = full;
    state.published = { generation, digest: full.digest, ipv4: full.ipv4, ipv6: full.ipv6 };
    return choice.form === 'delta' ? delta! : full;
  };
  // The first publish (full): its signature is read, as firing it does.
  void publish(planOf(source.view())).signature;
  const t = { source: [] as number[], plan: [] as number[], payload: [] as number[], total: [] as number[] };
  const forms = { delta: 0, full: 0 };
  const warmup = Math.max(3, Math.floor(changes / 10));
  let rv = 5000;
  for (let k = 0; k < warmup + changes; k++) {
    const event = changeEvent(k, count, ++rv);
    const t0 = performance.now();
    emit(event);
    const view = source.view();
    const t1 = performance.now();
    const plan = planOf(view);
    if (plan.verdict.kind !== 'publish') throw new Error(`change sanity: verdict ${plan.verdict.kind} at step ${k}`);
    const fired = publish(plan);
    void fired.signature; // what is fired is signed by now
    const t3 = performance.now();
    if (k < warmup) continue;
    forms[isDelta(fired) ? 'delta' : 'full']++;
    t.source.push(t1 - t0);
    t.plan.push(tPlan - t1);
    t.payload.push(t3 - tPlan);
    t.total.push(t3 - t0);
  }
  await source.stop();
  return {
    nodes: count,
    changes,
    forms,
    stagesMs: { source: summarize(t.source), plan: summarize(t.plan), payload: summarize(t.payload), total: summarize(t.total) },
    controllerMs: await changeThroughController(count, changes, warmup),
  };
}

export function changeTable(rows: ChangeResult[], md: boolean): string {
  return table(
    ['one change at', 'changes (delta/full)', 'source', 'plan', 'payload', 'total p50', 'total p95', 'total max', 'Controller p50 / p95'],
    rows.map((r) => [
      `${int(r.nodes)} nodes`,
      `${int(r.changes)} (${int(r.forms.delta)}/${int(r.forms.full)})`,
      ms(r.stagesMs.source.median),
      ms(r.stagesMs.plan.median),
      ms(r.stagesMs.payload.median),
      ms(r.stagesMs.total.median),
      ms(r.stagesMs.total.p95),
      ms(r.stagesMs.total.max),
      `${ms(r.controllerMs.median)} / ${ms(r.controllerMs.p95)}`,
    ]),
    md,
  );
}

export { DIFF_CAP };

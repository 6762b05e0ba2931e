// The loop (CONTRIBUTING.md habit 2): node changes only schedule a run; every run plans the
// cluster's allow-list from the full node set (src/plan; its ClusterPlanner re-projects only the
// nodes that changed, with the result of a full recompute), publishes when the safety policy says so,
// and keeps what it published so that restarts, re-sends and the periodic resync send the same
// signed list. The bus is believed only as far as it verifies (docs/event-contract.md, "What the
// bridge believes from the bus"; the decisions are in minions.ts): jobs whose payload carries the
// bridge's own signature tell which minions were targeted with which generation, their returns
// which of those minions applied it; minions that failed or never answered get targeted re-sends
// with backoff, while a minion that refused a list (or found it stale) holds that state and is not
// sent the same generation again; a restarted minion gets the current lists (in bounded rounds,
// starts.ts), and verified events of another bridge of the same clusters raise the generation floor.
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { AllowListPayload, Clock, EventPayload, EventSink, NodeSource } from '../seams.ts';
import {
  buildCheckPayload,
  buildDeltaPayload,
  chooseForm,
  deferredPayload,
  dueIn,
  isDelta,
  payloadBytes,
  eventTag,
  nextGeneration,
  raiseFloor,
  runFinished,
  runStarted,
  scheduleRun,
  signDelta,
  unsignedForLog,
  verifyPayload,
  type ClusterPlan,
} from '../plan/index.ts';
import { Backoff } from '../util/backoff.ts';
import { shorten } from '../util/text.ts';
import { KsbError } from '../errors.ts';
import type { Metrics } from '../http/metrics.ts';
import type { StateStore } from './stateStore.ts';
import { reportRejections } from './rejections.ts';
import {
  JobBook,
  MAX_JOB_REFIRES,
  MinionTracker,
  NEED_FULL_LIMITS,
  NeedFullRounds,
  REFUSAL_REASONS,
  awaitJob,
  jobEndsWait,
  judgeFloor,
  judgeJob,
  judgeJobWait,
  judgeOutcome,
  judgeReturn,
  refusalHint,
  resendEvents,
} from './minions.ts';
import { START_LIMITS, StartRounds, type StartOptions } from './starts.ts';
import {
  clusterStatus,
  heldVerdict,
  newRuntime,
  noteDrop,
  type BusSignal,
  type ClusterRuntime,
  type ClusterStatus,
  type DropLogState,
  type RunReason,
} from './cluster.ts';

export type { BusSignal, ClusterStatus, RunReason } from './cluster.ts';

/** Why a targeted re-send goes out: no answer or a failure, a minion start, an operator's release, a minion's need_full. */
type ResendReason = 'retry' | 'minion-start' | 'release' | 'need-full';

/** The cluster's one run timer, with when and why it fires. */
type ArmedTimer = { cancel(): void; readonly at: number; readonly reason: RunReason };

export interface ControllerDeps {
  config: Config;
  sources: ReadonlyMap<string, NodeSource>;
  sink: EventSink;
  store: StateStore;
  metrics: Metrics;
  log: Logger;
  clock: Clock;
  dryRun: boolean;
  /** How long a minion may take to answer before a targeted re-send (default 30 s). */
  ackTimeoutMs?: number;
  /** Whether a payload seen on the bus is signed by this bridge's key (default: verifyPayload with config.signing.signer). */
  verify?: (payload: unknown) => boolean;
  /** Bounds of start re-sends (default START_LIMITS). */
  startLimits?: StartOptions;
  /**
   * The bus is read (run: yes; once: no). Publishes fired while its stream is not open are fired
   * again when it opens (streamState), so that their jobs and returns are seen.
   */
  busStream?: boolean;
}
/** How long publishes wait at start-up for the bus stream to open before going out unseen. */
export const STREAM_WAIT_MS = 5_000;
/** An ignored bus event is logged at most once per this interval and reason. */
const DROP_LOG_EVERY_MS = 60_000;
/** Why a bus event was ignored, and how loudly to say so: unknown jobs are ordinary (other bridges, missed `new`). */
const QUIET_DROPS = new Set(['unknown-job', 'known-job']);

export class Controller {
  private readonly d: ControllerDeps;
  private readonly clusters = new Map<string, ClusterRuntime>();
  private readonly minions: MinionTracker;
  private readonly jobs = new JobBook();
  /** How long a job or a minion's return may take to show on the bus before it is owed again. */
  private readonly ackTimeoutMs: number;
  private readonly verify: (payload: unknown) => boolean;
  private readonly drops = new Map<string, DropLogState>();
  private readonly starts: StartRounds;
  /** Whether the bus stream is open (always true without one: nothing to wait for). */
  private streamOpen: boolean;
  /** Whether the open stream loses events (rest_tornado's websocket): jobs are then awaited (jobWait). */
  private streamLossy = false;
  /**
   * Until the stream has opened once (or STREAM_WAIT_MS passed), publishes wait for it instead of
   * going out unseen and being fired a second time: clusters waiting, with the reason of their run.
   */
  private streamWaitOver: boolean;
  private readonly awaitingStream = new Map<string, RunReason>();
  private streamWaitTimer: { cancel(): void } | undefined;
  private startTimer: { cancel(): void } | undefined;
  private readonly needFull: NeedFullRounds;
  private needFullTimer: { cancel(): void } | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private active = false;
  private stopped = false;
  private resyncTimer: { cancel(): void } | undefined;
  private retryTimer: { cancel(): void } | undefined;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(deps: ControllerDeps) {
    this.d = deps;
    const signer = deps.config.signing.signer;
    this.verify = deps.verify ?? ((payload) => verifyPayload(payload, signer));
    const retry = deps.config.publish.retry;
    this.ackTimeoutMs = deps.ackTimeoutMs ?? 30_000;
    this.minions = new MinionTracker({ ackTimeoutMs: this.ackTimeoutMs, initialMs: retry.initialMs, maxMs: retry.maxMs }, () => deps.clock.now());
    this.starts = new StartRounds(deps.startLimits ?? START_LIMITS, () => deps.clock.now());
    this.needFull = new NeedFullRounds(NEED_FULL_LIMITS, () => deps.clock.now());
    this.streamOpen = deps.busStream !== true;
    this.streamWaitOver = this.streamOpen;
    for (const cfg of deps.config.clusters) {
      const published = deps.store.load(cfg.name);
      this.clusters.set(cfg.name, newRuntime(cfg, published, new Backoff({ initialMs: retry.initialMs, maxMs: retry.maxMs, now: () => deps.clock.now() })));
      if (published) deps.metrics.generation.set({ cluster: cfg.name }, published.generation);
    }
  }

  /** Subscribes to the node sources. Publishing starts with setActive(true). */
  start(): void {
    for (const [name, source] of this.d.sources) {
      this.unsubscribe.push(source.onChange(() => this.onNodesChanged(name)));
    }
    this.updateBehind(); // every cluster's gauges from the start, at 0
    this.armResync();
    if (!this.streamWaitOver) this.streamWaitTimer = this.d.clock.setTimeout(() => this.endStreamWait(), STREAM_WAIT_MS);
  }

  /** Publishing no longer waits for the stream: the runs that waited go now. */
  private endStreamWait(): void {
    this.streamWaitOver = true;
    this.streamWaitTimer?.cancel();
    for (const [name, reason] of this.awaitingStream) if (!this.stopped) this.schedule(name, reason, 0);
    this.awaitingStream.clear();
  }

  /** Leader election (or a single bridge) turns publishing on and off; on → publish everything now. */
  setActive(active: boolean): void {
    if (this.active === active) return;
    this.active = active;
    this.d.metrics.leader.set(active ? 1 : 0);
    this.d.log.info({ active }, active ? 'publishing enabled' : 'publishing paused (not leader)');
    // Another bridge may have published meanwhile: the first publish of a leadership is full.
    for (const c of this.clusters.values()) c.deltaBase = false;
    if (active) for (const name of this.clusters.keys()) this.schedule(name, 'leader', 0);
  }

  get isActive(): boolean {
    return this.active;
  }

  private onNodesChanged(name: string): void {
    const c = this.clusters.get(name)!;
    const now = this.d.clock.now();
    c.changeSeenAt ??= now;
    const due = c.schedule.dueAt;
    c.schedule = scheduleRun(c.schedule, now, this.d.config.publish);
    if (c.schedule.dueAt !== due) this.arm(name);
  }

  /**
   * One timer per cluster, and the earliest run wins: a run already set for the same time or
   * sooner is kept (it covers this request: every run plans from the full state), except that
   * at the same time a reason that re-sends an unchanged list (start, resync, leader, once,
   * override) replaces one that does not (change, retry).
   */
  private schedule(name: string, reason: RunReason, delayMs: number): void {
    const c = this.clusters.get(name)!;
    const at = this.d.clock.now() + delayMs;
    const quiet = (r: RunReason) => r === 'change' || r === 'retry';
    const armed = c.timer as ArmedTimer | undefined;
    if (armed && (armed.at < at || (armed.at === at && !(quiet(armed.reason) && !quiet(reason))))) return;
    armed?.cancel();
    const timer: ArmedTimer = {
      at,
      reason,
      cancel: () => handle.cancel(),
    };
    const handle = this.d.clock.setTimeout(() => {
      if (c.timer === timer) c.timer = undefined;
      this.fire(name, reason);
    }, delayMs);
    c.timer = timer;
  }

  /** Sets the timer to the schedule's due time, if one is due. */
  private arm(name: string): void {
    const c = this.clusters.get(name)!;
    const wait = dueIn(c.schedule, this.d.clock.now());
    if (wait !== undefined) this.schedule(name, 'change', wait);
  }

  private fire(name: string, reason: RunReason): void {
    const p = this.runCluster(name, reason).catch((err: unknown) => {
      this.d.log.error({ err, cluster: name }, 'cluster run failed unexpectedly');
      return false;
    });
    this.track(p);
  }

  /**
   * One run for one cluster. Returns true when the cluster's current list is published (or was
   * already, for reasons that only publish on change).
   */
  async runCluster(name: string, reason: RunReason): Promise<boolean> {
    const c = this.clusters.get(name);
    if (!c) throw new KsbError('KSB_UNKNOWN_CLUSTER', `no cluster named ${name}`);
    if (c.running) {
      c.rerun = reason;
      return c.running;
    }
    // The run covers every change seen so far: a change timer still set is obsolete. Whether it
    // fired an event (a new payload) decides whether it spaces the next run (src/plan/schedule.ts).
    const firedBefore = c.payload;
    c.schedule = runStarted(c.schedule, this.d.clock.now());
    if ((c.timer as ArmedTimer | undefined)?.reason === 'change') {
      c.timer!.cancel();
      c.timer = undefined;
    }
    c.running = this.runOnce(c, reason);
    try {
      return await c.running;
    } finally {
      c.schedule = runFinished(c.schedule, this.d.clock.now(), c.payload !== firedBefore, this.d.config.publish);
      c.running = undefined;
      const again = c.rerun;
      c.rerun = undefined;
      if (again && !this.stopped) this.schedule(name, again, 0);
      if (!this.stopped) this.arm(name);
    }
  }

  private async runOnce(c: ClusterRuntime, reason: RunReason): Promise<boolean> {
    const name = c.cfg.name;
    const log = this.d.log.child({ cluster: name });
    const source = this.d.sources.get(name)!;
    const view = source.view();
    const plan = c.planner.plan({
      view,
      projection: c.cfg,
      safety: c.cfg.safety,
      published: c.published,
      override: c.override,
    });
    const heldBefore = heldVerdict(c.plan);
    c.plan = plan;
    this.d.metrics.synced.set({ cluster: name }, view.synced ? 1 : 0);
    if (view.synced) {
      this.d.metrics.nodes.set({ cluster: name }, plan.projection.nodes);
      this.d.metrics.addresses.set({ cluster: name, family: 'ipv4' }, plan.projection.ipv4.length);
      this.d.metrics.addresses.set({ cluster: name, family: 'ipv6' }, plan.projection.ipv6.length);
      reportRejections(c, name, plan.projection.rejected, log, this.d.metrics);
    }
    const v = plan.verdict;
    if (v.kind === 'hold') {
      if (heldBefore?.digest !== v.digest) {
        for (const h of v.holds) this.d.metrics.holds.inc({ cluster: name, reason: h.reason });
        const text = v.holds.map((h) => h.message).join('; ');
        const release = v.holds.every((h) => h.overridable) ? ` (release with: kube-salt-bridge release ${name})` : '';
        log[v.holds.some((h) => h.reason !== 'unsynced') ? 'warn' : 'info'](
          { hold: { digest: v.digest, reasons: v.holds.map((h) => h.reason) } },
          `publish held: ${text}${release}`,
        );
        c.heldSince = this.d.clock.now();
      }
      // The same digest can be held for other reasons than before (unsynced, then a shrink).
      this.refreshHeldGauge();
      return false;
    }
    if (c.heldSince !== undefined) {
      c.heldSince = undefined;
      this.refreshHeldGauge();
    }
    if (!this.active) return false;

    // `payload` is the full form of the generation, kept for every re-send; `fired` is what goes out now.
    let payload: AllowListPayload;
    let fired: EventPayload;
    // Another bridge of this cluster (the other half of an HA pair) published a newer generation
    // than ours: minions that applied it would find our last payload stale, so even an unchanged
    // list goes out again as a new generation above it.
    const superseded = c.published !== undefined && c.floor > c.published.generation;
    const fresh = v.kind === 'publish' || superseded;
    if (!fresh) {
      c.changeSeenAt = undefined;
      // Nothing changed. Start-up, resync, leader change and `once` re-send what was last published
      // (same generation: current minions change nothing, stale ones catch up).
      if (reason === 'change' || reason === 'retry') return true;
      payload = c.payload ?? this.sign(c, c.published!.generation, plan).payload;
      fired = reason === 'resync' ? this.resyncForm(c, payload) : payload;
    } else {
      const generation = nextGeneration(c.published?.generation ?? 0, this.d.clock.now(), c.floor);
      const signed = this.sign(c, generation, plan);
      payload = signed.payload;
      fired = this.freshForm(c, signed, plan, superseded);
      if (v.kind === 'publish' && v.overridden.length)
        log.warn({ overridden: v.overridden.map((h) => h.reason) }, 'publishing a held list: released by operator override');
      if (v.kind === 'noop')
        log.info(
          { generation: { ours: c.published!.generation, floor: c.floor } },
          'another bridge published a newer generation; publishing the unchanged list above it',
        );
    }

    if (!this.streamWaitOver && !this.d.dryRun) {
      // Start-up: the stream is still connecting. Fired now, this publish's job and returns would
      // go unseen and it would have to be fired again once the stream opens.
      this.awaitingStream.set(name, reason);
      return false;
    }
    const seenFromStart = this.streamOpen;
    try {
      c.firing = payload.generation;
      await this.emit(fired, log, reason, fresh ? 'publish' : 'republish');
    } catch (err) {
      const code = err instanceof KsbError ? err.code : 'KSB_INTERNAL';
      c.lastError = { code, message: (err as Error).message, at: this.d.clock.now() };
      this.d.metrics.publishErrors.inc({ cluster: name, code });
      if (code.startsWith('KSB_SALT_')) this.d.metrics.saltErrors.inc({ code });
      const delay = c.retry.next();
      log.error({ err, retryInMs: delay }, 'publish failed; will retry');
      if (!this.stopped) this.schedule(name, 'retry', delay);
      return false;
    } finally {
      c.firing = undefined;
    }
    c.retry.reset();
    c.lastError = undefined;
    c.payload = payload;
    c.deltaBase = true;
    // Unseen unless the stream was open for the whole call (the job's `new` follows the event).
    const unseen = !this.d.dryRun && !(seenFromStart && this.streamOpen);
    c.unobserved = unseen && !this.streamOpen;
    if (unseen && this.streamOpen) this.refire(name, payload.generation);
    else if (this.d.busStream === true && !this.d.dryRun && this.streamOpen && this.streamLossy) {
      // Seen from the start, yet the stream may still lose the job (rest_tornado's websocket drops
      // back-to-back events): without it no return is credited and no minion is owed a re-send.
      c.jobWait = awaitJob(c.jobWait, payload.generation, this.d.clock.now(), this.ackTimeoutMs);
      this.armRetry();
    }
    c.override = undefined;
    c.lastPublishAt = this.d.clock.now();
    if (fresh) {
      if (c.changeSeenAt !== undefined) c.changeSeenByGeneration.set(payload.generation, c.changeSeenAt);
      c.changeSeenAt = undefined;
      if (c.changeSeenByGeneration.size > 64) c.changeSeenByGeneration.delete(c.changeSeenByGeneration.keys().next().value!);
      c.published = { generation: payload.generation, digest: payload.digest, ipv4: payload.ipv4, ipv6: payload.ipv6, publishedAt: payload.issued_at };
      if (!this.d.dryRun) this.d.store.save(name, c.published);
      this.d.metrics.generation.set({ cluster: name }, payload.generation);
    }
    return true;
  }

  private refreshHeldGauge(): void {
    this.d.metrics.held.reset();
    for (const cl of this.clusters.values())
      for (const h of heldVerdict(cl.plan)?.holds ?? []) this.d.metrics.held.set({ cluster: cl.cfg.name, reason: h.reason }, 1);
  }

  /**
   * The full payload of a generation of the plan's list, and its size. It is signed when first read
   * (deferredPayload): a generation fired as a delta is signed in full only if a re-send needs it.
   */
  private sign(c: ClusterRuntime, generation: number, plan: ClusterPlan): { readonly payload: AllowListPayload; readonly bytes: number } {
    const isCurrent = c.published !== undefined && c.published.generation === generation;
    return deferredPayload(
      {
        cluster: c.cfg.name,
        generation,
        digest: plan.digest,
        list: { ipv4: plan.projection.ipv4, ipv6: plan.projection.ipv6 },
        diff: isCurrent ? { added: [], removed: [], added_truncated: false, removed_truncated: false, addedCount: 0, removedCount: 0 } : plan.diff,
        nodes: plan.projection.nodes,
        issuedAtMs: this.d.clock.now(),
      },
      this.d.config.signing.signer,
    );
  }

  /**
   * The form of a new generation (docs/event-contract.md, "Delta form"): the delta from the list
   * fired before when chooseForm says so, else the full payload. Only the full one is kept. The
   * delta's change is the plan's when the base is the published list the plan was diffed against
   * (always, while this process publishes: it fired that list); otherwise both lists are diffed.
   */
  private freshForm(
    c: ClusterRuntime,
    signed: { readonly payload: AllowListPayload; readonly bytes: number },
    plan: ClusterPlan,
    superseded: boolean,
  ): EventPayload {
    const p = this.d.config.publish;
    const full = signed.payload;
    // The base is the full payload this process last fired: exactly the list the minions were given.
    const base = c.payload;
    const planBase = c.published?.digest;
    let delta: EventPayload | undefined;
    const choice = chooseForm({
      enabled: p.delta,
      // Superseded: another bridge published above our last list, which minions may no longer hold.
      publishedBefore: c.deltaBase && base !== undefined && !superseded,
      entries: full.ipv4.length + full.ipv6.length,
      minEntries: p.deltaMinEntries,
      sizes: () => {
        const at = { cluster: full.cluster, generation: full.generation, nodes: full.nodes, issuedAtMs: Date.parse(full.issued_at) };
        delta =
          base!.digest === planBase
            ? signDelta(
                { ...at, digest: full.digest, baseDigest: base!.digest, added: plan.change.added, removed: plan.change.removed },
                this.d.config.signing.signer,
              )
            : buildDeltaPayload({ ...at, base: base!, list: full }, this.d.config.signing.signer);
        return { delta: payloadBytes(delta), full: signed.bytes };
      },
    });
    return choice.form === 'delta' ? delta! : full;
  }

  /** The periodic resync: the check form of the last published generation, signed now, under the same conditions as a delta; else the full payload. */
  private resyncForm(c: ClusterRuntime, full: AllowListPayload): EventPayload {
    const p = this.d.config.publish;
    let check: EventPayload | undefined;
    const choice = chooseForm({
      enabled: p.delta,
      publishedBefore: c.deltaBase && c.payload !== undefined,
      entries: full.ipv4.length + full.ipv6.length,
      minEntries: p.deltaMinEntries,
      sizes: () => {
        check = buildCheckPayload(
          { cluster: full.cluster, generation: full.generation, digest: full.digest, nodes: full.nodes, issuedAtMs: this.d.clock.now() },
          this.d.config.signing.signer,
        );
        return { delta: payloadBytes(check), full: payloadBytes(full) };
      },
    });
    return choice.form === 'delta' ? check! : full;
  }

  private async emit(payload: EventPayload, log: Logger, reason: RunReason | ResendReason, kind: 'publish' | 'republish' | 'resend'): Promise<void> {
    const tag = eventTag(payload.cluster);
    const form = !isDelta(payload) ? 'full' : payload.base_digest === payload.digest && payload.added.length + payload.removed.length === 0 ? 'check' : 'delta';
    // A delta's change is complete (never capped): its log line gives counts and a few entries.
    const lists = isDelta(payload)
      ? {
          baseDigest: payload.base_digest,
          added: { count: payload.added.length, first: payload.added.slice(0, 10) },
          removed: { count: payload.removed.length, first: payload.removed.slice(0, 10) },
        }
      : { ipv4: payload.ipv4.length, ipv6: payload.ipv6.length, added: payload.added, removed: payload.removed };
    const summary = {
      tag,
      form,
      generation: payload.generation,
      digest: payload.digest,
      nodes: payload.nodes,
      ...lists,
      reason,
      ...(payload.minions ? { minions: { count: payload.minions.length, ids: payload.minions.slice(0, 20) } } : {}),
    };
    if (this.d.dryRun) {
      // Never a payload that could be fired later: the signature is replaced by a marker.
      log.info({ dryRun: true, event: { tag, data: unsignedForLog(payload) } }, `dry run: would fire ${tag} (${kind})`);
    } else {
      await this.d.sink.fire(tag, payload);
      log.info({ event: summary }, `fired ${tag} (${kind}${form === 'full' ? '' : `, ${form} form`})`);
    }
    this.d.metrics.publishes.inc({ cluster: payload.cluster, reason: kind });
    this.d.metrics.publishForms.inc({ cluster: payload.cluster, form });
  }

  /**
   * Re-sends the cluster's last published payload — exactly as fired, whatever the latest plan
   * (held or failed) says — to some minions only, through the unsigned `minions` hint, in as many
   * events as the reactor's and salt-api's limits need. Minions that refused (or found stale) that
   * very generation are left out, except on an operator's release.
   */
  private async resend(name: string, minions: Iterable<string>, reason: ResendReason): Promise<void> {
    const c = this.clusters.get(name)!;
    if (!this.active || !c.payload) return;
    const payload = c.payload;
    const log = this.d.log.child({ cluster: name });
    const to = reason === 'release' ? [...minions] : [...minions].filter((m) => !this.minions.refuses(name, m, payload.generation));
    for (const event of resendEvents(payload, to)) {
      try {
        await this.emit(event, log, reason, 'resend');
      } catch (err) {
        if (err instanceof KsbError && err.code.startsWith('KSB_SALT_')) this.d.metrics.saltErrors.inc({ code: err.code });
        log.warn({ err, resend: { minions: event.minions?.length ?? 'all' } }, 'targeted re-send failed; will retry');
      }
    }
  }

  /**
   * The bus stream opened or dropped. A publish fired while it was not open (the first one can
   * beat the stream at start-up; any during an outage) went out unseen: the bridge knows neither
   * its job nor the minions' returns, so it could not re-send to a minion that failed or was
   * down. Once the stream is open such a payload is fired again (the same generation to the
   * whole target: minions that have it change nothing). `lossy`: the open stream is one that
   * drops events (the websocket), so the job of every publish is awaited (jobUnseen).
   */
  streamState(open: boolean, lossy = false): void {
    this.streamOpen = open;
    this.streamLossy = open && lossy;
    if (!open || this.stopped) return;
    if (!this.streamWaitOver) this.endStreamWait();
    for (const [name, c] of this.clusters) {
      if (!c.unobserved || c.payload === undefined) continue;
      c.unobserved = false;
      this.refire(name, c.payload.generation);
    }
  }

  private refire(name: string, generation: number): void {
    this.d.log.info({ cluster: name, generation }, 'the bus stream opened after this publish went out; firing it again so that its job and returns are seen');
    if (!this.stopped) this.schedule(name, 'stream', 0);
  }

  /** Feed from the salt event stream (interpreted, not yet verified). */
  onBus(s: BusSignal): void {
    switch (s.kind) {
      case 'dropped':
        this.ignored(s.reason, { tag: s.tag, detail: s.detail });
        return;
      case 'apply-started':
        this.onJob(s);
        break;
      case 'apply-result':
        this.onReturn(s);
        break;
      case 'published': {
        const c = this.clusters.get(s.cluster);
        const f = judgeFloor({
          ours: c !== undefined,
          floor: c?.floor ?? 0,
          generation: s.generation,
          verify: () => this.verify(s.payload) && s.payload['cluster'] === s.cluster,
        });
        if (f.raise) this.raiseFloor(c!, f.to, 'cluster event');
        else if (f.reason === 'unverified')
          this.ignored('unverified', { tag: `kube-salt-bridge/cluster/${s.cluster}/nodes`, detail: "payload not signed by this bridge's key" });
        return;
      }
      case 'minion-start':
        this.onMinionStart(s.minion);
        return;
    }
    this.updateBehind();
    this.armRetry();
  }

  private onJob(s: Extract<BusSignal, { kind: 'apply-started' }>): void {
    const c = this.clusters.get(s.cluster);
    const j = judgeJob({ ours: c !== undefined, known: this.jobs.has(s.jid), verify: () => this.verify(s.payload) });
    if (!j.accept) {
      if (j.reason !== 'other-cluster') this.ignored(j.reason, { tag: `salt/job/${s.jid}/new`, detail: `job for cluster ${s.cluster}` });
      return;
    }
    // Verified: the payload's cluster, generation and digest are the bridge's own words.
    this.jobs.remember({ jid: s.jid, cluster: s.cluster, generation: s.generation, digest: s.digest ?? '', minions: new Set(s.minions) });
    if (s.generation > c!.floor) this.raiseFloor(c!, s.generation, 'job');
    if (jobEndsWait(c!.jobWait, s.generation)) c!.jobWait = undefined;
    if (s.invalidIds || s.overCap) {
      this.ignored('job-minions', {
        tag: `salt/job/${s.jid}/new`,
        detail: `${s.invalidIds ?? 0} invalid minion id(s) and ${s.overCap ?? 0} beyond the ${s.minions.length} kept were left out`,
      });
    }
    this.minions.started(s.cluster, s.generation, s.minions);
  }

  private onReturn(s: Extract<BusSignal, { kind: 'apply-result' }>): void {
    const r = judgeReturn(this.jobs.get(s.jid), s.minion);
    if (!r.credit) {
      this.ignored(r.reason, {
        tag: `salt/job/${s.jid}/ret/${s.minion}`,
        detail: r.reason === 'not-targeted' ? 'a return from a minion the job did not target' : 'a return of a job not seen (or not verified)',
      });
      return;
    }
    const c = this.clusters.get(r.cluster)!;
    const outcome = judgeOutcome(s);
    const effect = this.minions.result(r.cluster, s.minion, { generation: r.generation, digest: r.digest, outcome, reason: s.reason });
    this.d.metrics.applyResults.inc({ cluster: r.cluster, result: outcome.kind });
    if (outcome.kind === 'applied') {
      const seen = c.changeSeenByGeneration.get(r.generation);
      if (seen !== undefined) this.d.metrics.changeToApplied.observe({ cluster: r.cluster }, (this.d.clock.now() - seen) / 1000);
    }
    const where = { cluster: r.cluster, minion: s.minion, jid: s.jid, generation: r.generation };
    if (effect === 'failed') this.d.log.warn({ ...where, reason: s.reason }, 'minion failed to apply; re-sending with backoff');
    if (effect === 'need-full') this.onNeedFull(r.cluster, c, s.minion, r.generation, s.reason);
    if (effect === 'held' && (outcome.kind === 'refused' || outcome.kind === 'stale')) {
      this.d.log.warn(
        { ...where, refusal: { reason: outcome.reason, message: s.reason } },
        `minion ${outcome.kind === 'stale' ? 'found generation stale' : `refused the list (${outcome.reason})`}; not re-sending this generation to it: ${refusalHint(outcome.reason, r.cluster, s.minion)}`,
      );
    }
  }

  /**
   * A minion does not hold the list a delta (or the check form) applies to: the full payload of
   * that generation goes to it in the next round (NeedFullRounds), once per minion and generation.
   */
  private onNeedFull(cluster: string, c: ClusterRuntime, minion: string, generation: number, reason: string): void {
    this.d.metrics.needFull.inc({ cluster });
    const verdict = this.needFull.note(cluster, minion, generation, c.firing ?? c.payload?.generation);
    this.d.log.debug({ cluster, minion, generation, needFull: verdict, reason }, 'minion asked for the full list');
    if (verdict === 'queued') this.armNeedFull();
    else if (verdict === 'full')
      this.ignored('need-full-flood', { tag: `need_full of ${minion}`, detail: `${NEED_FULL_LIMITS.maxQueued} minions already wait for a full re-send` });
  }

  private armNeedFull(): void {
    const at = this.needFull.dueAt;
    if (this.needFullTimer !== undefined || this.stopped || at === undefined) return;
    this.needFullTimer = this.d.clock.setTimeout(
      () => {
        this.needFullTimer = undefined;
        for (const round of this.needFull.take()) {
          const c = this.clusters.get(round.cluster);
          const generation = c?.payload?.generation;
          const ids = round.minions.filter((m) => m.generation === generation).map((m) => m.minion);
          if (ids.length === 0) continue;
          this.d.log.info(
            { cluster: round.cluster, generation, minions: { count: ids.length, ids: ids.slice(0, 20) } },
            'minions do not hold the list the delta applies to; re-sending the full list of that generation to them',
          );
          this.track(this.resend(round.cluster, ids, 'need-full'));
        }
        this.armNeedFull();
      },
      Math.max(0, at - this.d.clock.now()),
    );
  }

  private raiseFloor(c: ClusterRuntime, generation: number, from: 'cluster event' | 'job'): void {
    const before = c.floor;
    c.floor = raiseFloor(c.floor, generation);
    // Its own event (or job) seen on the bus before salt-api answered the publish is no news.
    if (c.floor === before || c.floor <= Math.max(c.published?.generation ?? 0, c.firing ?? 0)) return;
    // Higher than anything this bridge published: another bridge holding the same key.
    const ahead = c.floor - this.d.clock.now();
    this.d.log[ahead > 300_000 ? 'warn' : 'info'](
      { cluster: c.cfg.name, generation: { floor: c.floor, ours: c.published?.generation, aheadOfClockMs: ahead }, from },
      `a verified ${from} carries a newer generation than this bridge published; the next publish goes above it`,
    );
  }

  /**
   * A start is re-sent in a bounded round (starts.ts): starts arriving together share one, a minion
   * gets at most one start re-send per perMinionMs, and rounds (at most maxPerRound ids each) are
   * roundSpacingMs apart, so a storm of starts, genuine or forged, costs at most one event per
   * cluster per round.
   */
  private onMinionStart(minion: string): void {
    const tag = `salt/minion/${minion}/start`;
    const l = this.d.startLimits ?? START_LIMITS;
    switch (this.starts.note(minion)) {
      case 'recent':
        this.ignored('start-repeat', { tag, detail: `${minion} got a start re-send less than ${l.perMinionMs / 1000} s ago` });
        return;
      case 'full':
        this.ignored('start-flood', { tag, detail: `${l.maxQueued} started minions already wait for a re-send` });
        return;
      case 'waiting':
        return;
      case 'queued':
        this.armStarts();
    }
  }

  private armStarts(): void {
    const at = this.starts.dueAt;
    if (this.startTimer !== undefined || this.stopped || at === undefined) return;
    this.startTimer = this.d.clock.setTimeout(
      () => {
        this.startTimer = undefined;
        const started = this.starts.take();
        if (started.length <= 10) for (const m of started) this.d.log.info({ minion: m }, 'minion started; re-sending current lists');
        else
          this.d.log.info(
            { minions: { count: started.length, ids: started.slice(0, 10), waiting: this.starts.waiting } },
            'minions started; re-sending current lists',
          );
        for (const name of this.clusters.keys()) this.track(this.resend(name, started, 'minion-start'));
        this.armStarts();
      },
      Math.max(0, at - this.d.clock.now()),
    );
  }

  /** Logs an ignored bus event: once per reason, then at most once a minute with a count. */
  private ignored(reason: string, what: { tag: string; detail: string }): void {
    const n = noteDrop(this.drops.get(reason), this.d.clock.now(), DROP_LOG_EVERY_MS);
    this.drops.set(reason, n.next);
    if (!n.log) return;
    this.d.log[QUIET_DROPS.has(reason) ? 'debug' : 'warn'](
      { bus: { reason, tag: shorten(what.tag, 120), detail: shorten(what.detail, 200), ...(n.suppressed ? { suppressed: n.suppressed } : {}) } },
      `ignored bus event (${reason})`,
    );
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private updateBehind(): void {
    for (const [name, c] of this.clusters) {
      this.d.metrics.minionsOutOfDate.set({ cluster: name }, this.minions.behind(name, c.published?.generation).length);
      const counts = new Map<string, number>(REFUSAL_REASONS.map((r) => [r, 0]));
      for (const r of this.minions.refusals(name)) counts.set(r.reason, counts.get(r.reason)! + 1);
      for (const [reason, n] of counts) this.d.metrics.minionRefusals.set({ cluster: name, reason }, n);
    }
  }

  private armRetry(): void {
    this.retryTimer?.cancel();
    let at = this.minions.nextDue();
    for (const c of this.clusters.values()) if (c.jobWait && Number.isFinite(c.jobWait.due) && (at === undefined || c.jobWait.due < at)) at = c.jobWait.due;
    if (at === undefined || this.stopped) return;
    this.retryTimer = this.d.clock.setTimeout(
      () => {
        for (const [name, c] of this.clusters) {
          this.jobUnseen(name, c);
          const due = this.minions.due(name);
          if (due.length) this.track(this.resend(name, due, 'retry'));
        }
        this.updateBehind();
        this.armRetry();
      },
      Math.max(0, at - this.d.clock.now()),
    );
  }

  /**
   * The job of the last publish is overdue on an open stream: the stream lost it (rest_tornado's
   * websocket drops back-to-back events), or no reactor answered. The bridge then knows neither
   * the targeted minions nor their returns, so it fires the payload again (the same generation
   * to the whole target, or the newer list if one is waiting), MAX_JOB_REFIRES times at most.
   */
  private jobUnseen(name: string, c: ClusterRuntime): void {
    const w = c.jobWait;
    if (!w) return;
    const verdict = judgeJobWait(w, this.d.clock.now(), {
      lossyStreamOpen: this.streamOpen && this.streamLossy,
      active: this.active,
      lastGeneration: c.payload?.generation,
    });
    if (verdict === 'wait') return;
    if (verdict === 'drop') {
      c.jobWait = undefined;
      return;
    }
    this.d.metrics.jobsUnseen.inc({ cluster: name });
    const where = { cluster: name, generation: w.generation, refires: w.refires };
    if (verdict === 'give-up') {
      c.jobWait = undefined;
      this.d.log.warn(
        where,
        `no job of this publish was seen on the websocket stream after ${MAX_JOB_REFIRES} re-fires: no minion targeted, no reactor (check with salt-run state.event), or the stream lost them all (prefer eventStream sse); the periodic resync fires it again`,
      );
      return;
    }
    c.jobWait = { ...w, due: Number.POSITIVE_INFINITY, refires: w.refires + 1 }; // re-armed when the re-fire goes out
    this.d.log.info(where, 'no job of this publish was seen on the bus stream within the ack timeout; firing it again');
    if (!this.stopped) this.schedule(name, 'job-unseen', 0);
  }

  private armResync(): void {
    const every = this.d.config.publish.resyncIntervalSeconds * 1000;
    if (every <= 0 || this.stopped) return;
    this.resyncTimer = this.d.clock.setTimeout(() => {
      for (const name of this.clusters.keys()) this.fire(name, 'resync');
      this.armResync();
    }, every);
  }

  /**
   * Operator override. A held publish: publish the currently held list of `name` (only if its
   * digest is still `digest`); with `schedule: false` the caller runs the cluster itself (`once
   * --force`). Otherwise, minions that refused (or found stale) the published list: re-send it
   * once to them (only if its digest is `digest`), after the operator changed what made them
   * refuse (their pillar, a clock, `kube_allowlist.forget`); each holds out again if it refuses again.
   */
  release(name: string, digest?: string, o: { schedule?: boolean } = {}): { released: boolean; message: string } {
    const c = this.clusters.get(name);
    if (!c) return { released: false, message: `no cluster named ${name}` };
    const held = heldVerdict(c.plan);
    if (!held) return this.releaseRefusals(c, digest, o.schedule !== false);
    if (digest && digest !== held.digest)
      return { released: false, message: `${name}: held digest is ${held.digest}, not ${digest} (the list changed; check status again)` };
    if (!held.holds.every((h) => h.overridable))
      return { released: false, message: `${name}: ${held.holds.map((h) => h.message).join('; ')} — cannot be overridden` };
    c.override = held.digest;
    if (o.schedule !== false) this.schedule(name, 'override', 0);
    return { released: true, message: `${name}: releasing held list ${held.digest}` };
  }

  private releaseRefusals(c: ClusterRuntime, digest: string | undefined, resend: boolean): { released: boolean; message: string } {
    const name = c.cfg.name;
    const payload = c.payload;
    const refusing = this.minions.refusals(name);
    if (payload === undefined || refusing.length === 0) return { released: false, message: `${name} has no held publish and no minion refusing its list` };
    if (digest && digest !== payload.digest)
      return { released: false, message: `${name}: the published digest is ${payload.digest}, not ${digest} (check status again)` };
    if (!this.active) return { released: false, message: `${name}: this bridge is not publishing (not leader)` };
    const freed = this.minions.release(name, payload.generation);
    const shown =
      freed
        .slice(0, 10)
        .map((f) => `${f.minion}: ${f.refusal.reason}`)
        .join(', ') + (freed.length > 10 ? `, +${freed.length - 10}` : '');
    this.d.log.warn(
      { cluster: name, generation: payload.generation, minions: { count: freed.length, ids: freed.slice(0, 20).map((f) => f.minion) } },
      'operator release: re-sending the published list once to the minions that refused it',
    );
    if (resend)
      this.track(
        this.resend(
          name,
          freed.map((f) => f.minion),
          'release',
        ),
      );
    this.updateBehind();
    this.armRetry();
    return {
      released: true,
      message: `${name}: re-sending generation ${payload.generation} once to ${freed.length} minion(s) that refused it (${shown}); each refuses again unless what made it refuse has changed`,
    };
  }

  status(): { clusters: ClusterStatus[]; minions: ReturnType<MinionTracker['snapshot']>; active: boolean; dryRun: boolean } {
    const clusters = [...this.clusters.values()].map((c) =>
      clusterStatus(
        c,
        this.d.sources.get(c.cfg.name)!.view().synced,
        this.minions.behind(c.cfg.name, c.published?.generation),
        this.minions.refusals(c.cfg.name),
      ),
    );
    return { clusters, minions: this.minions.snapshot(), active: this.active, dryRun: this.d.dryRun };
  }

  /** Whether every cluster is synced (for /readyz). */
  unsynced(): string[] {
    return [...this.d.sources.values()].filter((s) => !s.view().synced).map((s) => s.cluster);
  }

  /** Stops scheduling and waits for the in-flight publish to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribe) u();
    this.resyncTimer?.cancel();
    this.retryTimer?.cancel();
    this.startTimer?.cancel();
    this.needFullTimer?.cancel();
    this.streamWaitTimer?.cancel();
    for (const c of this.clusters.values()) c.timer?.cancel();
    await Promise.allSettled([...this.inflight, ...[...this.clusters.values()].map((c) => c.running)]);
  }
}

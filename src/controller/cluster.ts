// One cluster's state inside the controller, the bus signals it reacts to, and the status it
// reports. Plain data and pure functions; the controller owns the behaviour.
import type { ClusterConfig } from '../config/index.ts';
import type { AllowListPayload } from '../seams.ts';
import type { BridgeBusEvent } from '../salt/index.ts';
import { ClusterPlanner, initialSchedule, type ClusterPlan, type Hold, type ScheduleState } from '../plan/index.ts';
import type { Backoff } from '../util/backoff.ts';
import type { PublishedState } from './stateStore.ts';
import type { JobWait } from './minions.ts';

/** What the controller hears from the bus: src/salt/interpret.ts's shapes, nothing verified yet. */
export type BusSignal = BridgeBusEvent;

/**
 * Why a run happens; `stream`: the bus stream opened after a publish it could not see;
 * `job-unseen`: the stream was open, but no job of the last publish appeared on it in time.
 */
export type RunReason = 'change' | 'start' | 'resync' | 'retry' | 'leader' | 'once' | 'override' | 'stream' | 'job-unseen';

export interface ClusterRuntime {
  cfg: ClusterConfig;
  schedule: ScheduleState;
  timer: { cancel(): void } | undefined;
  running: Promise<boolean> | undefined;
  rerun: RunReason | undefined;
  published: PublishedState | undefined;
  /**
   * The last payload fired (or, in dry-run, that would have been), exactly as signed: every
   * re-send (retry, minion start, resync) fires this one, whatever the latest plan says.
   */
  payload: AllowListPayload | undefined;
  /**
   * The last published list was fired by this process while it has been active (since it started
   * or last became leader): only then is it a base a delta may be computed from.
   */
  deltaBase: boolean;
  /** Keeps the projection from run to run (src/plan/cluster.ts): each run costs what changed. */
  readonly planner: ClusterPlanner;
  plan: ClusterPlan | undefined;
  /** Since when the plan has held this digest (the holds themselves are `plan.verdict`'s). */
  heldSince: number | undefined;
  override: string | undefined;
  /** First address change not yet published, for the change→applied histogram. */
  changeSeenAt: number | undefined;
  changeSeenByGeneration: Map<number, number>;
  retry: Backoff;
  lastError: { code: string; message: string; at: number } | undefined;
  lastPublishAt: number | undefined;
  /** The highest generation seen in a verified event of this cluster on the bus (0: none). */
  floor: number;
  /** The generation of the publish being fired (its own event can reach the bus before salt-api answers). */
  firing: number | undefined;
  /** The last payload went out while the bus stream was not open: its job and returns were not seen. */
  unobserved: boolean;
  /**
   * The last publish went out on an open stream and its job (salt/job/<jid>/new, verified) has not
   * been seen yet: fired again when `due` passes, at most MAX_JOB_REFIRES times per generation.
   */
  jobWait: JobWait | undefined;
}

export interface ClusterStatus {
  cluster: string;
  synced: boolean;
  nodes: number;
  pending: string[];
  ipv4: number;
  ipv6: number;
  generation: number | undefined;
  digest: string | undefined;
  lastPublishAt: string | undefined;
  held: { reasons: string[]; messages: string[]; digest: string; since: string } | undefined;
  lastError: { code: string; message: string; at: string } | undefined;
  minionsBehind: string[];
  /**
   * Minions holding out against a list of this cluster they refused (or found stale), with the
   * reason and the generation; not re-sent to until they accept a list again or a release.
   * (Optional: a bridge before this field omits it.)
   */
  minionsRefusing?: Array<{ minion: string; reason: string; generation: number; since: string }>;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The held list of the cluster's latest plan, if it holds one: `plan.verdict` is the one record of it. */
export function heldVerdict(plan: ClusterPlan | undefined): { readonly digest: string; readonly holds: readonly Hold[] } | undefined {
  return plan?.verdict.kind === 'hold' ? plan.verdict : undefined;
}

function heldStatus(c: ClusterRuntime): ClusterStatus['held'] {
  const held = heldVerdict(c.plan);
  if (!held) return undefined;
  return { reasons: held.holds.map((h) => h.reason), messages: held.holds.map((h) => h.message), digest: held.digest, since: iso(c.heldSince ?? 0)! };
}

export function newRuntime(cfg: ClusterConfig, published: PublishedState | undefined, retry: Backoff): ClusterRuntime {
  return {
    cfg,
    schedule: initialSchedule,
    timer: undefined,
    running: undefined,
    rerun: undefined,
    published,
    payload: undefined,
    deltaBase: false,
    planner: new ClusterPlanner(),
    plan: undefined,
    heldSince: undefined,
    override: undefined,
    changeSeenAt: undefined,
    changeSeenByGeneration: new Map(),
    retry,
    lastError: undefined,
    lastPublishAt: published ? Date.parse(published.publishedAt) : undefined,
    floor: 0,
    firing: undefined,
    unobserved: false,
    jobWait: undefined,
  };
}

export function clusterStatus(
  c: ClusterRuntime,
  synced: boolean,
  minionsBehind: string[],
  refusing: ReadonlyArray<{ minion: string; reason: string; generation: number; since: number }> = [],
): ClusterStatus {
  return {
    cluster: c.cfg.name,
    synced,
    nodes: c.plan?.projection.nodes ?? 0,
    pending: c.plan?.projection.pending ?? [],
    ipv4: c.plan?.projection.ipv4.length ?? 0,
    ipv6: c.plan?.projection.ipv6.length ?? 0,
    generation: c.published?.generation,
    digest: c.published?.digest,
    lastPublishAt: iso(c.lastPublishAt),
    held: heldStatus(c),
    lastError: c.lastError && { ...c.lastError, at: iso(c.lastError.at)! },
    minionsBehind,
    minionsRefusing: refusing.map((r) => ({ minion: r.minion, reason: r.reason, generation: r.generation, since: iso(r.since)! })),
  };
}

/** Per reason: when an ignored bus event was last logged and how many went unlogged since. */
export interface DropLogState {
  readonly loggedAt: number;
  readonly suppressed: number;
}

/**
 * Rate limit for "ignored bus event" lines: the first event of a reason is logged, later ones at
 * most once per `everyMs`, each saying how many were not logged in between.
 */
export function noteDrop(prev: DropLogState | undefined, now: number, everyMs: number): { log: boolean; suppressed: number; next: DropLogState } {
  if (prev === undefined || now - prev.loggedAt >= everyMs) {
    return { log: true, suppressed: prev?.suppressed ?? 0, next: { loggedAt: now, suppressed: 0 } };
  }
  return { log: false, suppressed: 0, next: { loggedAt: prev.loggedAt, suppressed: prev.suppressed + 1 } };
}

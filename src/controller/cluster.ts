// One cluster's state inside the controller, the bus signals it reacts to, and the status it
// reports. Plain data and pure functions; the controller owns the behaviour.
import type { ClusterConfig } from '../config/index.ts';
import type { AllowListPayload } from '../seams.ts';
import { initialSchedule, type ClusterPlan, type Hold, type ScheduleState } from '../plan/index.ts';
import type { Backoff } from '../util/backoff.ts';
import type { PublishedState } from './stateStore.ts';

export type BusSignal =
  | { kind: 'apply-started'; jid: string; minions: string[]; missing?: string[]; cluster: string; generation: number }
  | { kind: 'apply-result'; jid: string; minion: string; cluster: string | undefined; generation: number | undefined; digest: string | undefined; ok: boolean; changed: boolean; reason: string }
  | { kind: 'minion-start'; minion: string }
  | { kind: 'published'; cluster: string; generation: number | undefined; digest: string | undefined };

export type RunReason = 'change' | 'start' | 'resync' | 'retry' | 'leader' | 'once' | 'override';

export interface ClusterRuntime {
  cfg: ClusterConfig;
  schedule: ScheduleState;
  timer: { cancel(): void } | undefined;
  running: Promise<boolean> | undefined;
  rerun: RunReason | undefined;
  published: PublishedState | undefined;
  /** The last payload fired (or, in dry-run, that would have been); re-sends reuse its generation. */
  payload: AllowListPayload | undefined;
  plan: ClusterPlan | undefined;
  hold: { digest: string; holds: readonly Hold[]; since: number } | undefined;
  override: string | undefined;
  /** First address change not yet published, for the change→applied histogram. */
  changeSeenAt: number | undefined;
  changeSeenByGeneration: Map<number, number>;
  retry: Backoff;
  lastError: { code: string; message: string; at: number } | undefined;
  lastPublishAt: number | undefined;
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
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function newRuntime(cfg: ClusterConfig, published: PublishedState | undefined, retry: Backoff): ClusterRuntime {
  return {
    cfg,
    schedule: initialSchedule,
    timer: undefined,
    running: undefined,
    rerun: undefined,
    published,
    payload: undefined,
    plan: undefined,
    hold: undefined,
    override: undefined,
    changeSeenAt: undefined,
    changeSeenByGeneration: new Map(),
    retry,
    lastError: undefined,
    lastPublishAt: published ? Date.parse(published.publishedAt) : undefined,
  };
}

export function clusterStatus(c: ClusterRuntime, synced: boolean, minionsBehind: string[]): ClusterStatus {
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
    held: c.hold && {
      reasons: c.hold.holds.map((h) => h.reason), messages: c.hold.holds.map((h) => h.message), digest: c.hold.digest, since: iso(c.hold.since)!,
    },
    lastError: c.lastError && { ...c.lastError, at: iso(c.lastError.at)! },
    minionsBehind,
  };
}

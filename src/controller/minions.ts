// What the bus tells us about minions, and what the bridge does about it: which verified jobs
// targeted which minions, which of them applied which generation, which failed or never answered,
// and the events of a targeted re-send. Bookkeeping over injected time plus pure decisions; the
// controller only sequences (docs/event-contract.md, "What the bridge believes from the bus").
import { Backoff } from '../util/backoff.ts';
import type { AllowListPayload } from '../seams.ts';
import { MINION_ID, payloadBytes, SALT_API_MAX_BODY_BYTES } from '../plan/index.ts';

/** The newest this many verified apply jobs are remembered. */
export const MAX_JOBS = 1_000;
/** At most this many targeted minions are kept per job. */
export const MAX_JOB_MINIONS = 10_000;
/** At most this many minions are tracked per cluster; the least recently seen goes first. */
export const MAX_MINIONS_PER_CLUSTER = 10_000;
/** The reactor accepts at most this many ids in one `minions` hint. */
export const MAX_HINT_IDS = 1_000;
/** A hint id as the reactor accepts it (the contract's minion id). */
/** Room kept in a salt-api request for what surrounds the event data ({"client":"runner",...,"tag":...}). */
export const REQUEST_OVERHEAD_BYTES = 512;

// ---- jobs ------------------------------------------------------------------------------------

/** A kube_allowlist.apply job whose payload verified with the bridge's own key. */
export interface Job {
  readonly jid: string;
  readonly cluster: string;
  readonly generation: number;
  readonly digest: string;
  /** The minions the master targeted (at most MAX_JOB_MINIONS). */
  readonly minions: ReadonlySet<string>;
}

/** The newest MAX_JOBS jobs, by jid. */
export class JobBook {
  private readonly jobs = new Map<string, Job>();
  private readonly max: number;

  constructor(max = MAX_JOBS) {
    this.max = max;
  }

  has(jid: string): boolean {
    return this.jobs.has(jid);
  }

  get(jid: string): Job | undefined {
    return this.jobs.get(jid);
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Remembers a job; the first word on a jid stands. The oldest job is forgotten beyond the bound. */
  remember(job: Job): void {
    if (this.jobs.has(job.jid)) return;
    const minions = job.minions.size <= MAX_JOB_MINIONS ? job.minions : new Set([...job.minions].slice(0, MAX_JOB_MINIONS));
    this.jobs.set(job.jid, { ...job, minions });
    while (this.jobs.size > this.max) this.jobs.delete(this.jobs.keys().next().value!);
  }
}

export type JobVerdict = { readonly accept: true } | { readonly accept: false; readonly reason: 'other-cluster' | 'known-job' | 'unverified' };

/**
 * Whether a salt/job/<jid>/new of kube_allowlist.apply is remembered: a cluster of this bridge, a
 * jid not seen before, and a payload that verifies with the bridge's key (checked last: it costs).
 */
export function judgeJob(j: { ours: boolean; known: boolean; verify: () => boolean }): JobVerdict {
  if (!j.ours) return { accept: false, reason: 'other-cluster' };
  if (j.known) return { accept: false, reason: 'known-job' };
  if (!j.verify()) return { accept: false, reason: 'unverified' };
  return { accept: true };
}

export type ReturnVerdict =
  | { readonly credit: true; readonly cluster: string; readonly generation: number; readonly digest: string }
  | { readonly credit: false; readonly reason: 'unknown-job' | 'not-targeted' };

/**
 * What a kube_allowlist.apply return is worth: only a return of a remembered job, from a minion
 * that job targeted, counts; the generation and digest are the job's, never the return's.
 */
export function judgeReturn(job: Job | undefined, minion: string): ReturnVerdict {
  if (job === undefined) return { credit: false, reason: 'unknown-job' };
  if (!job.minions.has(minion)) return { credit: false, reason: 'not-targeted' };
  return { credit: true, cluster: job.cluster, generation: job.generation, digest: job.digest };
}

export type FloorVerdict =
  { readonly raise: true; readonly to: number } | { readonly raise: false; readonly reason: 'other-cluster' | 'not-higher' | 'unverified' };

/**
 * Whether a cluster event or job seen on the bus raises the cluster's generation floor: ours,
 * higher than the floor, and verified with the bridge's key (checked last, and only then).
 */
export function judgeFloor(j: { ours: boolean; floor: number; generation: number | undefined; verify: () => boolean }): FloorVerdict {
  if (!j.ours) return { raise: false, reason: 'other-cluster' };
  if (j.generation === undefined || !Number.isSafeInteger(j.generation) || j.generation <= j.floor) return { raise: false, reason: 'not-higher' };
  if (!j.verify()) return { raise: false, reason: 'unverified' };
  return { raise: true, to: j.generation };
}

// ---- re-sends --------------------------------------------------------------------------------

/** One event of a targeted re-send: the published payload as it was, plus the unsigned hint. */
export type ResendEvent = AllowListPayload & { minions?: string[] };

/**
 * The events that re-send `payload` — exactly the last payload published, never a new signature —
 * to `minions` through the unsigned `minions` hint (the reactor intersects it with the cluster's
 * target). Ids are deduplicated and sorted; ids the reactor would refuse are left out. Split so
 * that no event names more than MAX_HINT_IDS minions and no salt-api request exceeds `maxBytes`.
 * When not even one id fits beside the payload, one event without a hint goes instead (the
 * cluster's whole target: what a resync sends).
 */
export function resendEvents(payload: AllowListPayload, minions: Iterable<string>, maxBytes = SALT_API_MAX_BODY_BYTES): ResendEvent[] {
  const ids = [...new Set(minions)].filter((id) => MINION_ID.test(id)).sort();
  if (ids.length === 0) return [];
  const { minions: _old, ...base } = payload as ResendEvent;
  const room = maxBytes - REQUEST_OVERHEAD_BYTES - payloadBytes({ ...base, minions: [] });
  const out: ResendEvent[] = [];
  let chunk: string[] = [];
  let used = 0;
  for (const id of ids) {
    const cost = id.length + 3; // "id" and a comma; ids are ASCII
    if (cost > room) return [{ ...base }];
    if (chunk.length === MAX_HINT_IDS || used + cost > room) {
      out.push({ ...base, minions: chunk });
      chunk = [];
      used = 0;
    }
    chunk.push(id);
    used += cost;
  }
  out.push({ ...base, minions: chunk });
  return out;
}

// ---- outcomes --------------------------------------------------------------------------------

/**
 * Why a minion holds on to what it has instead of the list it was given: the policy or check that
 * refused it (retcode 1), or `stale` (retcode 0: it holds a newer generation). Taken from the
 * module's reason text (the Salt extension under salt/file_roots/_utils/saltext/kube_allowlist/:
 * modules/kube_allowlist_mod.py, utils/policy.py, utils/payload.py): `refused: <check>: ...` or
 * `stale: ...`; test/unit/minions.test.ts checks that those texts are still there.
 */
export type RefusalReason = 'shrink' | 'empty' | 'conflict' | 'skew' | 'version' | 'key' | 'signature' | 'tag' | 'invalid' | 'stale';

export const REFUSAL_REASONS: readonly RefusalReason[] = ['shrink', 'empty', 'conflict', 'skew', 'version', 'key', 'signature', 'tag', 'invalid', 'stale'];

/** What one apply return means for the bridge. */
export type Outcome =
  | { readonly kind: 'applied' }
  | { readonly kind: 'current' }
  /** The same list will be refused every time (or is older than what the minion holds): held, never re-sent. */
  | { readonly kind: 'refused'; readonly reason: RefusalReason }
  | { readonly kind: 'stale'; readonly reason: 'stale' }
  /**
   * A delta reached a minion that does not hold the list it applies to: it changed nothing and asks
   * for the full list of that generation (re-sent once, NeedFullRounds). Not its word on the
   * generation: the minion stays owed it (pending).
   */
  | { readonly kind: 'need_full' }
  /** Retcode 2, an exception, a missing module, anything else: retried with backoff. */
  | { readonly kind: 'failed' };

const REFUSAL_TEXT: ReadonlyArray<[RegExp, RefusalReason]> = [
  [/^empty allow-list\b/, 'empty'],
  [/^\d+ of \d+ entries would be removed\b/, 'shrink'],
  [/^generation \d+ was already applied with digest\b/, 'conflict'],
  [/^generation: -?\d+ is .* ahead of this minion's clock/, 'skew'],
  [/^version: /, 'version'],
  [/^key_id: /, 'key'],
  [/^signature: /, 'signature'],
  [/^tag .* does not name cluster\b/, 'tag'],
];

/** The check named by a `refused: ...` reason; anything not listed is `invalid` (schema, address, space, digest). */
export function refusalReason(text: string): RefusalReason {
  const rest = text.replace(/^refused: /, '');
  for (const [re, reason] of REFUSAL_TEXT) if (re.test(rest)) return reason;
  return 'invalid';
}

/**
 * Decision table of a credited return (src/salt/interpret.ts gives `ok`, `changed`, `retcode`,
 * `needFull`, `reason`): ok → applied or current; retcode 0 with `need_full: true` → need_full
 * (never the `stale` word, whatever the reason says); retcode 0 with a `stale:` reason → stale;
 * retcode 1 with the module's `refused:` reason → refused (for that reason); everything else, a
 * retcode 1 without it (Salt's own errors) included, → failed.
 */
export function judgeOutcome(r: { ok: boolean; changed: boolean; retcode?: number | undefined; needFull?: boolean; reason: string }): Outcome {
  if (r.ok) return r.changed ? { kind: 'applied' } : { kind: 'current' };
  if (r.retcode === 0 && r.needFull === true) return { kind: 'need_full' };
  if (r.retcode === 0 && r.reason.startsWith('stale: ')) return { kind: 'stale', reason: 'stale' };
  if (r.retcode === 1 && r.reason.startsWith('refused: ')) return { kind: 'refused', reason: refusalReason(r.reason) };
  return { kind: 'failed' };
}

/** What clears a refusal, for the log line that reports it (README "Operating it", "Refusals"). */
export function refusalHint(reason: RefusalReason, cluster: string, minion: string): string {
  const release = `kube-salt-bridge release ${cluster}`;
  switch (reason) {
    case 'shrink':
      return `it accepts the next list within its pillar max_shrink of what it holds (the cluster growing back); or raise kube_allowlist max_shrink and run \`${release}\`, or apply it there with force=True`;
    case 'empty':
      return `an empty list needs pillar kube_allowlist allow_empty, then \`${release}\``;
    case 'skew':
      return `the generation is too far ahead of the minion's clock: fix the clock that is wrong, then \`${release}\` (docs/event-contract.md, "Generations and clocks")`;
    case 'conflict':
    case 'stale':
      return `it holds ${reason === 'stale' ? 'a newer generation' : 'this generation with another digest'}: the next publish (a new generation) clears it, or \`salt ${minion} kube_allowlist.forget ${cluster}\` then \`${release}\``;
    case 'key':
    case 'signature':
      return `add the bridge's public key (kube-salt-bridge check shows its key id) to the minion's pillar kube_allowlist:public_keys, refresh pillar, then \`${release}\``;
    case 'version':
      return `the minion's Salt content speaks another contract version: deploy the matching salt/ content (saltutil.sync_all), then \`${release}\``;
    case 'tag':
    case 'invalid':
      return `the minion's checks reject the payload itself (see the reason); fix the mismatch, then \`${release}\``;
  }
}

// ---- the tracker -----------------------------------------------------------------------------

/** A refused (or stale) generation a minion holds out against, until it accepts a list again. */
export interface Refusal {
  reason: RefusalReason;
  /** The generation and digest of the job it refused (the job's, never the return's). */
  generation: number;
  digest: string;
  /** The minion's reason text (truncated). */
  message: string;
  /** When the minion first refused this generation for this reason (ms). */
  since: number;
}

export interface MinionClusterState {
  appliedGeneration: number | undefined;
  appliedDigest: string | undefined;
  /**
   * 'applied' | 'current' (already had it) | 'refused' / 'stale' (see `refusal`) | 'failed' |
   * 'pending' (sent, no answer yet, or it asked for the full list of a delta).
   */
  lastResult: 'applied' | 'current' | 'refused' | 'stale' | 'failed' | 'pending';
  reason: string;
  lastSeenAt: number | undefined;
  /** When a targeted re-send is due (failure or no answer), undefined when nothing is owed. */
  retryAt: number | undefined;
  /**
   * Set while the minion holds out against a generation it refused (or found stale): that
   * generation is not re-sent to it. Cleared when it accepts a list of that generation or a
   * newer one, or by an operator's release. (Optional: a bridge before this field omits it.)
   */
  refusal?: Refusal | undefined;
}

export interface RetryOptions {
  /** How long a minion may take to answer a job before it is re-sent. */
  ackTimeoutMs: number;
  initialMs: number;
  maxMs: number;
  /** Minions tracked per cluster (default MAX_MINIONS_PER_CLUSTER). */
  maxPerCluster?: number;
}

/** What a credited return tells: the job's generation and digest, the return's outcome (judgeOutcome). */
export interface Credit {
  generation: number;
  digest: string;
  outcome: Outcome;
  reason: string;
}

/**
 * What a return did to a minion's state: `ok` (applied or current), `failed` (a re-send is owed,
 * with backoff), `held` (a new refusal: log it), `held-again` (the same refusal repeated, e.g. on
 * the periodic resync: nothing new), `late` (a word on an older generation than the one owed or
 * applied since: only noted), `need-full` (it asked for the full list: still owed, pending).
 */
export type ResultEffect = 'ok' | 'failed' | 'held' | 'held-again' | 'late' | 'need-full';

interface Entry extends MinionClusterState {
  backoff: Backoff;
  expectedGeneration: number | undefined;
}

export class MinionTracker {
  /** cluster → minion → entry, in order of last sight (the first is the least recently seen). */
  private readonly clusters = new Map<string, Map<string, Entry>>();
  private readonly o: RetryOptions;
  private readonly max: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(o: RetryOptions, now: () => number, random: () => number = Math.random) {
    this.o = o;
    this.max = o.maxPerCluster ?? MAX_MINIONS_PER_CLUSTER;
    this.now = now;
    this.random = random;
  }

  /** The entry of a minion the bus just mentioned: created or moved to the most recently seen end. */
  private touch(cluster: string, minion: string): Entry {
    let byMinion = this.clusters.get(cluster);
    if (!byMinion) this.clusters.set(cluster, (byMinion = new Map<string, Entry>()));
    let e = byMinion.get(minion);
    if (e) {
      byMinion.delete(minion);
    } else {
      e = {
        appliedGeneration: undefined,
        appliedDigest: undefined,
        lastResult: 'pending',
        reason: '',
        lastSeenAt: undefined,
        retryAt: undefined,
        refusal: undefined,
        expectedGeneration: undefined,
        backoff: new Backoff({ initialMs: this.o.initialMs, maxMs: this.o.maxMs, now: this.now, random: this.random }),
      };
    }
    byMinion.set(minion, e);
    while (byMinion.size > this.max) byMinion.delete(byMinion.keys().next().value!);
    return e;
  }

  /**
   * A verified job applying `generation` targeted these minions (salt/job/<jid>/new). A minion that
   * already applied it, or refused it (or a newer one), is owed nothing: its answer to this
   * generation is known, and the same list would be refused again.
   */
  started(cluster: string, generation: number, minions: Iterable<string>): void {
    const now = this.now();
    for (const m of minions) {
      const e = this.touch(cluster, m);
      if (e.appliedGeneration !== undefined && e.appliedGeneration >= generation) continue;
      if (e.refusal !== undefined && e.refusal.generation >= generation) continue;
      e.expectedGeneration = Math.max(e.expectedGeneration ?? 0, generation);
      e.lastResult = 'pending';
      e.retryAt = now + this.o.ackTimeoutMs;
    }
  }

  /** A credited return (see judgeReturn, judgeOutcome): what it changed (ResultEffect). */
  result(cluster: string, minion: string, r: Credit): ResultEffect {
    const e = this.touch(cluster, minion);
    const now = this.now();
    e.lastSeenAt = now;
    const o = r.outcome;
    if (o.kind === 'applied' || o.kind === 'current') {
      e.reason = r.reason;
      if (e.appliedGeneration === undefined || r.generation >= e.appliedGeneration) {
        e.appliedGeneration = r.generation;
        e.appliedDigest = r.digest;
      }
      if (e.refusal !== undefined && r.generation >= e.refusal.generation) e.refusal = undefined;
      e.lastResult = o.kind;
      if (e.expectedGeneration === undefined || (e.appliedGeneration ?? 0) >= e.expectedGeneration) {
        e.expectedGeneration = undefined;
        e.retryAt = undefined;
        e.backoff.reset();
      }
      return 'ok';
    }
    if (o.kind === 'failed') {
      e.reason = r.reason;
      e.lastResult = 'failed';
      e.retryAt = now + e.backoff.next();
      return 'failed';
    }
    if (o.kind === 'need_full') {
      // Nothing changed there; the full list follows (NeedFullRounds), and the ack deadline set
      // when the job started still stands should it be lost.
      if (e.appliedGeneration !== undefined && r.generation <= e.appliedGeneration) return 'late';
      e.reason = r.reason;
      e.lastResult = 'pending';
      e.expectedGeneration = Math.max(e.expectedGeneration ?? 0, r.generation);
      e.retryAt ??= now + this.o.ackTimeoutMs;
      return 'need-full';
    }
    // Refused or stale: a word on this generation that a re-send cannot change.
    const newer = Math.max(e.expectedGeneration ?? 0, e.appliedGeneration ?? 0, e.refusal?.generation ?? 0);
    if (r.generation < newer) return 'late';
    const again = e.refusal !== undefined && e.refusal.generation === r.generation && e.refusal.reason === o.reason;
    e.refusal = again ? { ...e.refusal!, message: r.reason } : { reason: o.reason, generation: r.generation, digest: r.digest, message: r.reason, since: now };
    e.reason = r.reason;
    e.lastResult = o.kind;
    e.expectedGeneration = undefined;
    e.retryAt = undefined;
    e.backoff.reset();
    return again ? 'held-again' : 'held';
  }

  /**
   * Operator's release: the minions of `cluster` (all, or those named) that hold a refusal of
   * `generation` or older lose it and are owed one answer to `generation` again (the caller
   * re-sends it). Returns them with what they had refused.
   */
  release(cluster: string, generation: number, only?: ReadonlySet<string>): Array<{ minion: string; refusal: Refusal }> {
    const now = this.now();
    const out: Array<{ minion: string; refusal: Refusal }> = [];
    for (const [m, e] of this.clusters.get(cluster) ?? []) {
      if (e.refusal === undefined || e.refusal.generation > generation || (only && !only.has(m))) continue;
      out.push({ minion: m, refusal: e.refusal });
      e.refusal = undefined;
      e.lastResult = 'pending';
      e.expectedGeneration = generation;
      e.retryAt = now + this.o.ackTimeoutMs;
    }
    return out.sort((a, b) => a.minion.localeCompare(b.minion));
  }

  /** Whether `minion` holds out against `generation` of `cluster` (it refused it, or found it stale). */
  refuses(cluster: string, minion: string, generation: number): boolean {
    const r = this.clusters.get(cluster)?.get(minion)?.refusal;
    return r !== undefined && r.generation >= generation;
  }

  /** The minions of `cluster` holding a refusal, by id. */
  refusals(cluster: string): Array<{ minion: string; reason: RefusalReason; generation: number; since: number }> {
    const out: Array<{ minion: string; reason: RefusalReason; generation: number; since: number }> = [];
    for (const [m, e] of this.clusters.get(cluster) ?? [])
      if (e.refusal) out.push({ minion: m, reason: e.refusal.reason, generation: e.refusal.generation, since: e.refusal.since });
    return out.sort((a, b) => a.minion.localeCompare(b.minion));
  }

  /** Minions owed a re-send of `cluster`'s current list at `now`; their next deadline is pushed back. */
  due(cluster: string): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const [m, e] of this.clusters.get(cluster) ?? []) {
      if (e.retryAt === undefined || e.retryAt > now) continue;
      out.push(m);
      e.retryAt = now + this.o.ackTimeoutMs + e.backoff.next();
    }
    return out.sort();
  }

  /** Earliest pending retry time across all clusters, for the controller's timer. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const byMinion of this.clusters.values()) {
      for (const e of byMinion.values()) if (e.retryAt !== undefined && (min === undefined || e.retryAt < min)) min = e.retryAt;
    }
    return min;
  }

  /** Minions of `cluster` whose applied generation is below `generation`. */
  behind(cluster: string, generation: number | undefined): string[] {
    if (generation === undefined) return [];
    const out: string[] = [];
    for (const [m, e] of this.clusters.get(cluster) ?? []) if ((e.appliedGeneration ?? 0) < generation) out.push(m);
    return out.sort();
  }

  /** How many minions are tracked for `cluster`. */
  size(cluster: string): number {
    return this.clusters.get(cluster)?.size ?? 0;
  }

  snapshot(): Array<{ cluster: string; minion: string } & MinionClusterState> {
    const out: Array<{ cluster: string; minion: string } & MinionClusterState> = [];
    for (const [cluster, byMinion] of this.clusters) {
      for (const [minion, e] of byMinion) {
        out.push({
          cluster,
          minion,
          appliedGeneration: e.appliedGeneration,
          appliedDigest: e.appliedDigest,
          lastResult: e.lastResult,
          reason: e.reason,
          lastSeenAt: e.lastSeenAt,
          retryAt: e.retryAt,
          refusal: e.refusal && { ...e.refusal },
        });
      }
    }
    return out.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.minion.localeCompare(b.minion));
  }
}

// ---- full re-sends a delta's minions ask for -------------------------------------------------

/**
 * Bounds of the full re-sends answering `need_full`: rounds 200 ms apart (answers arriving
 * together share one), at most 1,000 ids per cluster and round (one event: the reactor's hint
 * limit), at most 10,000 waiting, and one re-send per minion and generation.
 */
export interface NeedFullOptions {
  readonly coalesceMs: number;
  readonly maxPerRound: number;
  readonly maxQueued: number;
  /** Minions whose last re-sent generation is remembered, per cluster (the oldest is forgotten first). */
  readonly maxRemembered: number;
}

export const NEED_FULL_LIMITS: NeedFullOptions = Object.freeze({
  coalesceMs: 200,
  maxPerRound: 1_000,
  maxQueued: 10_000,
  maxRemembered: MAX_MINIONS_PER_CLUSTER,
});

/**
 * queued: the full list goes to it with the next round; waiting: already queued for this
 * generation; once: the full list of this generation was already re-sent to it (a repeated or
 * forged `need_full` costs nothing more); late: not the last published generation (the newer one
 * reached it too, and gets its own answer); full: maxQueued already wait.
 */
export type NeedFullVerdict = 'queued' | 'waiting' | 'once' | 'late' | 'full';

/** Whether a credited `need_full` answer to `generation` gets the full list re-sent. */
export function judgeNeedFull(j: {
  generation: number;
  /** The cluster's last published generation (undefined: none in this process). */
  published: number | undefined;
  /** The generation whose full list was last re-sent to this minion for a `need_full`. */
  sentFor: number | undefined;
  /** The generation this minion waits for in the queue. */
  queuedFor: number | undefined;
  queueFull: boolean;
}): NeedFullVerdict {
  if (j.published === undefined || j.generation !== j.published) return 'late';
  if (j.sentFor !== undefined && j.sentFor >= j.generation) return 'once';
  if (j.queuedFor !== undefined && j.queuedFor >= j.generation) return 'waiting';
  if (j.queueFull) return 'full';
  return 'queued';
}

/** One round's re-sends of one cluster: the generation each minion asked for. */
export interface NeedFullRound {
  readonly cluster: string;
  readonly minions: ReadonlyArray<{ readonly minion: string; readonly generation: number }>;
}

/** The queue of `need_full` re-sends, per cluster, over an injected clock; the controller sets the one timer it is told. */
export class NeedFullRounds {
  private readonly o: NeedFullOptions;
  private readonly now: () => number;
  private readonly queue = new Map<string, Map<string, number>>();
  private readonly sent = new Map<string, Map<string, number>>();
  private queued = 0;
  private due: number | undefined;

  constructor(o: NeedFullOptions, now: () => number) {
    this.o = o;
    this.now = now;
  }

  /** When the next round is due (undefined: nothing waits). */
  get dueAt(): number | undefined {
    return this.due;
  }

  /** How many minions wait, all clusters together. */
  get waiting(): number {
    return this.queued;
  }

  /** A credited `need_full` of `minion` for `generation` of `cluster`, whose last published generation is `published`. */
  note(cluster: string, minion: string, generation: number, published: number | undefined): NeedFullVerdict {
    const q = this.queue.get(cluster);
    const verdict = judgeNeedFull({
      generation,
      published,
      sentFor: this.sent.get(cluster)?.get(minion),
      queuedFor: q?.get(minion),
      queueFull: this.queued >= this.o.maxQueued,
    });
    if (verdict !== 'queued') return verdict;
    let waiting = q;
    if (waiting === undefined) this.queue.set(cluster, (waiting = new Map<string, number>()));
    if (!waiting.has(minion)) this.queued += 1;
    waiting.set(minion, generation);
    this.due ??= this.now() + this.o.coalesceMs;
    return 'queued';
  }

  /** The round due now: per cluster, at most maxPerRound minions (sorted); the rest wait for the next round. */
  take(): NeedFullRound[] {
    const now = this.now();
    if (this.due === undefined || this.due > now) return [];
    const out: NeedFullRound[] = [];
    for (const [cluster, q] of this.queue) {
      const taken: Array<{ minion: string; generation: number }> = [];
      for (const [minion, generation] of q) {
        if (taken.length === this.o.maxPerRound) break;
        taken.push({ minion, generation });
      }
      let sent = this.sent.get(cluster);
      if (sent === undefined) this.sent.set(cluster, (sent = new Map<string, number>()));
      for (const t of taken) {
        q.delete(t.minion);
        sent.delete(t.minion);
        sent.set(t.minion, t.generation);
      }
      while (sent.size > this.o.maxRemembered) sent.delete(sent.keys().next().value!);
      this.queued -= taken.length;
      if (q.size === 0) this.queue.delete(cluster);
      if (taken.length) out.push({ cluster, minions: taken.sort((a, b) => (a.minion < b.minion ? -1 : a.minion > b.minion ? 1 : 0)) });
    }
    this.due = this.queued > 0 ? now + this.o.coalesceMs : undefined;
    return out;
  }
}

// ---- a publish's job on a lossy stream ---------------------------------------------------------

/**
 * How many times a publish whose job never showed on a lossy stream is fired again before the
 * bridge leaves it to the periodic resync.
 */
export const MAX_JOB_REFIRES = 3;

/** Waiting for the verified job (salt/job/<jid>/new) of the publish of `generation`. */
export interface JobWait {
  readonly generation: number;
  /** When the job is overdue (Infinity while a re-fire is on its way). */
  readonly due: number;
  /** Re-fires of this generation so far. */
  readonly refires: number;
}

/**
 * The wait after the publish of `generation` went out at `now`: a re-fire of the same generation
 * keeps its count, and each wait is one ack timeout longer than the one before (30 s, 60 s, 90 s).
 */
export function awaitJob(prev: JobWait | undefined, generation: number, now: number, ackTimeoutMs: number): JobWait {
  const refires = prev?.generation === generation ? prev.refires : 0;
  return { generation, due: now + ackTimeoutMs * (refires + 1), refires };
}

/** Whether a verified job of `generation` ends the wait. */
export function jobEndsWait(w: JobWait | undefined, generation: number): boolean {
  return w !== undefined && generation >= w.generation;
}

/**
 * What an overdue wait means: `wait` (not due yet), `drop` (nothing to do: the stream is closed or
 * not lossy, so its reopening re-fires; or a newer publish waits for its own job), `refire`, or
 * `give-up` after MAX_JOB_REFIRES re-fires (no target, no reactor, or a stream that loses them all).
 */
export function judgeJobWait(
  w: JobWait,
  now: number,
  o: { lossyStreamOpen: boolean; active: boolean; lastGeneration: number | undefined },
): 'wait' | 'drop' | 'refire' | 'give-up' {
  if (w.due > now) return 'wait';
  if (!o.lossyStreamOpen || !o.active || o.lastGeneration !== w.generation) return 'drop';
  return w.refires >= MAX_JOB_REFIRES ? 'give-up' : 'refire';
}

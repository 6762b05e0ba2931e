// What a bus event means to the bridge. Pure: no I/O, no clock, no logger, no key.
//
// Shapes verified on Salt 3007.13 (fixtures in test/unit/salt-fixtures.ts):
// - salt/job/<jid>/new: {jid, fun, arg, tgt, tgt_type, minions, missing, user}; when the reactor
//   passes `kwarg: {payload: ...}`, arg is [{"__kwarg__": true, "payload": {...}}].
// - salt/job/<jid>/ret/<minion>: {cmd: "_return", id, jid, fun, fun_args, return, retcode, success}.
//   A failing function has success false and retcode != 0; an exception or a missing function has
//   a string `return`. `success` alone is not enough: retcode decides.
// - salt/minion/<id>/start: the minion's own announcement, forwarded by the master as
//   {cmd: "_minion_event", id, tag, data, pretag}, where `id` is the sender's authenticated id.
// - our own event: kube-salt-bridge/cluster/<c>/nodes with the payload (+ `_stamp`), in either
//   form (full or delta, docs/event-contract.md): a job or event is tied to its publication by the
//   payload's cluster, generation and digest, which both forms carry.
//
// What can be believed (docs/event-contract.md, "What the bridge believes from the bus"): anything
// a minion forwards (`cmd: _minion_event`) has a tag and content of the minion's choosing and is
// dropped — except a start event whose tag names the sender itself, which is exactly what a
// genuine start is and claims nothing about anyone else. Minion ids are checked against the
// contract's pattern wherever they come from; a ret/start whose tag names another id than its data
// is dropped. Signatures are not checked here (this module holds no key): a job's and a cluster
// event's payload is handed on for the controller to verify, and a return carries no generation at
// all — what it is credited with comes from the job the controller remembered.

import type { BusEvent } from '../seams.ts';
import { shorten } from '../util/text.ts';
import { MINION_ID, TAG_PREFIX } from '../plan/payload.ts';

export const APPLY_FUN = 'kube_allowlist.apply';
/** Minion ids the bridge accepts from the bus (and the reactor accepts in a `minions` hint). */
/** At most this many targeted minions are kept per job. */
export const MAX_JOB_MINIONS = 10_000;
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// Salt jids are 20 digits, with `_<pid>` appended when the master sets unique_jid.
const JID = /^[0-9]{1,32}(?:_[0-9]{1,12})?$/;
const FORWARDED = '_minion_event';

export interface ApplyResult {
  readonly kind: 'apply-result';
  readonly minion: string;
  readonly jid: string;
  /** retcode 0, success not false, and a dict return that does not say applied: false. */
  readonly ok: boolean;
  /** The module's `changed` (false when the return has none). */
  readonly changed: boolean;
  /** The module's `need_full: true`: a delta that did not apply to the list the minion holds (false when absent). */
  readonly needFull: boolean;
  readonly retcode: number | undefined;
  /** The module's reason, or the first line of a string return (exception, missing module); truncated. */
  readonly reason: string;
}

export interface ApplyStarted {
  readonly kind: 'apply-started';
  readonly jid: string;
  /** Minions the master targeted (expected to answer, plus the disconnected ones), valid ids only, capped. */
  readonly minions: string[];
  /** Ids in the event that are not valid minion ids (left out of `minions`). */
  readonly invalidIds: number;
  /** Valid ids beyond MAX_JOB_MINIONS (left out of `minions`). */
  readonly overCap: number;
  /** The job's payload as the event carries it: to be verified before anything is believed. */
  readonly payload: Record<string, unknown>;
  /** The payload's claims (only meaningful once it verified). */
  readonly cluster: string;
  readonly generation: number;
  readonly digest: string | undefined;
}

export interface MinionStart {
  readonly kind: 'minion-start';
  readonly minion: string;
}

export interface Published {
  readonly kind: 'published';
  /** From the tag. */
  readonly cluster: string;
  /** The event data: to be verified before anything is believed. */
  readonly payload: Record<string, unknown>;
  readonly generation: number | undefined;
}

export type DropReason = 'forwarded' | 'bad-id' | 'id-mismatch' | 'bad-jid' | 'bad-cluster';

/** An event on a tag the bridge reads that it does not believe (to be logged, rate-limited). */
export interface Dropped {
  readonly kind: 'dropped';
  readonly reason: DropReason;
  /** The tag, truncated. */
  readonly tag: string;
  /** What was wrong, truncated (never the raw data). */
  readonly detail: string;
}

export type BridgeBusEvent = ApplyResult | ApplyStarted | MinionStart | Published | Dropped;

const RET_TAG = /^salt\/job\/([^/]*)\/ret\/(.*)$/s;
const NEW_TAG = /^salt\/job\/([^/]*)\/new$/s;
const START_TAG = /^salt\/minion\/(.*)\/start$/s;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

export function isMinionId(v: unknown): v is string {
  return typeof v === 'string' && MINION_ID.test(v);
}

/** The `payload` kwarg of a call, from `arg` / `fun_args` ([..., {"__kwarg__": true, payload}]). */
export function payloadFromArgs(args: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(args)) return undefined;
  for (const a of args) {
    if (isRecord(a) && a['__kwarg__'] === true && isRecord(a['payload'])) return a['payload'];
  }
  return undefined;
}

function firstLine(s: string, max = 200): string {
  const line =
    s
      .trim()
      .split('\n')
      .find((l) => l.trim() !== '') ?? '';
  return shorten(line, max);
}

function dropped(reason: DropReason, tag: string, detail: string): Dropped {
  return { kind: 'dropped', reason, tag: shorten(tag), detail: shorten(detail, 200) };
}

/** The valid, distinct ids of `minions` then `missing`, capped, and how many were left out. */
function targetedIds(d: Record<string, unknown>): { ids: string[]; invalid: number; overCap: number } {
  const seen = new Set<string>();
  let invalid = 0;
  let overCap = 0;
  for (const list of [d['minions'], d['missing']]) {
    if (!Array.isArray(list)) continue;
    for (const id of list) {
      if (!isMinionId(id)) invalid += 1;
      else if (seen.has(id)) continue;
      else if (seen.size >= MAX_JOB_MINIONS) overCap += 1;
      else seen.add(id);
    }
  }
  return { ids: [...seen], invalid, overCap };
}

/** The id named by a ret/start tag and the event's own `id` must agree and be valid. */
function checkedId(tag: string, tagId: string, dataId: unknown): string | Dropped {
  if (!isMinionId(tagId)) return dropped('bad-id', tag, `tag names an invalid minion id ${JSON.stringify(shorten(tagId, 60))}`);
  if (dataId !== tagId) {
    const said = typeof dataId === 'string' ? JSON.stringify(shorten(dataId, 60)) : 'none';
    return dropped('id-mismatch', tag, `tag names ${tagId}, data id is ${said}`);
  }
  return tagId;
}

export function interpretBusEvent(e: BusEvent): BridgeBusEvent | undefined {
  const d = isRecord(e.data) ? e.data : {};
  const tag = typeof e.tag === 'string' ? e.tag : '';
  const forwarded = d['cmd'] === FORWARDED;

  let m = RET_TAG.exec(tag);
  if (m !== null) {
    if (forwarded) return dropped('forwarded', tag, `forwarded by minion ${shorten(String(d['id']), 60)}`);
    if (d['fun'] !== APPLY_FUN) return undefined;
    const jid = m[1] ?? '';
    if (!JID.test(jid) || (d['jid'] !== undefined && d['jid'] !== jid)) return dropped('bad-jid', tag, "job id missing, malformed or not the tag's");
    const minion = checkedId(tag, m[2] ?? '', d['id']);
    if (typeof minion !== 'string') return minion;
    const ret = d['return'];
    const retcode = int(d['retcode']);
    if (isRecord(ret)) {
      const ok = retcode === 0 && d['success'] !== false && ret['applied'] !== false;
      const reason = str(ret['reason']);
      return {
        kind: 'apply-result',
        minion,
        jid,
        ok,
        changed: ret['changed'] === true,
        needFull: ret['need_full'] === true,
        retcode,
        reason: reason !== undefined ? shorten(reason, 200) : ok ? '' : `retcode ${retcode ?? 'missing'}`,
      };
    }
    return {
      kind: 'apply-result',
      minion,
      jid,
      ok: false,
      changed: false,
      needFull: false,
      retcode,
      reason: typeof ret === 'string' ? firstLine(ret) : `unexpected return (${ret === null ? 'null' : typeof ret})`,
    };
  }

  m = NEW_TAG.exec(tag);
  if (m !== null) {
    if (forwarded) return dropped('forwarded', tag, `forwarded by minion ${shorten(String(d['id']), 60)}`);
    if (d['fun'] !== APPLY_FUN) return undefined;
    const jid = m[1] ?? '';
    if (!JID.test(jid) || (d['jid'] !== undefined && d['jid'] !== jid)) return dropped('bad-jid', tag, "job id missing, malformed or not the tag's");
    const payload = payloadFromArgs(d['arg']);
    const cluster = str(payload?.['cluster']);
    const generation = int(payload?.['generation']);
    // Without the payload's cluster and generation the job cannot be tied to a publication.
    if (payload === undefined || cluster === undefined || generation === undefined) return undefined;
    const { ids, invalid, overCap } = targetedIds(d);
    return {
      kind: 'apply-started',
      jid,
      minions: ids,
      invalidIds: invalid,
      overCap,
      payload,
      cluster,
      generation,
      digest: str(payload['digest']),
    };
  }

  m = START_TAG.exec(tag);
  if (m !== null) {
    // A minion forwards its own start; the master set `id` to the sender. Any other claim is dropped.
    const minion = checkedId(tag, m[1] ?? '', d['id']);
    return typeof minion === 'string' ? { kind: 'minion-start', minion } : minion;
  }

  if (tag.startsWith(TAG_PREFIX) && tag.endsWith('/nodes')) {
    if (forwarded) return dropped('forwarded', tag, `forwarded by minion ${shorten(String(d['id']), 60)}`);
    const cluster = tag.slice(TAG_PREFIX.length, -'/nodes'.length);
    if (!CLUSTER_NAME.test(cluster)) return dropped('bad-cluster', tag, 'the tag does not name a valid cluster');
    return { kind: 'published', cluster, payload: d, generation: int(d['generation']) };
  }
  return undefined;
}

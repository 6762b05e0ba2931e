// What a bus event means to the bridge. Pure: no I/O, no clock, no logger.
//
// Shapes verified on Salt 3007.13 (fixtures in test/unit/salt-fixtures.ts):
// - salt/job/<jid>/new: {jid, fun, arg, tgt, tgt_type, minions, missing, user}; when the reactor
//   passes `kwarg: {payload: ...}`, arg is [{"__kwarg__": true, "payload": {...}}].
// - salt/job/<jid>/ret/<minion>: {id, jid, fun, fun_args, return, retcode, success}. A failing
//   function has success false and retcode != 0; an exception or a missing function has a string
//   `return`. `success` alone is not enough: retcode decides.
// - salt/minion/<id>/start: {id, ...}.
// - our own event: kube-salt-bridge/cluster/<c>/nodes with the payload (+ `_stamp`).

import type { BusEvent } from '../seams.ts';

export const APPLY_FUN = 'kube_allowlist.apply';
export const TAG_PREFIX = 'kube-salt-bridge/cluster/';

export interface ApplyResult {
  readonly kind: 'apply-result';
  readonly minion: string;
  readonly jid: string;
  readonly cluster: string | undefined;
  readonly generation: number | undefined;
  readonly digest: string | undefined;
  /** retcode 0, success not false, and a dict return that does not say applied: false. */
  readonly ok: boolean;
  /** The module's `changed` (false when the return has none). */
  readonly changed: boolean;
  readonly retcode: number | undefined;
  /** The module's reason, or the first line of a string return (exception, missing module). */
  readonly reason: string;
}

export interface ApplyStarted {
  readonly kind: 'apply-started';
  readonly jid: string;
  /** Minions the master expects to answer. */
  readonly minions: string[];
  /** Targeted minions that are not connected (from the list target form). */
  readonly missing: string[];
  readonly cluster: string;
  readonly generation: number;
}

export interface MinionStart {
  readonly kind: 'minion-start';
  readonly minion: string;
}

export interface Published {
  readonly kind: 'published';
  readonly cluster: string;
  readonly generation: number | undefined;
  readonly digest: string | undefined;
}

export type BridgeBusEvent = ApplyResult | ApplyStarted | MinionStart | Published;

const RET_TAG = /^salt\/job\/([0-9]+)\/ret\/(.+)$/;
const NEW_TAG = /^salt\/job\/([0-9]+)\/new$/;
const START_TAG = /^salt\/minion\/(.+)\/start$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}
function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
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
  const line = s.trim().split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

export function interpretBusEvent(e: BusEvent): BridgeBusEvent | undefined {
  const d = e.data;
  let m = RET_TAG.exec(e.tag);
  if (m !== null) {
    if (d['fun'] !== APPLY_FUN) return undefined;
    const jid = m[1] ?? '';
    const minion = str(d['id']) ?? m[2] ?? '';
    const ret = d['return'];
    const retcode = int(d['retcode']);
    const sent = payloadFromArgs(d['fun_args']);
    if (isRecord(ret)) {
      const ok = retcode === 0 && d['success'] !== false && ret['applied'] !== false;
      return {
        kind: 'apply-result',
        minion,
        jid,
        cluster: str(ret['cluster']) ?? str(sent?.['cluster']),
        generation: int(ret['generation']) ?? int(sent?.['generation']),
        digest: str(ret['digest']) ?? str(sent?.['digest']),
        ok,
        changed: ret['changed'] === true,
        retcode,
        reason: str(ret['reason']) ?? (ok ? '' : `retcode ${retcode ?? 'missing'}`),
      };
    }
    return {
      kind: 'apply-result',
      minion,
      jid,
      cluster: str(sent?.['cluster']),
      generation: int(sent?.['generation']),
      digest: str(sent?.['digest']),
      ok: false,
      changed: false,
      retcode,
      reason: typeof ret === 'string' ? firstLine(ret) : `unexpected return (${ret === null ? 'null' : typeof ret})`,
    };
  }
  m = NEW_TAG.exec(e.tag);
  if (m !== null) {
    if (d['fun'] !== APPLY_FUN) return undefined;
    const sent = payloadFromArgs(d['arg']);
    const cluster = str(sent?.['cluster']);
    const generation = int(sent?.['generation']);
    // Without the payload's cluster and generation the job cannot be tied to a publication.
    if (cluster === undefined || generation === undefined) return undefined;
    return {
      kind: 'apply-started',
      jid: m[1] ?? '',
      minions: strings(d['minions']),
      missing: strings(d['missing']),
      cluster,
      generation,
    };
  }
  m = START_TAG.exec(e.tag);
  if (m !== null) {
    return { kind: 'minion-start', minion: str(d['id']) ?? m[1] ?? '' };
  }
  if (e.tag.startsWith(TAG_PREFIX) && e.tag.endsWith('/nodes')) {
    const cluster = e.tag.slice(TAG_PREFIX.length, -'/nodes'.length);
    if (cluster === '' || cluster.includes('/')) return undefined;
    return { kind: 'published', cluster, generation: int(d['generation']), digest: str(d['digest']) };
  }
  return undefined;
}

// What happened, in order: the master bus events the harness received (with their receive time)
// merged with the bridge's own log lines, one short line each. Real-stack files print it when a
// test failed (printTimelineOnFailure(...)), so that a slow or missing apply explains itself:
// which job went out when, which minion answered what, what the bridge fired, ignored or re-sent.
import { afterEach, beforeEach } from 'node:test';
import type { BusEvent } from './salt.ts';
import { tail } from './proc.ts';

type Rec = Record<string, unknown>;

const isRec = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);
const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s);
/** A field's value as text: a string as it is, anything else as JSON ('' when absent). */
const text = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
const ids = (v: unknown, max = 6): string => {
  if (!Array.isArray(v)) return '-';
  const shown = v.slice(0, max).map(String).join(',');
  return v.length > max ? `[${shown},+${v.length - max}]` : `[${shown}]`;
};
const count = (v: unknown) => (Array.isArray(v) ? v.length : '-');

/** The payload kwarg of a kube_allowlist.apply job (`arg: [{__kwarg__: true, payload}]`). */
function jobPayload(args: unknown): Rec | undefined {
  if (!Array.isArray(args)) return undefined;
  for (const a of args) if (isRec(a) && isRec(a['payload'])) return a['payload'];
  return undefined;
}

function payloadSummary(p: Rec): string {
  const gen = p['generation'];
  return `cluster=${String(p['cluster'])} gen=${String(gen)} ipv4=${count(p['ipv4'])} ipv6=${count(p['ipv6'])}${p['minions'] !== undefined ? ` hint=${ids(p['minions'])}` : ''}`;
}

/** One event as a short line: what matters of our own tags and Salt's job events, else cut JSON. */
export function describeEvent(e: Pick<BusEvent, 'tag' | 'data'>): string {
  const d = isRec(e.data) ? e.data : {};
  const fwd = d['cmd'] === '_minion_event' ? ` [forwarded by ${String(d['id'])}]` : '';
  if (/^kube-salt-bridge\/cluster\/[^/]+\/nodes$/.test(e.tag)) return `${payloadSummary(d)}${fwd}`;
  if (/^salt\/job\/[^/]+\/new$/.test(e.tag)) {
    const p = jobPayload(d['arg']);
    return `fun=${String(d['fun'])} tgt=${cut(String(d['tgt']), 80)} minions=${ids(d['minions'])} missing=${ids(d['missing'])}${p ? ` ${payloadSummary(p)}` : ''}${fwd}`;
  }
  if (/^salt\/job\/[^/]+\/ret\/[^/]+$/.test(e.tag)) {
    const r = d['return'];
    const what = isRec(r)
      ? `cluster=${String(r['cluster'])} gen=${String(r['generation'])} applied=${String(r['applied'])} changed=${String(r['changed'])} reason=${JSON.stringify(cut(text(r['reason']), 140))}`
      : `return=${JSON.stringify(cut(typeof r === 'string' ? r : (JSON.stringify(r) ?? 'undefined'), 140))}`;
    return `id=${String(d['id'])} fun=${String(d['fun'])} retcode=${String(d['retcode'])} ${what}${fwd}`;
  }
  if (/^salt\/run\/[^/]+\/(new|ret)$/.test(e.tag)) {
    const args = JSON.stringify(d['fun_args'] ?? null) ?? '';
    const tag = /"tag":"([^"]+)"/.exec(args)?.[1] ?? (Array.isArray(d['fun_args']) && typeof d['fun_args'][0] === 'string' ? d['fun_args'][0] : undefined);
    return `fun=${String(d['fun'])}${tag ? ` tag=${tag}` : ''}${'success' in d ? ` success=${String(d['success'])} return=${cut(JSON.stringify(d['return']) ?? '', 60)}` : ''}`;
  }
  if (/^salt\/minion\/[^/]+\/start$/.test(e.tag)) return `id=${String(d['id'])}${fwd}`;
  const { _stamp: _s, ...rest } = d;
  return cut(JSON.stringify(rest) ?? '', 160);
}

/** A bridge log line worth a timeline entry: what it fired, heard, ignored, held or re-sent. */
function describeLog(l: Rec): string | undefined {
  const msg = typeof l['msg'] === 'string' ? l['msg'] : undefined;
  if (msg === undefined || typeof l['level'] !== 'number' || l['level'] < 30) return undefined;
  const extra: string[] = [];
  for (const k of ['cluster', 'minion', 'jid', 'generation', 'reason', 'hold', 'bus', 'refusal', 'resend', 'minions', 'retryInMs']) {
    if (l[k] !== undefined) extra.push(`${k}=${cut(JSON.stringify(l[k]) ?? '', 120)}`);
  }
  const ev = isRec(l['event']) ? l['event'] : undefined;
  if (ev)
    extra.push(
      `event=${cut(JSON.stringify({ generation: ev['generation'], ipv4: ev['ipv4'], ipv6: ev['ipv6'], reason: ev['reason'], minions: ev['minions'] }), 160)}`,
    );
  if (isRec(l['err'])) extra.push(`err=${cut(text(l['err']['message']), 120)}`);
  return `${cut(msg, 120)}${extra.length ? ` ${extra.join(' ')}` : ''}`;
}

export interface TimelineSources {
  events?: readonly BusEvent[];
  /** Log lines of bridge processes (BridgeProc.logs), labelled by their index. */
  bridgeLogs?: ReadonlyArray<readonly Rec[]>;
  /** Time 0 of the relative column (default: the first entry). */
  origin?: number;
  /** Only entries at or after this time. */
  since?: number;
  /** At most this many lines, the last ones (default 400). */
  max?: number;
  /** Log files (the master's, a minion's) whose last lines are printed after the timeline. */
  files?: readonly string[];
}

/** The merged timeline as text: `+seconds  HH:MM:SS.mmm  source  tag  summary`, one line per entry. */
export function timeline(s: TimelineSources): string {
  const rows: Array<{ at: number; seq: number; line: string }> = [];
  let seq = 0;
  for (const e of s.events ?? []) rows.push({ at: e.at, seq: seq++, line: `bus     ${cut(e.tag, 70)}  ${describeEvent(e)}` });
  (s.bridgeLogs ?? []).forEach((logs, i) => {
    for (const l of logs) {
      const line = describeLog(l);
      if (line !== undefined && typeof l['time'] === 'number')
        rows.push({ at: l['time'], seq: seq++, line: `bridge${s.bridgeLogs!.length > 1 ? i : ' '}  ${line}` });
    }
  });
  const kept = rows.filter((r) => s.since === undefined || r.at >= s.since).sort((a, b) => a.at - b.at || a.seq - b.seq);
  const max = s.max ?? 400;
  const shown = kept.slice(-max);
  const origin = s.origin ?? shown[0]?.at ?? 0;
  const head = kept.length > shown.length ? [`(${kept.length - shown.length} earlier entries left out)`] : [];
  return [
    ...head,
    ...shown.map((r) => {
      const rel = ((r.at - origin) / 1000).toFixed(3);
      return `${rel.startsWith('-') ? rel : `+${rel}`}s  ${new Date(r.at).toISOString().slice(11, 23)}  ${r.line}`;
    }),
  ].join('\n');
}

/**
 * Registers beforeEach/afterEach hooks in the calling test file: when a test failed, prints the
 * timeline of what the sources hold at that moment (so the stack may start after the hooks are
 * registered) — for the first test everything since the file started (its `before` included),
 * for later ones the entries since the test began. KSB_TIMELINE=always prints it for every test.
 */
export function printTimelineOnFailure(sources: () => Omit<TimelineSources, 'since'>): void {
  let since: number | undefined;
  let first = true;
  beforeEach(() => {
    since = first ? undefined : Date.now();
    first = false;
  });
  afterEach((c) => {
    // TestContext.passed (Node >= 22.x runtime; not in the pinned @types/node yet).
    const t = c as unknown as { passed?: boolean; name: string };
    if (t.passed !== false && process.env.KSB_TIMELINE !== 'always') return;
    let text: string;
    try {
      const src = sources();
      text = timeline({ ...src, since });
      for (const f of src.files ?? []) text += `\n---- last lines of ${f} ----\n${tail(f, 40)}`;
    } catch (err) {
      text = `(no timeline: ${(err as Error).message})`;
    }
    process.stderr.write(
      `\n---- timeline of the ${t.passed === false ? 'failed ' : ''}test "${t.name}" (bus events and bridge log, receive times) ----\n${text}\n---- end of timeline ----\n`,
    );
  });
}

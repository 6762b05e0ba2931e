// `kube-salt-bridge status`: ask a running bridge's HTTP endpoint (`release` is in release.ts).
// Per cluster: nodes, generation, a held publish, the minions behind and those refusing its list;
// per minion: what it applied, its last result and a refusal it holds out with. --json prints the
// document as /status serves it.
import type { ClusterStatus } from '../controller/controller.ts';
import type { MinionClusterState } from '../controller/minions.ts';

export interface StatusDoc {
  active: boolean;
  dryRun: boolean;
  ready: string[];
  clusters: ClusterStatus[];
  minions: Array<{ cluster: string; minion: string } & MinionClusterState>;
}

/** The error for a request that got no answer: fetch's own message is only "fetch failed", the reason is its cause. */
export function unreachable(url: string, err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const why = e.cause instanceof Error ? String(e.cause) : e.message;
  return new Error(`cannot reach the bridge at ${new URL(url).origin} (${why}); is \`kube-salt-bridge run\` running with this config's http.listen?`, {
    cause: err,
  });
}

async function call<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw unreachable(url, err);
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as T };
  } catch {
    throw new Error(
      `${url} answered HTTP ${res.status} without JSON (${JSON.stringify(text.slice(0, 80))}); is this a kube-salt-bridge's http.listen address?`,
    );
  }
}

export async function fetchStatus(base: string): Promise<StatusDoc> {
  const r = await call<StatusDoc>(`${base}/status`);
  if (r.status !== 200) throw new Error(`bridge answered ${r.status} for /status`);
  return r.body;
}

/** Renders rows as an aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const ago = (iso: string | undefined, now: number) => (iso ? `${Math.max(0, Math.round((now - Date.parse(iso)) / 1000))}s ago` : '-');

/** `m1 shrink, m2 stale, +3`: the minions holding out against a cluster's list, and why. */
function refusing(c: ClusterStatus): string {
  const r = c.minionsRefusing ?? [];
  if (r.length === 0) return '-';
  return (
    r
      .slice(0, 3)
      .map((x) => `${x.minion} ${x.reason}`)
      .join(', ') + (r.length > 3 ? `, +${r.length - 3}` : '')
  );
}

/** A minion's last result; a refusal it holds says which check and since when. */
function result(m: StatusDoc['minions'][number], now: number): string {
  const r = m.refusal;
  if (r === undefined) return m.lastResult;
  const since = ago(new Date(r.since).toISOString(), now);
  if (m.lastResult === 'refused') return `refused: ${r.reason} (since ${since})`;
  if (m.lastResult === 'stale') return `stale (since ${since})`;
  return `${m.lastResult}; holds out: ${r.reason} at ${r.generation}`;
}

export function formatStatus(s: StatusDoc, now = Date.now()): string {
  const head = `bridge: ${s.active ? 'publishing' : 'standby (not leader)'}${s.dryRun ? ' [dry run]' : ''}; ${s.ready.length ? `not ready: ${s.ready.join('; ')}` : 'ready'}\n\n`;
  const clusters = table(
    ['CLUSTER', 'SYNCED', 'NODES', 'PENDING', 'IPV4', 'IPV6', 'GENERATION', 'LAST PUBLISH', 'HELD', 'BEHIND', 'REFUSED BY', 'ERROR'],
    s.clusters.map((c) => [
      c.cluster,
      c.synced ? 'yes' : 'no',
      String(c.nodes),
      String(c.pending.length),
      String(c.ipv4),
      String(c.ipv6),
      c.generation === undefined ? '-' : String(c.generation),
      ago(c.lastPublishAt, now),
      c.held ? `${c.held.reasons.join(',')} ${c.held.digest.slice(0, 19)}` : '-',
      c.minionsBehind.join(',') || '-',
      refusing(c),
      c.lastError?.code ?? '-',
    ]),
  );
  const current = new Map(s.clusters.map((c) => [c.cluster, c.generation]));
  const minions =
    s.minions.length === 0
      ? '(no minion has answered yet)\n'
      : table(
          ['MINION', 'CLUSTER', 'APPLIED GENERATION', 'RESULT', 'LAG', 'LAST SEEN', 'REASON'],
          s.minions.map((m) => {
            const cur = current.get(m.cluster);
            const behind = cur !== undefined && (m.appliedGeneration ?? 0) < cur;
            return [
              m.minion,
              m.cluster,
              m.appliedGeneration === undefined ? '-' : String(m.appliedGeneration),
              result(m, now),
              behind ? `behind (current ${cur})` : 'current',
              m.lastSeenAt ? ago(new Date(m.lastSeenAt).toISOString(), now) : '-',
              m.reason || '-',
            ];
          }),
        );
  return head + clusters + '\n' + minions;
}

// Part 4b: bursts on the real stack (run by bench/e2e.ts with its bridge and minions). N Node
// creations as fast as the kube-apiserver takes them (a few requests in flight), then N
// deletions, with the bridge's and the minions' shrink guard allowing the scale-down. Measured
// from the bus: the first event after the first API call, how many full publishes and re-sends
// went out, and when each minion and every minion had returned the apply of the final list after
// the last call.
import { loadavg } from 'node:os';
import type { KubeCluster } from '../test/harness/kube.ts';
import type { SaltStack, BusEvent } from '../test/harness/salt.ts';

export interface BurstPhase {
  nodes: number;
  /** ms from the start of the first API call to the end of the last. */
  apiMs: number;
  /** ms from the start of the first API call to its end (a creation is POST + status PATCH: the address comes with the PATCH). */
  firstCallMs: number;
  /** ms from the start of the first API call to the issued_at of the first event: when the bridge signed it. */
  firstSignedMs: number;
  /** ms from the start of the first API call to Salt's _stamp of the first event: when the master fired it. */
  firstFiredMs: number;
  /** ms from the start of the first API call to the first event of the cluster seen on the bus. */
  firstEventMs: number;
  /** Full publishes (events without a `minions` hint) from the first call until the final list. */
  events: number;
  /** Targeted re-sends in the same span. */
  resends: number;
  /** ms from the end of the last API call to the final list's event on the bus. */
  finalEventAfterLastMs: number;
  /** ms from the end of the last API call until every minion returned the apply of the final list. */
  allAppliedAfterLastMs: number;
  /** The same per minion: its apply return of the final list, ms after the last call. */
  appliedAfterLastMs: Array<{ minion: string; ms: number }>;
  /** Entries in the final list. */
  finalEntries: number;
  loadavgAtStart: number[];
}

export interface BurstResult {
  nodes: number;
  concurrency: number;
  minions: number;
  create: BurstPhase;
  delete: BurstPhase;
}

const round = (v: number[]) => v.map((l) => Math.round(l * 100) / 100);
/** Salt's _stamp ("2026-11-22T10:00:00.123456", UTC) → performance.now() scale. */
const stampToPerf = (stamp: unknown): number => (typeof stamp === 'string' ? Date.parse(`${stamp.slice(0, 23)}Z`) - performance.timeOrigin : Number.NaN);
const now = () => performance.now();

/** Runs `fn` over `items` with at most `concurrency` in flight. */
async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** The address of burst node i: 10.60.x.y, outside the lab (the list only has to hold it). */
export const burstIp = (i: number) => `10.60.${(i >> 8) & 255}.${i & 255}`;

async function phase(
  o: { kube: KubeCluster; salt: SaltStack; tag: string; minions: string[]; nodes: number; concurrency: number; timeoutMs: number },
  call: (i: number) => Promise<unknown>,
  isFinal: (ipv4: string[]) => boolean,
): Promise<BurstPhase> {
  // A publish is the full form (ipv4/ipv6 lists) or, for a long list, the delta form (added/removed
  // against base_digest): the list an event leaves is replayed from every event of the tag so far.
  const held = new Map<BusEvent, string[]>();
  let list = new Set<string>();
  const listAfter = (e: BusEvent): string[] | undefined => {
    if (held.has(e)) return held.get(e);
    for (const x of salt.events) {
      if (x.tag !== o.tag || x.data.minions !== undefined || held.has(x)) continue;
      if (Array.isArray(x.data.ipv4)) list = new Set([...(x.data.ipv4 as string[]), ...((x.data.ipv6 as string[] | undefined) ?? [])]);
      else if (typeof x.data.base_digest === 'string' && x.data.base_digest !== x.data.digest) {
        for (const r of (x.data.removed as string[] | undefined) ?? []) list.delete(r);
        for (const a of (x.data.added as string[] | undefined) ?? []) list.add(a);
      }
      held.set(x, [...list]);
      if (x === e) break;
    }
    return held.get(e);
  };
  const v4 = (l: string[]) => l.filter((a) => !a.includes(':'));
  const { salt } = o;
  const from = salt.events.length;
  const load = round(loadavg());
  const t0 = now();
  const firstEvent = salt
    .waitForEvent('the first event of the burst', (e) => salt.events.indexOf(e) >= from && e.tag === o.tag, o.timeoutMs)
    .then((e) => ({ e, at: now() }));
  const finalEvent = salt.waitForEvent(
    'the final list',
    (e) => {
      if (e.tag !== o.tag || e.data.minions !== undefined) return false;
      const l = listAfter(e);
      return salt.events.indexOf(e) >= from && l !== undefined && isFinal(v4(l));
    },
    o.timeoutMs,
  );
  firstEvent.catch(() => undefined);
  finalEvent.catch(() => undefined);
  let firstCallEnd = Number.NaN;
  await pool(
    Array.from({ length: o.nodes }, (_, i) => i),
    o.concurrency,
    async (i) => {
      await call(i);
      if (i === 0) firstCallEnd = now();
    },
  );
  const tLast = now();
  const { e: firstE, at: first } = await firstEvent;
  const final = await finalEvent;
  const finalAt = now();
  const finalSeen = final.at - performance.timeOrigin;
  const gen = final.data.generation;
  const applied = (m: string) => (e: BusEvent) =>
    salt.events.indexOf(e) >= from &&
    e.tag.endsWith(`/ret/${m}`) &&
    e.data.fun === 'kube_allowlist.apply' &&
    (e.data.return as { generation?: unknown; applied?: unknown } | undefined)?.generation === gen &&
    (e.data.return as { applied?: unknown }).applied === true;
  const rets = await Promise.all(o.minions.map((m) => salt.waitForEvent(`${m} applied generation ${String(gen)}`, applied(m), o.timeoutMs)));
  const retAt = rets.map((e) => e.at - performance.timeOrigin);
  const lastRet = Math.max(...retAt);
  const upTo = salt.events.indexOf(final);
  const ours = salt.events.slice(from, upTo + 1).filter((e) => e.tag === o.tag);
  return {
    nodes: o.nodes,
    apiMs: tLast - t0,
    firstCallMs: firstCallEnd - t0,
    firstSignedMs: Date.parse(String(firstE.data.issued_at)) - performance.timeOrigin - t0,
    firstFiredMs: stampToPerf(firstE.data._stamp) - t0,
    firstEventMs: first - t0,
    events: ours.filter((e) => e.data.minions === undefined).length,
    resends: ours.filter((e) => e.data.minions !== undefined).length,
    finalEventAfterLastMs: Math.max(0, Math.min(finalSeen, finalAt) - tLast),
    allAppliedAfterLastMs: Math.max(0, lastRet - tLast),
    appliedAfterLastMs: o.minions.map((m, k) => ({ minion: m, ms: Math.max(0, retAt[k]! - tLast) })),
    finalEntries: listAfter(final)?.length ?? Number.NaN,
    loadavgAtStart: load,
  };
}

/**
 * Creates `nodes` Nodes (`burst-<i>`, one InternalIP each), then deletes them, each as fast as
 * the apiserver answers with `concurrency` calls in flight. The bridge must allow the scale-down
 * (clusters[].safety.maxShrinkFraction: 1) and so must the minions (pillar max_shrink: 1).
 */
export async function benchBurst(o: {
  kube: KubeCluster;
  salt: SaltStack;
  cluster: string;
  minions: string[];
  nodes: number;
  concurrency?: number;
  log: (s: string) => void;
}): Promise<BurstResult> {
  const tag = `kube-salt-bridge/cluster/${o.cluster}/nodes`;
  const concurrency = o.concurrency ?? 8;
  const base = { kube: o.kube, salt: o.salt, tag, minions: o.minions, nodes: o.nodes, concurrency, timeoutMs: 300_000 };
  const ips = Array.from({ length: o.nodes }, (_, i) => burstIp(i));
  o.log(`burst: creating ${o.nodes} Nodes (${concurrency} calls in flight)`);
  const create = await phase(
    base,
    (i) => o.kube.createNode(`burst-${i}`, [{ type: 'InternalIP', address: burstIp(i) }]),
    (l) => {
      const have = new Set(l);
      return ips.every((ip) => have.has(ip));
    },
  );
  o.log(
    `  created in ${Math.round(create.apiMs)} ms; first event +${Math.round(create.firstEventMs)} ms; ${create.events} publishes, ${create.resends} re-sends; every minion applied ${Math.round(create.allAppliedAfterLastMs)} ms after the last create (${create.appliedAfterLastMs.map((x) => `${x.minion} ${Math.round(x.ms)}`).join(', ')})`,
  );
  o.log(`burst: deleting them`);
  const del = await phase(
    base,
    (i) => o.kube.deleteNode(`burst-${i}`),
    (l) => {
      const have = new Set(l);
      return ips.every((ip) => !have.has(ip));
    },
  );
  o.log(
    `  deleted in ${Math.round(del.apiMs)} ms; first event +${Math.round(del.firstEventMs)} ms; ${del.events} publishes, ${del.resends} re-sends; every minion applied ${Math.round(del.allAppliedAfterLastMs)} ms after the last delete (${del.appliedAfterLastMs.map((x) => `${x.minion} ${Math.round(x.ms)}`).join(', ')})`,
  );
  return { nodes: o.nodes, concurrency, minions: o.minions.length, create, delete: del };
}

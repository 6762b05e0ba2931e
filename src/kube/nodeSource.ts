// NodeSource (seams.ts) on top of the Reflector: keeps per node only what can change an allow-list
// (name, status.addresses, spec.podCIDRs) and notifies only when that changed, a node came or went,
// or the sync state flipped. Heartbeats, conditions, images, labels, annotations are noise.

import type { Logger } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterView, Clock, NodeInfo, NodeSource } from '../seams.ts';
import { systemClock } from '../util/clock.ts';
import { createClientNodeApi } from './clientNodeApi.ts';
import type { KubeError } from './errors.ts';
import type { KubeNode, NodeApi } from './nodeApi.ts';
import { Reflector, type ReflectorOptions, type ReflectorPhase, type ReflectorStats } from './reflector.ts';

export interface KubeNodeSourceOptions extends Omit<ReflectorOptions, 'api' | 'handler' | 'clock' | 'logger'> {
  cluster: string;
  api: NodeApi;
  clock?: Clock;
  logger?: Logger;
}

export interface KubeNodeSourceStats extends ReflectorStats {
  synced: boolean;
  nodes: number;
  /** onChange notifications sent. */
  changes: number;
  /** Watch events/relists that changed nothing relevant (heartbeats etc.). */
  ignoredUpdates: number;
  phase: ReflectorPhase;
}

export class KubeNodeSource implements NodeSource {
  readonly cluster: string;
  private readonly reflector: Reflector;
  private readonly log: Logger | undefined;
  private nodes = new Map<string, NodeInfo>();
  private synced = false;
  private snapshot: ClusterView | null = null;
  private readonly listeners = new Set<() => void>();
  private changes = 0;
  private ignored = 0;
  private syncWaiters: Array<() => void> = [];

  constructor(options: KubeNodeSourceOptions) {
    this.cluster = options.cluster;
    this.log = options.logger?.child({ component: 'kube', cluster: options.cluster });
    const { cluster: _c, api, clock, logger: _l, ...rest } = options;
    this.reflector = new Reflector({
      ...rest,
      api,
      clock: clock ?? systemClock,
      logger: this.log,
      handler: {
        replace: (items) => this.replace(items),
        apply: (type, node) => this.apply(type, node),
        unreachable: (err) => this.unreachable(err),
      },
    });
  }

  view(): ClusterView {
    if (!this.snapshot) {
      this.snapshot = Object.freeze({ cluster: this.cluster, synced: this.synced, nodes: new Map(this.nodes) });
    }
    return this.snapshot;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts list+watch; resolves at once (use whenSynced() to wait for the first list). */
  start(): Promise<void> {
    this.reflector.start();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.reflector.stop();
    return Promise.resolve();
  }

  /** Resolves once the first full list (or the next one after an outage) has been applied. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  stats(): Readonly<KubeNodeSourceStats> {
    return {
      ...this.reflector.stats(),
      synced: this.synced,
      nodes: this.nodes.size,
      changes: this.changes,
      ignoredUpdates: this.ignored,
      phase: this.reflector.state(),
    };
  }

  // ---- reflector handler ----

  private replace(items: KubeNode[]): void {
    const next = new Map<string, NodeInfo>();
    for (const n of items) {
      const info = toNodeInfo(n);
      if (info) next.set(info.name, info);
    }
    const wasSynced = this.synced;
    const differs = !sameNodes(this.nodes, next);
    this.nodes = next;
    this.synced = true;
    this.snapshot = null;
    if (!wasSynced) this.log?.info({ kube: { nodes: next.size } }, 'node list synced');
    if (differs || !wasSynced) this.notify();
    else this.ignored++;
    if (!wasSynced) for (const w of this.syncWaiters.splice(0)) w();
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', node: KubeNode): void {
    const info = toNodeInfo(node);
    if (!info) return;
    const old = this.nodes.get(info.name);
    if (type === 'DELETED') {
      if (!old) return void this.ignored++;
      this.nodes.delete(info.name);
      this.snapshot = null;
      return this.notifyIfSynced();
    }
    if (old && sameInfo(old, info)) {
      if (!sameOrder(old, info)) {
        this.nodes.set(info.name, info); // keep Kubernetes' order, but it changes no allow-list
        this.snapshot = null;
      }
      return void this.ignored++;
    }
    this.nodes.set(info.name, info);
    this.snapshot = null;
    this.notifyIfSynced();
  }

  private notifyIfSynced(): void {
    // While unknown, view().nodes is meaningless and never published: only the flip notifies.
    if (this.synced) this.notify();
  }

  private unreachable(err: KubeError): void {
    if (!this.synced) return;
    this.synced = false;
    this.snapshot = null;
    this.log?.warn({ err }, 'cluster unreachable: node set is unknown');
    this.notify();
  }

  private notify(): void {
    this.changes++;
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (err) {
        this.log?.error({ err }, 'onChange listener threw');
      }
    }
  }
}

/** Extracts what can change an allow-list; null for an object without a name. */
export function toNodeInfo(n: KubeNode): NodeInfo | null {
  const name = n?.metadata?.name;
  if (!name) return null;
  const addresses = (n.status?.addresses ?? [])
    .filter((a) => typeof a?.address === 'string' && a.address !== '')
    .map((a) => Object.freeze({ type: String(a.type ?? ''), address: a.address as string }));
  const spec = n.spec ?? {};
  const podCIDRs = spec.podCIDRs && spec.podCIDRs.length > 0 ? [...spec.podCIDRs] : spec.podCIDR ? [spec.podCIDR] : [];
  return Object.freeze({ name, addresses: Object.freeze(addresses), podCIDRs: Object.freeze(podCIDRs) });
}

function key(info: NodeInfo): string {
  const a = info.addresses.map((x) => `${x.type}\u0000${x.address}`).sort();
  const p = [...info.podCIDRs].sort();
  return JSON.stringify([a, p]);
}

/** Same addresses and pod CIDRs, order ignored (order changes no allow-list). */
export function sameInfo(a: NodeInfo, b: NodeInfo): boolean {
  return a.name === b.name && key(a) === key(b);
}

function sameOrder(a: NodeInfo, b: NodeInfo): boolean {
  return JSON.stringify([a.addresses, a.podCIDRs]) === JSON.stringify([b.addresses, b.podCIDRs]);
}

function sameNodes(a: ReadonlyMap<string, NodeInfo>, b: ReadonlyMap<string, NodeInfo>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, info] of a) {
    const other = b.get(name);
    if (!other || !sameInfo(info, other)) return false;
  }
  return true;
}

export interface CreateKubeNodeSourceOptions extends Omit<KubeNodeSourceOptions, 'api'> {
  kubeConfig: KubeConfig;
}

/** The production wiring: a KubeNodeSource on client-node for one cluster's KubeConfig. */
export function createKubeNodeSource(options: CreateKubeNodeSourceOptions): KubeNodeSource {
  const { kubeConfig, ...rest } = options;
  const watchdogMs = rest.watchdogMs ?? 150_000;
  const api = createClientNodeApi(kubeConfig, { label: rest.cluster, watchInactivityMs: watchdogMs + 30_000 });
  return new KubeNodeSource({ ...rest, api });
}

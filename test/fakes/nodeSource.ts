// An in-memory NodeSource for unit tests.
import type { ClusterView, NodeInfo, NodeSource } from '../../src/seams.ts';

export class FakeNodeSource implements NodeSource {
  readonly cluster: string;
  private nodes = new Map<string, NodeInfo>();
  private synced = false;
  private listeners = new Set<() => void>();

  constructor(cluster: string) {
    this.cluster = cluster;
  }

  view(): ClusterView {
    return { cluster: this.cluster, synced: this.synced, nodes: new Map(this.nodes) };
  }

  onChange(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  private emit(): void {
    for (const l of this.listeners) l();
  }

  setSynced(synced: boolean): void {
    this.synced = synced;
    this.emit();
  }

  /** Adds or replaces a node with InternalIP addresses. */
  put(name: string, ...ips: string[]): void {
    this.nodes.set(name, { name, addresses: ips.map((address) => ({ type: 'InternalIP', address })), podCIDRs: [] });
    this.emit();
  }

  remove(name: string): void {
    this.nodes.delete(name);
    this.emit();
  }
}

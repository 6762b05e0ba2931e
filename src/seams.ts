// The narrow seams between components (CONTRIBUTING.md habit 3). Each has one real adapter and one
// in-memory fake (test/fakes) for unit tests. Nothing here does I/O.

export type Family = 'ipv4' | 'ipv6';

/** What the bridge keeps of one Node: only the fields that can change an allow-list. */
export interface NodeInfo {
  readonly name: string;
  /** status.addresses, as reported (type + address), in the order Kubernetes gave them. */
  readonly addresses: ReadonlyArray<{ readonly type: string; readonly address: string }>;
  /** spec.podCIDRs (or spec.podCIDR), as reported. */
  readonly podCIDRs: readonly string[];
}

/** A cluster is "unknown" until its first full list succeeded, and again while unreachable. */
export interface ClusterView {
  readonly cluster: string;
  readonly synced: boolean;
  /** Node name → info; meaningless (and never published) while !synced. */
  readonly nodes: ReadonlyMap<string, NodeInfo>;
}

/** src/kube: "what exists" and "tell me when it changed" (external-dns source.go). */
export interface NodeSource {
  readonly cluster: string;
  view(): ClusterView;
  /** Called only when a node's addresses/podCIDRs changed, a node came or went, or sync state flipped. */
  onChange(listener: () => void): () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The signed event body (version 2) in its full form: the whole list; see docs/event-contract.md. */
export interface AllowListPayload {
  version: 2;
  cluster: string;
  generation: number;
  digest: string;
  ipv4: string[];
  ipv6: string[];
  added: string[];
  removed: string[];
  added_truncated?: boolean;
  removed_truncated?: boolean;
  nodes: number;
  issued_at: string;
  /** 16 hex digits naming the bridge's Ed25519 key (first 8 bytes of SHA-256 of the public key). */
  key_id: string;
  /** `ed25519:` + base64 of the signature over the canonical form of the keys above. */
  signature: string;
  /** Unsigned routing hint of a targeted re-send: the reactor narrows its target to these ids. */
  minions?: string[];
}

/**
 * The delta form (docs/event-contract.md, "Delta form"): only the change from the list whose digest
 * is `base_digest` to the list whose digest is `digest`, complete (never truncated), and no lists.
 * A check form is a delta with `base_digest` equal to `digest` and nothing added or removed.
 */
export interface DeltaPayload {
  version: 2;
  cluster: string;
  generation: number;
  digest: string;
  base_digest: string;
  added: string[];
  removed: string[];
  nodes: number;
  issued_at: string;
  key_id: string;
  signature: string;
  minions?: string[];
}

/** What the bridge fires: either form. */
export type EventPayload = AllowListPayload | DeltaPayload;

/** src/salt: fire one event on the master bus. */
export interface EventSink {
  fire(tag: string, data: EventPayload): Promise<void>;
}

/** One event from the master bus, as salt-api streams it. */
export interface BusEvent {
  readonly tag: string;
  readonly data: Record<string, unknown>;
}

/** src/salt: the master event bus, read through salt-api. */
export interface EventStream {
  onEvent(listener: (event: BusEvent) => void): () => void;
  /** 'open' after (re)connecting, 'closed' when the stream dropped (it reconnects by itself). */
  onState(listener: (state: 'open' | 'closed') => void): () => void;
  /** The transport of the open connection: `ws` loses events that arrive back to back. */
  readonly transport?: 'sse' | 'ws' | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Injected time (habit 7). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

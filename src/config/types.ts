// The validated, deeply frozen configuration. Produced only by loadConfig (load.ts).

import type { Signer } from '../plan/index.ts';
import type { Family } from '../seams.ts';
import type { Secret } from './secret.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type EventStreamMode = 'ws' | 'sse' | 'auto';
export type NodeAddressType = 'InternalIP' | 'ExternalIP';

export interface SaltConfig {
  /** Base URL of salt-api, without trailing slash. */
  readonly url: string;
  readonly username: string;
  readonly password: Secret;
  readonly eauth: string;
  /** Absolute path of a PEM bundle to verify salt-api's certificate, if set. */
  readonly caFile: string | undefined;
  readonly insecureSkipVerify: boolean;
  readonly timeoutMs: number;
  readonly eventStream: EventStreamMode;
  /** rest_tornado base URL for the websocket event stream (rest_cherrypy's /ws needs ws4py). */
  readonly websocketUrl: string | undefined;
}

export interface SigningConfig {
  /**
   * The bridge's Ed25519 key (from signing.keyFile or KSB_SIGNING_KEY). Like a Secret it never
   * shows its private part: JSON, inspect and template strings print only the key id and public key.
   */
  readonly signer: Signer;
}

export type ClusterSource = { readonly kind: 'kubeconfig'; readonly kubeconfig: string; readonly context: string | undefined } | { readonly kind: 'inCluster' };

export interface SafetyConfig {
  readonly allowEmpty: boolean;
  readonly maxShrinkFraction: number;
  readonly minNodes: number;
}

export interface WatchConfig {
  readonly timeoutSeconds: number;
  readonly relistIntervalSeconds: number;
  readonly watchdogSeconds: number;
  /** Nodes per list page (the list's `limit`). */
  readonly listPageSize: number;
}

export interface ClusterConfig {
  readonly name: string;
  readonly source: ClusterSource;
  readonly labelSelector: string | undefined;
  readonly addressTypes: readonly NodeAddressType[];
  readonly families: readonly Family[];
  readonly podCIDRs: boolean;
  /** Canonical (src/plan canonicalEntry), unique, sorted. */
  readonly extraEntries: readonly string[];
  /** Distinct host addresses a node may contribute per family; a node with more is left out. */
  readonly maxAddressesPerNode: number;
  /** When set: canonical networks (sorted) that node addresses and pod CIDRs must lie in. */
  readonly allowedNetworks: readonly string[] | undefined;
  readonly safety: SafetyConfig;
  readonly watch: WatchConfig;
}

export interface HttpConfig {
  readonly listen: string;
  readonly host: string;
  readonly port: number;
  /** Bearer token for POST /release (http.tokenFile); without it /release is disabled. */
  readonly token: Secret | undefined;
  /** Host names (lower case, no port) accepted in the Host header besides IP literals and localhost. */
  readonly allowedHosts: readonly string[];
}

export interface PublishConfig {
  readonly minIntervalMs: number;
  readonly maxDelayMs: number;
  /** Periodic full republish; 0 disables. */
  readonly resyncIntervalSeconds: number;
  /** Fire a new generation as the delta form when it is smaller (docs/event-contract.md, "Delta form"). */
  readonly delta: boolean;
  /** Lists with fewer entries always travel in full. */
  readonly deltaMinEntries: number;
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
}

export interface LeaderElectionConfig {
  readonly enabled: boolean;
  /** Name of the cluster whose API hosts the Lease. */
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
}

export interface Config {
  /** Absolute path of the file this was loaded from. */
  readonly source: string;
  readonly salt: SaltConfig;
  readonly signing: SigningConfig;
  readonly clusters: readonly ClusterConfig[];
  readonly publish: PublishConfig;
  readonly state: { readonly dir: string };
  readonly http: HttpConfig;
  readonly leaderElection: LeaderElectionConfig;
  readonly log: { readonly level: LogLevel };
  /** Accepted but worth telling the operator (main.ts logs them), e.g. a world-readable secret file. */
  readonly warnings: readonly string[];
}

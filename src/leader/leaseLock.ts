// The Lease object as a lock: get / create / replace with resourceVersion (optimistic concurrency;
// a 409 Conflict means someone else wrote first). Real adapter on client-node CoordinationV1Api.
// client-node's index (the whole generated API, about 50 MiB of RSS) is imported on the first
// call, so that a bridge without leader election never loads it.

import type { KubeConfig, V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { translateKubeError } from '../kube/errors.ts';
import type { LeaseRecord, ObservedLease } from './decide.ts';

export interface LeaseLock {
  /** null when the Lease does not exist. */
  get(): Promise<ObservedLease | null>;
  /** Throws LeaseConflictError (409) when it already exists. */
  create(record: LeaseRecord): Promise<ObservedLease>;
  /** Throws LeaseConflictError (409) when resourceVersion is stale. */
  update(record: LeaseRecord, resourceVersion: string): Promise<ObservedLease>;
  /** namespace/name, for logs. */
  describe(): string;
}

export interface LeaseLockOptions {
  namespace: string;
  name: string;
  /** For messages, e.g. the cluster holding the lease. */
  label?: string;
}

type ClientNode = typeof import('@kubernetes/client-node');
let clientNode: Promise<ClientNode> | undefined;

export function createLeaseLock(kc: KubeConfig, options: LeaseLockOptions): LeaseLock {
  let loaded: Promise<{ api: InstanceType<ClientNode['CoordinationV1Api']>; Micro: ClientNode['V1MicroTime'] }> | undefined;
  const load = () =>
    (loaded ??= (clientNode ??= import('@kubernetes/client-node')).then((m) => ({ api: kc.makeApiClient(m.CoordinationV1Api), Micro: m.V1MicroTime })));
  const { namespace, name } = options;
  const what = (op: string) => `${options.label ? `cluster "${options.label}": ` : ''}${op} lease ${namespace}/${name}`;
  return {
    describe: () => `${namespace}/${name}`,
    async get() {
      try {
        const { api } = await load();
        return fromLease(await api.readNamespacedLease({ name, namespace }));
      } catch (err) {
        if ((err as { code?: unknown })?.code === 404) return null;
        throw translateKubeError(what('get'), err);
      }
    },
    async create(record) {
      try {
        const { api, Micro } = await load();
        return fromLease(await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: toSpec(record, Micro) } }));
      } catch (err) {
        throw translateKubeError(what('create'), err);
      }
    },
    async update(record, resourceVersion) {
      try {
        const { api, Micro } = await load();
        const body: V1Lease = { metadata: { name, namespace, resourceVersion }, spec: toSpec(record, Micro) };
        return fromLease(await api.replaceNamespacedLease({ name, namespace, body }));
      } catch (err) {
        throw translateKubeError(what('update'), err);
      }
    },
  };
}

// MicroTime must be serialised with 6 fractional digits; V1MicroTime.toISOString does that.
function toSpec(r: LeaseRecord, Micro: ClientNode['V1MicroTime']): V1Lease['spec'] {
  const micro = (iso: string | null): V1MicroTime | undefined => (iso ? new Micro(iso) : undefined);
  return {
    holderIdentity: r.holderIdentity,
    leaseDurationSeconds: r.leaseDurationSeconds,
    acquireTime: micro(r.acquireTime),
    renewTime: micro(r.renewTime),
    leaseTransitions: r.leaseTransitions,
  };
}

function timeString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString();
  return null;
}

export function fromLease(l: V1Lease): ObservedLease {
  const s = l.spec ?? {};
  return {
    resourceVersion: l.metadata?.resourceVersion ?? '',
    record: {
      holderIdentity: s.holderIdentity ?? '',
      leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
      acquireTime: timeString(s.acquireTime),
      renewTime: timeString(s.renewTime),
      leaseTransitions: s.leaseTransitions ?? 0,
    },
  };
}

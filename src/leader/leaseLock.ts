// The Lease object as a lock: get / create / replace with resourceVersion (optimistic concurrency;
// a 409 Conflict means someone else wrote first). Real adapter on client-node CoordinationV1Api.

import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
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

export function createLeaseLock(kc: KubeConfig, options: LeaseLockOptions): LeaseLock {
  const api = kc.makeApiClient(CoordinationV1Api);
  const { namespace, name } = options;
  const what = (op: string) => `${options.label ? `cluster "${options.label}": ` : ''}${op} lease ${namespace}/${name}`;
  return {
    describe: () => `${namespace}/${name}`,
    async get() {
      try {
        return fromLease(await api.readNamespacedLease({ name, namespace }));
      } catch (err) {
        if ((err as { code?: unknown })?.code === 404) return null;
        throw translateKubeError(what('get'), err);
      }
    },
    async create(record) {
      try {
        return fromLease(await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: toSpec(record) } }));
      } catch (err) {
        throw translateKubeError(what('create'), err);
      }
    },
    async update(record, resourceVersion) {
      try {
        const body: V1Lease = { metadata: { name, namespace, resourceVersion }, spec: toSpec(record) };
        return fromLease(await api.replaceNamespacedLease({ name, namespace, body }));
      } catch (err) {
        throw translateKubeError(what('update'), err);
      }
    },
  };
}

// MicroTime must be serialised with 6 fractional digits; V1MicroTime.toISOString does that.
function micro(iso: string | null): V1MicroTime | undefined {
  return iso ? new V1MicroTime(iso) : undefined;
}

function toSpec(r: LeaseRecord): V1Lease['spec'] {
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

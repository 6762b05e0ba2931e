// Kubernetes failures, translated at the boundary (CONTRIBUTING.md habit 4). Messages carry the
// cluster, the operation, the HTTP status and the apiserver's Status reason/message; never a token,
// a certificate, a kubeconfig snippet or request headers. No raw client-node error is attached as
// `cause` (ApiException messages embed response headers and bodies).

import { KsbError } from '../errors.ts';

/** Missing/invalid kubeconfig, unknown context, missing service account files, empty server. Fatal. */
export class KubeConfigError extends KsbError {
  constructor(message: string) {
    super('KSB_KUBE_CONFIG', message, { retryable: false });
  }
}

/** Network failure, timeout, 5xx, 429: the cluster could not be reached or did not answer. */
export class KubeUnreachableError extends KsbError {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super('KSB_KUBE_UNREACHABLE', message, { retryable: true });
    this.status = status;
  }
}

/** 401/403: credentials rejected or RBAC missing. Retried (tokens rotate, RBAC gets fixed) but loud. */
export class KubeForbiddenError extends KsbError {
  readonly status: number;
  constructor(message: string, status: number) {
    super('KSB_KUBE_FORBIDDEN', message, { retryable: true });
    this.status = status;
  }
}

/** 410 Gone / Expired: the resourceVersion (or continue token) is too old; relist. */
export class KubeGoneError extends KsbError {
  readonly status = 410;
  constructor(message: string) {
    super('KSB_KUBE_GONE', message, { retryable: true });
  }
}

/** Any other unexpected API answer (4xx other than the above, malformed responses). */
export class KubeApiError extends KsbError {
  readonly status: number | undefined;
  constructor(message: string, status?: number, retryable = false) {
    super('KSB_KUBE_API', message, { retryable });
    this.status = status;
  }
}

/**
 * One watch event line longer than the bound (src/kube watchStream.ts): the watch is aborted and
 * restarted through the reflector's backoff; what was known of the nodes stays.
 */
export class KubeWatchLineTooLongError extends KsbError {
  constructor(message: string) {
    super('KSB_KUBE_WATCH_LINE_TOO_LONG', message, { retryable: true });
  }
}

/** 409 on a Lease write: someone else changed the lease first (optimistic concurrency). */
export class LeaseConflictError extends KsbError {
  readonly status = 409;
  constructor(message: string) {
    super('KSB_LEADER_CONFLICT', message, { retryable: true });
  }
}

export type KubeError =
  KubeConfigError | KubeUnreachableError | KubeForbiddenError | KubeGoneError | KubeApiError | KubeWatchLineTooLongError | LeaseConflictError;

/** A Kubernetes `Status` object as found in error bodies and watch ERROR events. */
export interface KubeStatus {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

function asStatus(body: unknown): KubeStatus | undefined {
  let b = body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return undefined;
    }
  }
  if (b === null || typeof b !== 'object') return undefined;
  const o = b as Record<string, unknown>;
  return {
    kind: typeof o.kind === 'string' ? o.kind : undefined,
    code: typeof o.code === 'number' ? o.code : undefined,
    reason: typeof o.reason === 'string' ? o.reason : undefined,
    message: typeof o.message === 'string' ? o.message.slice(0, 500) : undefined,
  };
}

/** Builds the typed error for an HTTP status (from an ApiException, a failed watch, a Status event). */
export function errorForStatus(what: string, status: number, detail?: KubeStatus): KubeError {
  const reason = [detail?.reason, detail?.message].filter(Boolean).join(': ');
  const msg = `${what}: HTTP ${status}${reason ? ` (${reason})` : ''}`;
  if (status === 410) return new KubeGoneError(msg);
  if (status === 401 || status === 403) return new KubeForbiddenError(msg, status);
  if (status === 409) return new LeaseConflictError(msg);
  if (status === 429 || status >= 500) return new KubeUnreachableError(msg, status);
  return new KubeApiError(msg, status);
}

/** True for a watch ERROR event object / Status that means "resourceVersion too old". */
export function isGoneStatus(obj: unknown): boolean {
  const s = asStatus(obj);
  return s?.code === 410 || s?.reason === 'Expired' || s?.reason === 'Gone';
}

/**
 * Translates whatever client-node (or undici underneath) threw into a KubeError. `what` names the
 * operation and cluster, e.g. `cluster "prod": list nodes`.
 */
export function translateKubeError(what: string, err: unknown): KubeError {
  if (err instanceof KsbError) return err;
  if (err !== null && typeof err === 'object') {
    const e = err as Record<string, unknown>;
    // ApiException (generated API): { code: number, body }
    if (typeof e.code === 'number' && e.code >= 100 && e.code < 600) {
      return errorForStatus(what, e.code, asStatus(e.body));
    }
    // Watch: new Error(statusText) with statusCode
    if (typeof e.statusCode === 'number') return errorForStatus(what, e.statusCode);
    const name = typeof e.name === 'string' ? e.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') {
      return new KubeUnreachableError(`${what}: ${name === 'TimeoutError' ? 'timed out' : 'aborted'}`);
    }
    // undici: TypeError('fetch failed') with cause { code: 'ECONNREFUSED' | 'ENOTFOUND' | ... }
    const cause = e.cause as Record<string, unknown> | undefined;
    const code = (cause && typeof cause.code === 'string' && cause.code) || (typeof e.code === 'string' && e.code) || '';
    if (code) return new KubeUnreachableError(`${what}: ${code}`);
    if (name === 'TypeError' && e.message === 'fetch failed') {
      return new KubeUnreachableError(`${what}: fetch failed`);
    }
    // Auth/exec plugins throw plain errors whose messages may embed command output: keep them only
    // when they look harmless.
    const m = typeof e.message === 'string' ? safeMessage(e.message) : '';
    return new KubeUnreachableError(`${what}: ${name || 'Error'}${m ? `: ${m}` : ''}`);
  }
  return new KubeUnreachableError(`${what}: unknown failure`);
}

const SECRETISH = /bearer|token|password|secret|-----BEGIN|eyJ[A-Za-z0-9_-]{10,}|[A-Za-z0-9+/=_-]{40,}/i;

/** A third-party message, kept only if short and free of anything that looks like a credential. */
export function safeMessage(message: string): string {
  const first = message.split('\n', 1)[0] ?? '';
  if (SECRETISH.test(first)) return '';
  return first.slice(0, 200);
}

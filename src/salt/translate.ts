// The boundary between axios/Node errors and ours. An AxiosError carries the request config (the
// X-Auth-Token header, the login body with the password): it is never wrapped, logged or kept as
// a cause. Only its code, our own request label and a scrubbed message survive.

import { SaltError, SaltHttpError, SaltPayloadTooLargeError, SaltTimeoutError, SaltTlsError, SaltUnreachableError, type SaltFailureInfo } from './errors.ts';
import { scrub, serverText } from './scrub.ts';

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

const GENERIC_CODES = new Set(['ERR_NETWORK', 'ERR_BAD_REQUEST', 'ERR_BAD_RESPONSE', 'ERR_CANCELED']);

/** The most specific code of anything thrown (axios keeps the Node code in `code` or `cause.code`). */
function errorCode(err: unknown, depth = 0): string | undefined {
  if (err === null || typeof err !== 'object' || depth > 3) return undefined;
  const e = err as { code?: unknown; cause?: unknown };
  const own = typeof e.code === 'string' ? e.code : undefined;
  if (own === undefined || GENERIC_CODES.has(own)) {
    const inner = errorCode(e.cause, depth + 1);
    if (inner !== undefined) return inner;
  }
  return own;
}

function rawMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface TranslateContext {
  /** 'POST /' etc. */
  request: string;
  /** true when our own deadline fired (the abort then looks like ERR_CANCELED). */
  timedOut?: boolean;
  timeoutMs?: number;
  secrets: ReadonlyArray<string | undefined>;
}

/** Turns anything a request threw into a SaltError. SaltErrors pass through unchanged. */
export function translateError(err: unknown, ctx: TranslateContext): SaltError {
  if (err instanceof SaltError) return err;
  const code = errorCode(err);
  const info: SaltFailureInfo = code === undefined ? { request: ctx.request } : { request: ctx.request, code };
  if (ctx.timedOut === true || (code !== undefined && TIMEOUT_CODES.has(code))) {
    return new SaltTimeoutError(`salt-api ${ctx.request}: no response within ${ctx.timeoutMs ?? '?'} ms`, info);
  }
  if (code !== undefined && (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_'))) {
    return new SaltTlsError(`salt-api ${ctx.request}: TLS failure (${code}): ${scrub(rawMessage(err), ctx.secrets)}`, info);
  }
  const m = scrub(rawMessage(err), ctx.secrets);
  return new SaltUnreachableError(`salt-api ${ctx.request}: ${code ?? 'connection failed'}: ${m}`, info);
}

/** An HTTP status we did not expect, as an error. 401 is handled by the caller (re-login). */
export function statusError(status: number, body: unknown, ctx: TranslateContext): SaltError {
  const info: SaltFailureInfo = { request: ctx.request, status };
  const text = serverText(body, ctx.secrets);
  const suffix = text === '' ? '' : `: ${text}`;
  if (status === 413) {
    return new SaltPayloadTooLargeError(`salt-api ${ctx.request}: HTTP 413 request body too large${suffix}`, info);
  }
  return new SaltHttpError(`salt-api ${ctx.request}: HTTP ${status}${suffix}`, info);
}

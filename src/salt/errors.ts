// Typed salt-api errors with stable codes (CONTRIBUTING.md habit 4). Codes are never reused or
// renamed. Messages and causes carry no credential: translate.ts builds them from status codes,
// error codes and scrubbed server text only — never from an axios error's config or headers.

import { KsbError, type KsbErrorOptions } from '../errors.ts';

/** What is kept of a failed request: enough to debug, nothing secret. */
export interface SaltFailureInfo {
  /** e.g. 'POST /', 'GET /events', 'POST /login' — never a query string. */
  readonly request?: string;
  readonly status?: number;
  /** Node/axios error code, e.g. ECONNREFUSED, ERR_CANCELED, CERT_HAS_EXPIRED. */
  readonly code?: string;
}

export class SaltError extends KsbError {
  readonly info: SaltFailureInfo;
  constructor(code: string, message: string, info: SaltFailureInfo = {}, options: KsbErrorOptions = {}) {
    super(code, message, { retryable: options.retryable ?? false, cause: options.cause ?? { ...info } });
    this.info = info;
  }
}

/** POST /login refused the credentials (HTTP 401 from /login). Not retryable: fix the config. */
export class SaltAuthError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    super('KSB_SALT_AUTH', message, info, { retryable: false });
  }
}

/** A fresh token was refused for this call: the eauth ACL does not allow it (HTTP 401/403). */
export class SaltDeniedError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    super('KSB_SALT_DENIED', message, info, { retryable: false });
  }
}

/** No connection (refused, reset, DNS, socket hang up). */
export class SaltUnreachableError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    super('KSB_SALT_UNREACHABLE', message, info, { retryable: true });
  }
}

/** No answer within timeoutMs. */
export class SaltTimeoutError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    super('KSB_SALT_TIMEOUT', message, info, { retryable: true });
  }
}

/** An unexpected HTTP status; retryable for 5xx and 429. */
export class SaltHttpError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    const s = info.status ?? 0;
    super('KSB_SALT_HTTP', message, info, { retryable: s >= 500 || s === 429 });
  }
}

/** Certificate verification or handshake failed. Not retryable: fix the CA or the URL. */
export class SaltTlsError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    super('KSB_SALT_TLS', message, info, { retryable: false });
  }
}

/** The request body is over the configured limit (checked before sending) or the server said 413. */
export class SaltPayloadTooLargeError extends SaltError {
  readonly bytes: number | undefined;
  constructor(message: string, info: SaltFailureInfo = {}, bytes?: number) {
    super('KSB_SALT_PAYLOAD_TOO_LARGE', message, info, { retryable: false });
    this.bytes = bytes;
  }
}

/**
 * HTTP 200, but the runner did not do its job: salt-api reports runner failures (bad arguments, an
 * exception) as HTTP 200 with the usage text or traceback as the return value.
 */
export class SaltRunnerError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    super('KSB_SALT_RUNNER_FAILED', message, info, { retryable: false });
  }
}

/** The response was not what salt-api sends (not JSON, no `return`, no token). */
export class SaltProtocolError extends SaltError {
  constructor(message: string, info: SaltFailureInfo = {}) {
    super('KSB_SALT_PROTOCOL', message, info, { retryable: false });
  }
}

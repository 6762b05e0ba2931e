// Typed errors with stable codes (CONTRIBUTING.md habit 4). Codes are never reused or renamed:
// README.md lists them and test/unit/error-codes.test.ts fails if the two disagree.

export interface KsbErrorOptions {
  cause?: unknown;
  /** true when trying again later may succeed (network, 5xx, 429, timeouts). */
  retryable?: boolean;
}

export class KsbError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: KsbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Bad configuration: main.ts exits with code 2. `field` is the dotted path of the offending field. */
export class ConfigError extends KsbError {
  readonly field: string;
  constructor(field: string, message: string, options: KsbErrorOptions = {}) {
    super('KSB_CONFIG', `${field}: ${message}`, options);
    this.field = field;
  }
}

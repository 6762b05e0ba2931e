// Public entry point of src/salt (CONTRIBUTING.md habit 6): import from here, not from the files.

export { SaltApiClient, type SaltApiClientOptions, type SaltPing, type SaltSessionInfo } from './client.ts';
export { SaltEventStream, createEventStream, type SaltEventStreamOptions, type EventStreamMode, type Transport } from './stream.ts';
export {
  interpretBusEvent,
  interpretBusEvent as interpret,
  payloadFromArgs,
  APPLY_FUN,
  type BridgeBusEvent,
  type ApplyResult,
  type ApplyStarted,
  type MinionStart,
  type Published,
} from './interpret.ts';
export {
  SaltError,
  SaltAuthError,
  SaltDeniedError,
  SaltUnreachableError,
  SaltTimeoutError,
  SaltHttpError,
  SaltTlsError,
  SaltPayloadTooLargeError,
  SaltRunnerError,
  SaltProtocolError,
  type SaltFailureInfo,
} from './errors.ts';
export { safeUrl } from './scrub.ts';

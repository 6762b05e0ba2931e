// pino, configured the way its docs recommend: JSON lines, a child logger per component, errors
// under `err`, secrets redacted by path, our data nested under our own keys. Pretty output only
// when stdout is a terminal.
import { pino, type Logger, type LoggerOptions } from 'pino';

// The signing key lives in a Signer (src/plan/keys.ts) whose JSON is only its key id and public
// key; these paths are the second line: a private key logged under any of its usual names.
export const REDACT_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'signingKey',
  '*.signingKey',
  'key',
  '*.key',
  'seed',
  '*.seed',
  'privateKey',
  '*.privateKey',
  'private_key',
  '*.private_key',
  'headers["x-auth-token"]',
  '*.headers["x-auth-token"]',
  'headers.authorization',
  '*.headers.authorization',
  'err.config',
  'err.request',
  'err.response',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = {
    name: 'kube-salt-bridge',
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
  };
  if (destination) return pino(options, destination as pino.DestinationStream);
  if (process.stdout.isTTY) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino(options);
}

export type { Logger };

#!/usr/bin/env node
// Entry point: the only place that exits the process.
import { runCli } from './cli.ts';

const stopSignal = new Promise<string>((resolve) => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve(sig));
});

const code = await runCli(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  stopSignal,
});
process.exitCode = code;
// Give pino a moment to flush, then leave even if a socket lingers.
setTimeout(() => process.exit(code), 200).unref();

// The command line (commander). Every action returns an exit code; only main.ts exits.
//   0 success · 1 the operation failed (once: not every cluster published; check: a check failed)
//   2 bad configuration or usage
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import { loadConfig, type Config } from './config/index.ts';
import { ConfigError } from './errors.ts';
import { createLogger } from './log.ts';
import { createBridge } from './bridge.ts';
import { runCheck } from './commands/check.ts';
import { describeNewKey, KeyFileRefused, writeNewKey } from './commands/keygen.ts';
import { fetchStatus, formatStatus } from './commands/status.ts';
import { postRelease, releaseTarget } from './commands/release.ts';

export const DEFAULT_CONFIG = '/etc/kube-salt-bridge/config.yaml';

/** The package's version: package.json is one level above both src/cli.ts and the built dist/cli.js. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT); `run` waits on it. */
  stopSignal: Promise<string>;
  /** Log destination (tests); default stdout. */
  logDestination?: NodeJS.WritableStream;
}

/**
 * `--config`, else $KSB_CONFIG_FILE (read from io.env, not process.env; empty counts as unset),
 * else the default path.
 */
function configOption(io: CliIo): Option {
  const fromEnv = io.env.KSB_CONFIG_FILE || undefined;
  return new Option('-c, --config <file>', 'configuration file (env: KSB_CONFIG_FILE)').default(fromEnv ?? DEFAULT_CONFIG);
}

/** `--timeout` values: a positive, finite number of seconds (NaN would make waits endless). */
function seconds(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return n;
}

function load(file: string, io: CliIo): Config {
  return loadConfig(file, io.env);
}

function logger(config: Config | undefined, io: CliIo): Logger {
  return createLogger(config?.log.level ?? 'info', io.logDestination);
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code = 0;
  const program = new Command('kube-salt-bridge')
    .description('Watches Kubernetes Node objects and fires signed Salt events so firewalls admit exactly the nodes.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('run')
    .description('watch the clusters and publish until stopped (SIGTERM/SIGINT)')
    .addOption(configOption(io))
    .option('--dry-run', 'log exactly what would be fired; fire nothing', false)
    .action(async (o: { config: string; dryRun: boolean }) => {
      const config = load(o.config, io);
      const log = logger(config, io);
      const bridge = createBridge(config, log, { dryRun: o.dryRun, http: true, stream: !o.dryRun, leaderElection: true });
      log.info({ config: { file: config.source, clusters: config.clusters.map((c) => c.name), dryRun: o.dryRun } }, 'kube-salt-bridge starting');
      await bridge.start();
      const signal = await io.stopSignal;
      log.info({ signal }, 'stopping: closing watches and streams, finishing the in-flight publish');
      const forced = setTimeout(() => log.warn('stop is taking long'), 5000);
      forced.unref();
      await bridge.stop();
      clearTimeout(forced);
      log.info('stopped');
      log.flush?.();
    });

  program
    .command('once')
    .description('one full sync then exit: 0 only if every cluster was synced and published')
    .addOption(configOption(io))
    .option('--dry-run', 'log exactly what would be fired; fire nothing', false)
    .option('--timeout <seconds>', 'how long to wait for every cluster to sync', seconds, 60)
    .option('--force', 'publish even a list the safety policy would hold', false)
    .action(async (o: { config: string; dryRun: boolean; timeout: number; force: boolean }) => {
      const config = load(o.config, io);
      const log = logger(config, io);
      const bridge = createBridge(config, log, { dryRun: o.dryRun, http: false, stream: false, leaderElection: false });
      try {
        await bridge.start();
        try {
          await bridge.waitSynced(o.timeout * 1000);
        } catch (err) {
          log.error({ err }, 'not every cluster could be synced');
        }
        const results = await Promise.all(
          config.clusters.map(async (c) => {
            let ok = await bridge.controller.runCluster(c.name, 'once');
            if (!ok && o.force && bridge.controller.release(c.name, undefined, { schedule: false }).released)
              ok = await bridge.controller.runCluster(c.name, 'override');
            return [c.name, ok] as const;
          }),
        );
        const failed = results.filter(([, ok]) => !ok).map(([n]) => n);
        for (const s of bridge.controller.status().clusters) {
          io.err(
            `${s.cluster}: ${failed.includes(s.cluster) ? 'NOT published' : o.dryRun ? 'would publish (dry run)' : 'published'}; synced=${s.synced} nodes=${s.nodes} ipv4=${s.ipv4} ipv6=${s.ipv6} generation=${s.generation ?? '-'}${s.held ? ` held: ${s.held.messages.join('; ')}` : ''}${s.lastError ? ` error: ${s.lastError.message}` : ''}\n`,
          );
        }
        code = failed.length === 0 ? 0 : 1;
      } finally {
        await bridge.stop();
      }
    });

  program
    .command('check')
    .description('validate the config and test connectivity: Kubernetes list/watch (RBAC), salt-api login, event firing, event stream')
    .addOption(configOption(io))
    .option('--timeout <seconds>', 'per check', seconds, 10)
    .action(async (o: { config: string; timeout: number }) => {
      const config = load(o.config, io);
      const ok = await runCheck(config, createLogger('silent'), { out: io.out, timeoutMs: o.timeout * 1000 });
      code = ok ? 0 : 1;
    });

  program
    .command('keygen')
    .description('write a new Ed25519 private key for signing.keyFile (mode 0600, never overwriting) and print its public key and key id')
    .requiredOption('--out <file>', 'where to write the private key (must not exist)')
    .action((o: { out: string }) => {
      try {
        io.out(describeNewKey(o.out, writeNewKey(o.out)));
      } catch (err) {
        if (!(err instanceof KeyFileRefused)) throw err;
        io.err(`kube-salt-bridge keygen: ${err.message}\n`);
        code = 2;
      }
    });

  program
    .command('status')
    .description("show a running bridge's per-cluster and per-minion state")
    .addOption(configOption(io))
    .option('--url <url>', "the bridge's HTTP address (default: from the config's http.listen)")
    .option('--json', 'print the raw JSON', false)
    .action(async (o: { config: string; url?: string; json: boolean }) => {
      const url = o.url ?? httpUrl(load(o.config, io));
      const status = await fetchStatus(url);
      io.out(o.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
    });

  program
    .command('release')
    .description('publish a list the safety policy is holding (operator override)')
    .argument('<cluster>', 'cluster name')
    .option('--digest <digest>', 'only if the held list still has this digest (from `status`)')
    .addOption(configOption(io))
    .option('--url <url>', "the bridge's HTTP address (default: from the config's http.listen)")
    .option('--token-file <file>', "file holding the bridge's bearer token (default: the config's http.tokenFile)")
    .action(async (cluster: string, o: { config: string; url?: string; digest?: string; tokenFile?: string }, cmd: Command) => {
      const { url, token } = releaseTarget({ ...o, configSource: cmd.getOptionValueSource('config') }, (f) => load(f, io));
      const r = await postRelease(url, cluster, o.digest, token);
      io.out(`${r.message}\n`);
      code = r.released ? 0 : 1;
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ConfigError) {
      io.err(`kube-salt-bridge: invalid configuration:\n${err.message}\n`);
      return 2;
    }
    io.err(`kube-salt-bridge: ${(err as Error).message}\n`);
    return 1;
  }
}

function httpUrl(config: Config): string {
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}

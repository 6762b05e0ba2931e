// Runs the real bridge (node src/main.ts) as a separate process against the test stack, with a
// generated config, secrets in files (as a mounted Secret would be) and JSON logs captured.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, freePort } from './tools.ts';
import { waitFor, workDir } from './proc.ts';
import type { KubeCluster } from './kube.ts';
import type { SaltStack } from './salt.ts';
import type { StatusDoc } from '../../src/commands/status.ts';

export interface BridgeProc {
  readonly configFile: string;
  readonly url: string;
  readonly logs: Array<Record<string, unknown>>;
  readonly rawOutput: () => string;
  readonly child: ChildProcess;
  waitReady(timeoutMs?: number): Promise<void>;
  waitLog(what: string, match: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** GET /status: the document `kube-salt-bridge status --json` prints. */
  status(): Promise<StatusDoc>;
  metrics(): Promise<string>;
  /** SIGTERM; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface BridgeSetup {
  clusters: Array<{
    name: string;
    kube: KubeCluster;
    safety?: Record<string, unknown>;
    families?: string[];
    extraEntries?: string[];
    kubeconfig?: string;
    labelSelector?: string;
    more?: Record<string, unknown>;
  }>;
  salt: SaltStack;
  /** The bridge's Ed25519 private key as text (testKeys().privateText), written to signing.keyFile. */
  privateKey: string;
  publish?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  /** Reuse a state dir (restart scenarios). */
  stateDir?: string;
  saltPassword?: string;
  saltUser?: string;
  /** Merged into the config's salt section (e.g. websocketUrl, eventStream). */
  saltExtra?: Record<string, unknown>;
  /** Merged into the config's http section (e.g. allowedHosts; tokenFile: null leaves it out). */
  http?: Record<string, unknown>;
}

/** The bearer token every harness bridge gets in http.tokenFile (`release --config` reads it). */
export const HTTP_TOKEN = 'harness-http-token-0123456789abcdef';

let seq = 0;

export async function writeBridgeConfig(s: BridgeSetup): Promise<{ file: string; port: number; stateDir: string }> {
  const dir = workDir(`bridge-${++seq}`);
  const secrets = join(dir, 'secrets');
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  writeFileSync(join(secrets, 'salt-api-password'), `${s.saltPassword ?? s.salt.bridge.password}\n`, { mode: 0o400 });
  writeFileSync(join(secrets, 'signing-key'), `${s.privateKey}\n`, { mode: 0o400 });
  writeFileSync(join(secrets, 'http-token'), `${HTTP_TOKEN}\n`, { mode: 0o400 });
  const port = await freePort();
  const stateDir = s.stateDir ?? join(dir, 'state');
  const config = {
    salt: {
      url: s.salt.apiUrl,
      username: s.saltUser ?? s.salt.bridge.username,
      eauth: 'file',
      passwordFile: join(secrets, 'salt-api-password'),
      caFile: s.salt.apiCaFile,
      timeoutMs: 10000,
      ...s.saltExtra,
    },
    signing: { keyFile: join(secrets, 'signing-key') },
    clusters: s.clusters.map((c) => ({
      name: c.name,
      kubeconfig: c.kubeconfig ?? c.kube.bridgeKubeconfig,
      ...(c.families ? { families: c.families } : {}),
      ...(c.extraEntries ? { extraEntries: c.extraEntries } : {}),
      ...(c.labelSelector ? { labelSelector: c.labelSelector } : {}),
      safety: { maxShrinkFraction: 0.9, minNodes: 1, ...c.safety },
      watch: { timeoutSeconds: 60, watchdogSeconds: 90, relistIntervalSeconds: 1800 },
      ...c.more,
    })),
    publish: { minIntervalMs: 100, maxDelayMs: 500, resyncIntervalSeconds: 600, retry: { initialMs: 200, maxMs: 2000 }, ...s.publish },
    state: { dir: stateDir },
    http: Object.fromEntries(Object.entries({ listen: `127.0.0.1:${port}`, tokenFile: join(secrets, 'http-token'), ...s.http }).filter(([, v]) => v !== null)),
    log: { level: 'debug' },
    ...s.extra,
  };
  const file = join(dir, 'config.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return { file, port, stateDir };
}

/**
 * Runs `kube-salt-bridge <args>` to completion. With `timeoutMs`, a run that takes longer is
 * killed (SIGKILL; code null, signal set). `ms` is the wall time from spawn to exit.
 */
export function runBridgeCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const c = spawn(process.execPath, [join(ROOT, 'src', 'main.ts'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const t = opts.timeoutMs === undefined ? undefined : setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, ms: Date.now() - started, signal });
    });
  });
}

export async function startBridge(s: BridgeSetup, args: string[] = []): Promise<BridgeProc> {
  const { file, port } = await writeBridgeConfig(s);
  return spawnBridge(file, port, args);
}

export function spawnBridge(file: string, port: number, args: string[] = []): BridgeProc {
  const child = spawn(process.execPath, [join(ROOT, 'src', 'main.ts'), 'run', '--config', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let raw = '';
  let buf = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    const text = d.toString('utf8');
    raw += text;
    buf += text;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not JSON */
      }
    }
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.on('exit', () => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    configFile: file,
    url,
    logs,
    rawOutput: () => raw,
    child,
    async waitReady(timeoutMs = 60_000) {
      await waitFor(
        'bridge /readyz',
        async () => {
          if (child.exitCode !== null) throw new Error(`bridge exited ${child.exitCode}: ${raw.slice(-3000)}`);
          return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok;
        },
        timeoutMs,
        200,
      ).catch(async (e: Error) => {
        const why = await fetch(`${url}/readyz`).then(
          (r) => r.text(),
          () => 'unreachable',
        );
        throw new Error(`${e.message}; readyz: ${why}`);
      });
    },
    waitLog(what, match, timeoutMs = 30_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const l = logs.find(match);
          if (l) {
            clearTimeout(t);
            waiters.delete(check);
            resolve(l);
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for bridge log: ${what}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    async status() {
      return (await (await fetch(`${url}/status`)).json()) as StatusDoc;
    },
    async metrics() {
      return (await fetch(`${url}/metrics`)).text();
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

// Process and resource bookkeeping for the real-stack harness. Every process and network object a
// test starts is recorded here and in a state file, so that it is torn down on success, failure,
// signal or crash (a later run cleans a crashed run's leftovers: see cleanStale()).
import { spawn, spawnSync, execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const STATE_ROOT = '/tmp/ksb-test';
/** Short per-process id used in namespace and link names (interface names are limited to 15 chars). */
export const RUN_ID = (process.pid % 46656).toString(36).padStart(3, '0');

interface RunState {
  pid: number;
  pids: number[];
  netns: string[];
  links: string[];
}

const state: RunState = { pid: process.pid, pids: [], netns: [], links: [] };
const stateDir = join(STATE_ROOT, String(process.pid));
const stateFile = join(stateDir, 'state.json');
const children = new Set<ChildProcess>();

function save(): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(stateFile, JSON.stringify(state));
}

export function trackNetns(name: string): void {
  state.netns.push(name);
  save();
}

export function trackLink(name: string): void {
  state.links.push(name);
  save();
}

export function untrackNetns(name: string): void {
  state.netns = state.netns.filter((n) => n !== name);
  save();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Test runs that own a /tmp/ksb-test/<pid>/ path named on a running process's command line. */
function runDirOwners(): Map<number, number[]> {
  const owners = new Map<number, number[]>();
  const marker = new RegExp(`${STATE_ROOT}/(\\d+)/`);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const owner = marker.exec(cmdline)?.[1];
    if (owner !== undefined) owners.set(Number(owner), [...(owners.get(Number(owner)) ?? []), pid]);
  }
  return owners;
}

/**
 * Kills the processes whose command line names the run directory of `owner`: a daemon's child
 * that outlived its parent (a salt-master worker kept its socket on the lab address, and the next
 * run that picked the same /24 could not bind it) or one that left the process group.
 */
function killRunDirProcesses(owner: number, owners = runDirOwners()): void {
  for (const pid of owners.get(owner) ?? []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function destroy(s: RunState): void {
  killRunDirProcesses(s.pid);
  for (const pid of s.pids) {
    // Each daemon runs in its own process group (detached), so its children go with it.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const ns of s.netns) {
    // Kill anything still running inside the namespace, then delete it.
    const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const p of (r.stdout ?? '').split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
  for (const link of s.links) spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
}

/** Synchronous teardown of everything this process started; safe to call more than once. */
export function teardownAll(): void {
  for (const c of children) {
    try {
      process.kill(-(c.pid ?? 0), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  destroy(state);
  state.pids = [];
  state.netns = [];
  state.links = [];
  rmSync(stateDir, { recursive: true, force: true });
}

/** What this run still has on the machine: processes naming its directory, namespaces, links. */
export function leftovers(): { pids: number[]; netns: string[]; links: string[] } {
  const prefix = `ksb${RUN_ID}`;
  const names = (args: string[]): string[] =>
    (spawnSync('ip', args, { encoding: 'utf8' }).stdout ?? '')
      .split('\n')
      .map((l) => /^(?:\d+:\s+)?([^\s:@]+)/.exec(l)?.[1] ?? '')
      .filter((n) => n.startsWith(prefix) || n.startsWith(`k${RUN_ID}`));
  return { pids: runDirOwners().get(process.pid) ?? [], netns: names(['netns', 'list']), links: names(['-o', 'link', 'show']) };
}

/** Removes what crashed earlier runs (dead owner pid) left behind. */
export function cleanStale(): void {
  const owners = runDirOwners();
  for (const owner of owners.keys()) {
    if (owner !== process.pid && !alive(owner)) killRunDirProcesses(owner, owners);
  }
  if (!existsSync(STATE_ROOT)) return;
  for (const dir of readdirSync(STATE_ROOT)) {
    const owner = Number(dir);
    if (!Number.isInteger(owner) || owner === process.pid || alive(owner)) continue;
    try {
      const s = JSON.parse(readFileSync(join(STATE_ROOT, dir, 'state.json'), 'utf8')) as RunState;
      destroy(s);
    } catch {
      /* unreadable: just remove */
    }
    rmSync(join(STATE_ROOT, dir), { recursive: true, force: true });
  }
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', teardownAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      teardownAll();
      process.exit(130);
    });
  }
}

export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
  exited(): boolean;
}

/** Starts a long-running process in its own process group, output appended to logFile. */
export function startDaemon(name: string, cmd: string, args: string[], opts: SpawnOptions & { logFile: string }): Daemon {
  hookExit();
  cleanStale();
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', fd, fd] });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  children.add(child);
  state.pids.push(child.pid);
  save();
  let done = false;
  const exitP = new Promise<void>((resolve) =>
    child.once('exit', () => {
      done = true;
      resolve();
    }),
  );
  return {
    name,
    child,
    logFile: opts.logFile,
    exited: () => done,
    async stop(graceMs = 5000) {
      if (!done) {
        try {
          process.kill(-child.pid!, 'SIGTERM');
        } catch {
          /* gone */
        }
        const t = setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, graceMs);
        await exitP;
        clearTimeout(t);
      }
      // The leader is gone; whatever is left in its group is a straggler (Salt's workers can be).
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* none left */
      }
      children.delete(child);
      state.pids = state.pids.filter((p) => p !== child.pid);
      save();
    },
  };
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command to completion; never throws for a non-zero exit (the caller decides). */
export async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  if (opts.input !== undefined) {
    return new Promise((resolve, reject) => {
      const c = spawn(cmd, args, { env: opts.env ?? process.env });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.stderr.on('data', (d) => (stderr += d));
      const t = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
      c.on('error', reject);
      c.on('close', (code) => {
        clearTimeout(t);
        resolve({ stdout, stderr, code: code ?? -1 });
      });
      c.stdin.end(opts.input);
    });
  }
  try {
    const r = await execFileP(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string; message: string };
    if (typeof e.code === 'string') throw new Error(`${cmd}: ${e.message}`, { cause: err });
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

/** Like run() but throws with the command's stderr on a non-zero exit. */
export async function must(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls fn until it returns a truthy value or the deadline passes; the error names what was awaited. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    }
    await sleep(everyMs);
  }
}

/** A fresh per-run working directory. */
export function workDir(label: string): string {
  const dir = join(stateDir, label);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The tail of a log file, for failure messages. */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Stops the given parts in order (bridge, salt, lab, kube — the reverse of start-up), carrying on
 * past failures, then removes anything left; rethrows the first failure.
 */
export async function stopInOrder(...parts: Array<{ stop(): Promise<unknown> } | undefined>): Promise<void> {
  let first: unknown;
  for (const p of parts) {
    try {
      await p?.stop();
    } catch (err) {
      first ??= err;
    }
  }
  teardownAll();
  if (first !== undefined) throw first instanceof Error ? first : new Error('a teardown step threw a non-Error', { cause: first });
}

// A real Salt for tests: salt-master and salt-api (rest_cherrypy over TLS with a generated
// certificate) in the root namespace on the lab bridge and loopback, and N salt-minions, each in
// its own network namespace with its own address. The project's salt/file_roots tree is the
// master's file_roots; the reactor mapping is the one shipped in salt/conf/master.d/. Master and
// minions load kube_allowlist from the saltext.kube_allowlist package installed into the Salt venv
// (scripts/setup.sh), found through its salt.loader entry point: nothing is synced.
import { writeFileSync, mkdirSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { makeCa, issue } from './certs.ts';
import { startDaemon, waitFor, workDir, tail, run, type Daemon } from './proc.ts';
import { requireTools, freePort, ROOT } from './tools.ts';
import type { Host, Lab } from './netns.ts';
import { parse as parseYaml } from 'yaml';

export interface BusEvent {
  tag: string;
  data: Record<string, unknown>;
  /** When the harness's bus reader received it (Date.now()), for timelines (test/harness/timeline.ts). */
  at: number;
}

export interface Minion {
  readonly id: string;
  readonly host: Host;
  daemon: Daemon;
  /** iptables-save / ip6tables-save / ipset list / nft list ruleset inside the minion's namespace. */
  firewall(): Promise<{ iptables: string; ip6tables: string; ipset: string; nft: string }>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface SaltUser {
  username: string;
  password: string;
}

export interface SaltStack {
  readonly configDir: string;
  readonly apiUrl: string;
  readonly apiCaFile: string;
  /** A user that may do everything (for test set-up through salt-api). */
  readonly admin: SaltUser;
  /** The bridge's user: only what salt/conf/master.d/eauth.conf grants it. */
  readonly bridge: SaltUser;
  /** The eauth ACL the bridge's user got, and where it came from (the shipped file, or the fallback). */
  readonly bridgeAcl: unknown;
  readonly bridgeAclSource: string;
  /** The Salt release running (`salt --version`), e.g. { text: '3008.4', major: 3008, minor: 4 }. */
  readonly version: SaltVersion;
  /** The master's root_dir and its eauth token directory (one file per issued Salt token). */
  readonly rootDir: string;
  readonly tokenDir: string;
  /** The address the master listens on (publish and request ports 4505/4506). */
  readonly address: string;
  /** The master's pki_dir (master.pem, master.pub, minion keys). */
  readonly pkiDir: string;
  /** The pillar_roots directory setPillar writes. */
  readonly pillarDir: string;
  /**
   * Every eauth token the master holds, with its file: named by the token up to 3007, `<token>.p`
   * from 3008 on (tokens kept through salt.cache, msgpack inside).
   */
  tokens(): Array<{ token: string; file: string }>;
  readonly minions: Minion[];
  /** `salt <tgt> <fun> [args]` with JSON output, parsed. */
  salt(tgt: string, fun: string, args?: string[], opts?: { tgtType?: string; timeoutS?: number }): Promise<Record<string, unknown>>;
  saltRun(fun: string, args?: string[]): Promise<unknown>;
  /** Raw CLI (salt, salt-run, salt-key, salt-call) with this master's config dir. */
  cli(bin: string, args: string[], opts?: { timeoutMs?: number }): ReturnType<typeof run>;
  /** Every event on the master bus since start, as `salt-run state.event` streams it, with its receive time. */
  readonly events: BusEvent[];
  waitForEvent(what: string, match: (e: BusEvent) => boolean, timeoutMs?: number): Promise<BusEvent>;
  /** Writes pillar for each minion id (replacing earlier pillar) and refreshes it on the minions. */
  setPillar(perMinion: Record<string, unknown>): Promise<void>;
  restartApi(): Promise<void>;
  /** Stops salt-api, the bus reader and salt-master (a master outage); the minions keep running. */
  stopMaster(): Promise<void>;
  stop(): Promise<void>;
}

export interface SaltVersion {
  text: string;
  major: number;
  minor: number;
}

/** The Salt release of the salt binaries on PATH (the Salt venv KSB_VENV / KSB_SALT_VENV selects). */
export async function saltVersion(bin = 'salt'): Promise<SaltVersion> {
  const r = await run(bin, ['--version'], { timeoutMs: 60_000 });
  const m = /^salt (\d+)\.(\d+)/m.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`cannot tell the Salt version from \`${bin} --version\` (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  return { text: `${m[1]}.${m[2]}`, major: Number(m[1]), minor: Number(m[2]) };
}

export interface SaltOptions {
  minions: number;
  /** Extra master config (merged at top level). */
  masterConfig?: Record<string, unknown>;
  /** Copy salt/conf/master.d/reactor.conf into the master's config (default true when it exists). */
  reactor?: boolean;
  /**
   * The address the master listens on (default lab.gw4). Another address is added to the lab's
   * bridge (a /32, removed at stop) so that a second master can run beside the first one.
   */
  address?: string;
  /** Start with this master's key pair (multi-master: every master of a minion shares one key). */
  masterKeyFrom?: SaltStack;
  /** Serve this pillar directory (another stack's pillarDir) instead of a fresh one. */
  pillarDir?: string;
  /** The minions' `master` setting (default the master's address); a list for multi-master or failover. */
  minionMasters?: string | string[];
  /** Merged into a minion's config (e.g. master_type: failover), per minion id when a function. */
  minionConfig?: Record<string, unknown> | ((id: string) => Record<string, unknown>);
  /** Namespace label prefix of the minions' hosts (default 'm': m1, m2, ...). */
  minionLabel?: string;
}

const yamlish = (o: unknown) => JSON.stringify(o, null, 2) + '\n';

export const BRIDGE_SALT_USER = 'kube-salt-bridge';
const FALLBACK_BRIDGE_ACL = [{ '@runner': [{ 'event.send': { kwargs: { tag: 'kube-salt-bridge/.*' } } }] }];

/** What salt/conf/master.d/eauth.conf ships for the bridge's user. */
export interface ShippedEauth {
  /** The eauth backend the user is declared under (e.g. `file`). */
  backend: string;
  /** The backend's `^` options as shipped (`^filename`, `^filetype`, `^hashtype`, ...). */
  options: Record<string, unknown>;
  acl: unknown;
  source: string;
}

export function shippedEauth(): ShippedEauth | undefined {
  const file = join(ROOT, 'salt', 'conf', 'master.d', 'eauth.conf');
  if (!existsSync(file)) return undefined;
  const conf = parseYaml(readFileSync(file, 'utf8')) as { external_auth?: Record<string, Record<string, unknown>> } | null;
  for (const [backend, users] of Object.entries(conf?.external_auth ?? {})) {
    const acl = users?.[BRIDGE_SALT_USER];
    if (acl === undefined) continue;
    const options = Object.fromEntries(Object.entries(users).filter(([k]) => k.startsWith('^')));
    return { backend, options, acl, source: `salt/conf/master.d/eauth.conf (external_auth:${backend}:${BRIDGE_SALT_USER})` };
  }
  throw new Error(`salt/conf/master.d/eauth.conf has no external_auth entry for ${BRIDGE_SALT_USER}`);
}

/**
 * The ACL that salt/conf/master.d/eauth.conf ships for the bridge's user (under any eauth backend), so
 * that tests prove the shipped file. Falls back to a prefix-only ACL only when the file does not
 * exist; a file that does not parse or has no entry for the user fails the stack's start.
 */
export function shippedBridgeAcl(): { acl: unknown; source: string } {
  const s = shippedEauth();
  return s ? { acl: s.acl, source: s.source } : { acl: FALLBACK_BRIDGE_ACL, source: 'harness fallback (no salt/conf/master.d/eauth.conf)' };
}

/**
 * The master's `external_auth:file` block for the test users. When the shipped file uses the
 * `file` backend, its `^` options (file type, hash type, fields) are used as shipped and only
 * `^filename` points at the test's users file, whose passwords are stored the way those options
 * say (e.g. SHA-256 hex): the real master then proves the shipped authentication, not only the ACL.
 */
function eauthFileBlock(usersFile: string, users: Array<{ user: SaltUser; acl: unknown }>): Record<string, unknown> {
  const shipped = shippedEauth();
  const options: Record<string, unknown> = shipped?.backend === 'file' ? { ...shipped.options } : { '^filetype': 'text', '^hashtype': 'plaintext' };
  const opt = (key: string, fallback: string): string => {
    const v = options[key];
    return typeof v === 'string' || typeof v === 'number' ? String(v) : fallback;
  };
  const filetype = opt('^filetype', 'text');
  if (filetype !== 'text') throw new Error(`harness: eauth file type ${filetype} is not supported (only text)`);
  const hashtype = opt('^hashtype', 'plaintext');
  const sep = opt('^field_separator', ':');
  const userField = Number(options['^username_field'] ?? 1);
  const passField = Number(options['^password_field'] ?? 2);
  const stored = (p: string) => (hashtype === 'plaintext' ? p : createHash(hashtype).update(p).digest('hex'));
  const lines = users.map(({ user }) => {
    const fields: string[] = [];
    fields[userField - 1] = user.username;
    fields[passField - 1] = stored(user.password);
    return Array.from(fields, (f) => f ?? '').join(sep);
  });
  writeFileSync(usersFile, lines.join('\n') + '\n', { mode: 0o600 });
  return { ...options, '^filename': usersFile, ...Object.fromEntries(users.map(({ user, acl }) => [user.username, acl])) };
}

/**
 * salt-minion refuses to start ("An instance is already running") while its pidfile names a process
 * that exists, and a zombie counts: on this machine PID 1 reaps orphans late, and the process that
 * wrote the pidfile (a child of the one stop() waits for) may still be shutting down. Waits for
 * that process to end, then removes the pidfiles if it is gone or a zombie.
 */
async function clearStalePidfiles(runDir: string, name: string, timeoutMs = 15_000): Promise<void> {
  const pidfile = join(runDir, `${name}.pid`);
  let pid: number;
  try {
    pid = Number(readFileSync(pidfile, 'utf8').trim());
  } catch {
    return;
  }
  const state = (): string | undefined => {
    try {
      return /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    } catch {
      return undefined;
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (state() !== undefined && state() !== 'Z' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const s = state();
  if (s !== undefined && s !== 'Z') return; // really running: leave it to salt-minion to say so
  rmSync(pidfile, { force: true });
  rmSync(join(runDir, `process_responsibility_${name}.pid`), { force: true });
}

let stacks = 0;

export async function startSalt(lab: Lab, opts: SaltOptions): Promise<SaltStack> {
  const bins = requireTools(['salt-master', 'salt-minion', 'salt-api', 'salt', 'salt-run', 'salt-key', 'openssl']);
  const version = await saltVersion(bins['salt']);
  // A second stack in the same process (a second master) gets a directory of its own.
  const dir = workDir(stacks++ === 0 ? 'salt' : `salt-${stacks}`);
  const configDir = join(dir, 'master-conf');
  mkdirSync(join(configDir, 'master.d'), { recursive: true });
  const pillarDir = opts.pillarDir ?? join(dir, 'pillar');
  if (!opts.pillarDir) {
    mkdirSync(pillarDir, { recursive: true });
    writeFileSync(join(pillarDir, 'top.sls'), yamlish({ base: {} }));
  }
  const address = opts.address ?? lab.gw4;
  let addedAddress = false;
  if (address !== lab.gw4) {
    await run('ip', ['addr', 'add', `${address}/32`, 'dev', lab.bridge]).then((r) => {
      if (r.code !== 0) throw new Error(`cannot add ${address} to ${lab.bridge}: ${r.stderr}`);
    });
    addedAddress = true;
  }

  const pkiDir = join(dir, 'pki');
  mkdirSync(pkiDir, { recursive: true });
  const pki = await makeCa(pkiDir, 'salt-api-ca');
  const serving = await issue(pki, 'salt-api', '/CN=salt-api', { sans: ['IP:127.0.0.1', 'DNS:localhost'] });

  const apiPort = await freePort();
  const admin: SaltUser = { username: 'ksb-admin', password: `admin-${Math.random().toString(36).slice(2)}` };
  const bridge: SaltUser = { username: BRIDGE_SALT_USER, password: `bridge-${Math.random().toString(36).slice(2)}` };
  const usersFile = join(dir, 'eauth-users');
  const { acl: bridgeAcl, source: bridgeAclSource } = shippedBridgeAcl();
  const rootDir = join(dir, 'root');
  // pki_dir defaults to /etc/salt/pki/master under root_dir.
  const masterPkiDir = join(rootDir, 'etc', 'salt', 'pki', 'master');
  if (opts.masterKeyFrom) {
    mkdirSync(masterPkiDir, { recursive: true, mode: 0o700 });
    for (const f of ['master.pem', 'master.pub'])
      writeFileSync(join(masterPkiDir, f), readFileSync(join(opts.masterKeyFrom.pkiDir, f)), { mode: f.endsWith('.pem') ? 0o400 : 0o644 });
  }
  const master = {
    root_dir: rootDir,
    user: 'root',
    interface: address,
    auto_accept: true,
    log_file: join(dir, 'master.log'),
    log_level_logfile: 'info',
    file_roots: { base: [join(ROOT, 'salt', 'file_roots')] },
    pillar_roots: { base: [pillarDir] },
    netapi_enable_clients: ['local', 'local_async', 'runner', 'runner_async', 'wheel'],
    external_auth: {
      file: eauthFileBlock(usersFile, [
        { user: admin, acl: ['.*', '@runner', '@wheel', '@jobs'] },
        { user: bridge, acl: bridgeAcl },
      ]),
    },
    rest_cherrypy: { port: apiPort, host: '127.0.0.1', ssl_crt: serving.crt, ssl_key: serving.key },
    ...opts.masterConfig,
  };
  writeFileSync(join(configDir, 'master'), yamlish(master));
  const reactorConf = join(ROOT, 'salt', 'conf', 'master.d', 'reactor.conf');
  if (opts.reactor !== false && existsSync(reactorConf)) {
    // The shipped mapping points at salt://reactor/...; served from our file_roots.
    writeFileSync(join(configDir, 'master.d', 'reactor.conf'), readFileSync(reactorConf));
  }

  const masterD = startDaemon('salt-master', bins['salt-master']!, ['-c', configDir, '-l', 'warning'], { logFile: join(dir, 'master.out') });
  const cli: SaltStack['cli'] = (bin, args, o = {}) => run(bins[bin] ?? bin, ['-c', configDir, ...args], { timeoutMs: o.timeoutMs ?? 120_000 });
  await waitFor(
    'salt-master to answer',
    async () => {
      if (masterD.exited()) throw new Error(`salt-master exited\n${tail(masterD.logFile)}\n${tail(join(dir, 'master.log'))}`);
      return (await cli('salt-run', ['manage.up', '--out=json'], { timeoutMs: 20_000 })).code === 0;
    },
    60_000,
    500,
  );

  // The runner comes from the installed extension, as on an operator's master.
  const runnerDoc = await cli('salt-run', ['doc.runner', '--out=json']);
  if (runnerDoc.code !== 0 || !runnerDoc.stdout.includes('"kube_allowlist.status"')) {
    throw new Error(
      `the master has no kube_allowlist runner (is saltext.kube_allowlist installed in ${process.env.KSB_VENV ?? 'the Salt venv'}?): ${runnerDoc.stderr || runnerDoc.stdout}`,
    );
  }

  // The bus as an operator sees it: salt-run state.event (JSON lines: "tag\t{...}").
  const events: BusEvent[] = [];
  const waiters = new Set<() => void>();
  let busProc: ChildProcess | undefined;
  const startBus = () => {
    // Unbuffered: a pipe would otherwise make Python hold events back for seconds.
    const p = spawn(bins['salt-run']!, ['-c', configDir, 'state.event', 'count=-1'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const tab = line.indexOf('\t');
        if (tab < 0) continue;
        try {
          events.push({ tag: line.slice(0, tab), data: JSON.parse(line.slice(tab + 1)) as Record<string, unknown>, at: Date.now() });
          for (const w of waiters) w();
        } catch {
          /* not an event line */
        }
      }
    });
    busProc = p;
  };
  startBus();

  const minions: Minion[] = [];
  for (let i = 1; i <= opts.minions; i++) {
    const id = `minion-${i}`;
    const host = await lab.addHost(`${opts.minionLabel ?? 'm'}${i}`);
    const mdir = join(dir, id);
    mkdirSync(mdir, { recursive: true });
    writeFileSync(
      join(mdir, 'minion'),
      yamlish({
        id,
        master: opts.minionMasters ?? address,
        root_dir: join(mdir, 'root'),
        user: 'root',
        log_file: join(mdir, 'minion.log'),
        log_level_logfile: 'info',
        acceptance_wait_time: 1,
        random_reauth_delay: 0,
        recon_default: 200,
        recon_max: 1000,
        recon_randomize: false,
        startup_states: '',
        ...(typeof opts.minionConfig === 'function' ? opts.minionConfig(id) : opts.minionConfig),
      }),
    );
    const startMinion = () => host.daemon(`salt-minion-${id}`, bins['salt-minion']!, ['-c', mdir, '-l', 'warning'], join(mdir, 'minion.out'));
    const m: Minion = {
      id,
      host,
      daemon: startMinion(),
      async firewall() {
        const [a, b, c, d] = await Promise.all([
          host.exec('iptables-save', []),
          host.exec('ip6tables-save', []),
          host.exec('ipset', ['list']),
          host.exec('nft', ['list', 'ruleset']),
        ]);
        return { iptables: a.stdout, ip6tables: b.stdout, ipset: c.stdout, nft: d.stdout };
      },
      async stop() {
        await m.daemon.stop();
      },
      async start() {
        await clearStalePidfiles(join(mdir, 'root', 'var', 'run'), 'salt-minion');
        m.daemon = startMinion();
      },
    };
    minions.push(m);
  }

  const salt: SaltStack['salt'] = async (tgt, fun, args = [], o = {}) => {
    const r = await cli('salt', [...(o.tgtType ? [`--${o.tgtType}`] : []), tgt, fun, ...args, '--out=json', '--static', `--timeout=${o.timeoutS ?? 30}`]);
    try {
      return JSON.parse(r.stdout || '{}') as Record<string, unknown>;
    } catch {
      throw new Error(`salt ${tgt} ${fun}: unparseable output (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 500)}`);
    }
  };

  if (minions.length > 0) {
    await waitFor(
      `${minions.length} minions to answer test.ping`,
      async () => {
        for (const m of minions) if (m.daemon.exited()) throw new Error(`${m.id} exited\n${tail(m.daemon.logFile)}`);
        const r = await salt('*', 'test.ping', [], { timeoutS: 5 });
        return minions.every((m) => r[m.id] === true);
      },
      90_000,
      1000,
    );
    const fns = await salt('*', 'sys.list_functions', ['kube_allowlist'], { timeoutS: 60 });
    const without = minions.filter((m) => !(Array.isArray(fns[m.id]) && (fns[m.id] as string[]).includes('kube_allowlist.apply')));
    if (without.length)
      throw new Error(
        `kube_allowlist is not loaded on ${without.map((m) => m.id).join(', ')} (is saltext.kube_allowlist installed in the Salt venv?): ${JSON.stringify(fns)}`,
      );
  }

  let api: Daemon | undefined;
  const startApi = async () => {
    api = startDaemon('salt-api', bins['salt-api']!, ['-c', configDir, '-l', 'warning'], { logFile: join(dir, 'api.out') });
    const started = api;
    const ca = readFileSync(pki.caCrt);
    const { request } = await import('node:https');
    await waitFor(
      'salt-api to answer over TLS',
      () =>
        new Promise<boolean>((resolve, reject) => {
          if (started.exited()) return reject(new Error(`salt-api exited\n${tail(started.logFile)}`));
          const r = request({ host: '127.0.0.1', port: apiPort, path: '/', ca, timeout: 2000 }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          });
          r.on('error', () => resolve(false));
          r.on('timeout', () => r.destroy());
          r.end();
        }),
      60_000,
      300,
    );
  };
  await startApi();

  const writePillar = (perMinion: Record<string, unknown>) => {
    const top: Record<string, string[]> = {};
    for (const [id, data] of Object.entries(perMinion)) {
      const name = `m_${id.replace(/[^a-z0-9]/gi, '_')}`;
      writeFileSync(join(pillarDir, `${name}.sls`), yamlish(data));
      top[id] = [name];
    }
    writeFileSync(join(pillarDir, 'top.sls'), yamlish({ base: top }));
  };

  // token_dir defaults to <cachedir>/tokens, cachedir to <root_dir>/var/cache/salt/master.
  const tokenDir =
    ((master as Record<string, unknown>)['token_dir'] as string | undefined) ??
    join(((master as Record<string, unknown>)['cachedir'] as string | undefined) ?? join(rootDir, 'var', 'cache', 'salt', 'master'), 'tokens');
  const tokenSuffix = version.major >= 3008 ? '.p' : '';
  return {
    configDir,
    apiUrl: `https://127.0.0.1:${apiPort}`,
    apiCaFile: pki.caCrt,
    admin,
    bridge,
    bridgeAcl,
    bridgeAclSource,
    version,
    rootDir,
    tokenDir,
    address,
    pkiDir: masterPkiDir,
    pillarDir,
    tokens() {
      if (!existsSync(tokenDir)) return [];
      return readdirSync(tokenDir)
        .filter((f) => f.endsWith(tokenSuffix) && !f.startsWith('.'))
        .map((f) => ({ token: f.slice(0, f.length - tokenSuffix.length), file: join(tokenDir, f) }));
    },
    minions,
    salt,
    async saltRun(fun, args = []) {
      const r = await cli('salt-run', [fun, ...args, '--out=json']);
      if (r.code !== 0) throw new Error(`salt-run ${fun} exited ${r.code}: ${r.stderr || r.stdout}`);
      return JSON.parse(r.stdout || 'null') as unknown;
    },
    cli,
    events,
    waitForEvent(what, match, timeoutMs = 30_000) {
      const found = events.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const e = events.find(match);
          if (e) {
            done();
            resolve(e);
          }
        };
        const t = setTimeout(() => {
          done();
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for event: ${what} (saw ${events.length} events; last tags: ${events
                .slice(-8)
                .map((e) => e.tag)
                .join(', ')})`,
            ),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(t);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    async setPillar(perMinion) {
      writePillar(perMinion);
      const r = await salt('*', 'saltutil.refresh_pillar', ['wait=True'], { timeoutS: 60 });
      const missing = minions.filter((m) => r[m.id] !== true).map((m) => m.id);
      if (missing.length) throw new Error(`pillar refresh failed on ${missing.join(', ')}: ${JSON.stringify(r)}`);
    },
    async restartApi() {
      await api?.stop();
      await startApi();
    },
    async stopMaster() {
      try {
        process.kill(-(busProc?.pid ?? 0), 'SIGKILL');
      } catch {
        /* gone */
      }
      await api?.stop();
      await masterD.stop(10_000);
    },
    async stop() {
      try {
        process.kill(-(busProc?.pid ?? 0), 'SIGKILL');
      } catch {
        /* gone */
      }
      await api?.stop();
      for (const m of minions) await m.stop();
      await masterD.stop(10_000);
      if (addedAddress) await run('ip', ['addr', 'del', `${address}/32`, 'dev', lab.bridge]);
    },
  };
}

// The container image as an operator runs it: built from the unchanged Dockerfile by
// scripts/build-image.sh (debootstrap base + buildah), then run with podman against the real
// kube-apiserver and salt-api: read-only root file system, config and secrets mounted read-only,
// the state directory a volume, as the image's own non-root user, tini as PID 1.
//
// podman in this sandbox: the OCI runtime gets EPERM raising (or even keeping) the sandbox's own
// rlimits, so every container gets explicit lower ones (--ulimit); runc, not crun, because crun
// refuses a cgroup v1 host whose cgroup2 mount has a controller (hybrid mode); cgroupfs because
// there is no systemd, which also means no healthcheck timers: the HEALTHCHECK is run with
// `podman healthcheck run`, which is what those timers do. The host network lets the bridge reach
// the test stack on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack } from '../harness/salt.ts';
import { writeBridgeConfig } from '../harness/bridge.ts';
import { ROOT, requireTools } from '../harness/tools.ts';
import { run, must, stopInOrder, waitFor, workDir } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys();
const UID = 10001;
const LABEL = 'ksb-test-run';
const TAG = 'kube-salt-bridge/cluster/alpha/nodes';

let image: string;
let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let etcDir: string;
let stateDir: string;
let port: number;
const started = new Set<string>();

/** Containers of test runs that are gone (a crashed run), and ours at exit. */
function removeContainers(all: boolean): void {
  const r = spawnSync('podman', [...PODMAN_GLOBAL, 'ps', '-a', '--filter', `label=${LABEL}`, '--format', `{{.Names}} {{index .Labels "${LABEL}"}}`], {
    encoding: 'utf8',
  });
  for (const line of (r.stdout ?? '').split('\n').filter(Boolean)) {
    const [name, owner] = line.split(' ');
    const alive = (() => {
      try {
        process.kill(Number(owner), 0);
        return true;
      } catch {
        return false;
      }
    })();
    if (all ? Number(owner) === process.pid : !alive) spawnSync('podman', [...PODMAN_GLOBAL, 'rm', '-f', '-t', '0', name!], { stdio: 'ignore' });
  }
}
process.on('exit', () => {
  if (started.size > 0) removeContainers(true);
});

/** 4096, or less when this sandbox's hard limit is lower (see the header). */
function ulimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  const hard = Number(line?.slice(26).trim().split(/\s+/)[1]);
  return Number.isFinite(hard) ? Math.min(4096, Math.floor(hard / 2)) : 4096;
}

/** podman with the runtime and cgroup manager this sandbox supports (see the header). */
const PODMAN_GLOBAL = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
const podman = (args: string[], timeoutMs = 60_000) => run('podman', [...PODMAN_GLOBAL, ...args], { timeoutMs });

let seq = 0;
function podmanRunArgs(extra: string[], args: string[]): { name: string; argv: string[] } {
  const name = `ksb-test-${process.pid}-${++seq}`;
  const nofile = ulimit('Max open files');
  const nproc = ulimit('Max processes');
  return {
    name,
    argv: [
      ...PODMAN_GLOBAL,
      'run',
      '--rm',
      '--pull=never',
      '--name',
      name,
      '--label',
      `${LABEL}=${process.pid}`,
      '--network=host',
      '--ulimit',
      `nofile=${nofile}:${nofile}`,
      '--ulimit',
      `nproc=${nproc}:${nproc}`,
      // Strictly read-only, as Docker's --read-only (podman would add tmpfs on /tmp, /var/tmp, /run).
      '--read-only',
      '--read-only-tmpfs=false',
      '-v',
      `${etcDir}:/etc/kube-salt-bridge:ro`,
      '-v',
      `${stateDir}:/var/lib/kube-salt-bridge`,
      ...extra,
      image,
      ...args,
    ],
  };
}

/** `podman run … IMAGE args` to completion. */
async function runImage(args: string[], extra: string[] = [], timeoutMs = 90_000) {
  const { name, argv } = podmanRunArgs(extra, args);
  started.add(name);
  try {
    return await run('podman', argv, { timeoutMs });
  } finally {
    spawnSync('podman', [...PODMAN_GLOBAL, 'rm', '-f', '-t', '0', name], { stdio: 'ignore' });
    started.delete(name);
  }
}

/**
 * The harness's bridge config rewritten the way an operator mounts it: every file it names copied
 * under etcDir (mounted at /etc/kube-salt-bridge), secrets readable by the image's group only,
 * state in the volume.
 */
/** The parts of writeBridgeConfig's file that move to the image's layout. */
interface ConfigFile {
  salt: { passwordFile: string; caFile: string };
  signing: { keyFile: string };
  http: { tokenFile: string };
  clusters: Array<{ kubeconfig: string }>;
  state: { dir: string };
  log: { level: string };
}

async function writeContainerConfig(): Promise<void> {
  const { file, port: p } = await writeBridgeConfig({ clusters: [{ name: 'alpha', kube, families: ['ipv4'] }], salt, privateKey: KEYS.privateText });
  port = p;
  const config = JSON.parse(readFileSync(file, 'utf8')) as ConfigFile;
  etcDir = workDir('image-etc');
  stateDir = workDir('image-state');
  mkdirSync(join(etcDir, 'secrets'), { recursive: true });
  const place = (from: string, rel: string, secret: boolean): string => {
    const to = join(etcDir, rel);
    copyFileSync(from, to);
    chownSync(to, 0, UID);
    chmodSync(to, secret ? 0o440 : 0o444);
    return `/etc/kube-salt-bridge/${rel}`;
  };
  config.salt.passwordFile = place(config.salt.passwordFile, 'secrets/salt-api-password', true);
  config.salt.caFile = place(config.salt.caFile, 'salt-api-ca.pem', false);
  config.signing.keyFile = place(config.signing.keyFile, 'secrets/signing-key', true);
  config.http.tokenFile = place(config.http.tokenFile, 'secrets/http-token', true);
  config.clusters[0]!.kubeconfig = place(config.clusters[0]!.kubeconfig, 'secrets/alpha.kubeconfig', true);
  config.state.dir = '/var/lib/kube-salt-bridge';
  config.log.level = 'info';
  writeFileSync(join(etcDir, 'config.yaml'), JSON.stringify(config, null, 2));
  for (const d of [etcDir, join(etcDir, 'secrets')]) {
    chownSync(d, 0, UID);
    chmodSync(d, 0o750);
  }
  chmodSync(join(etcDir, 'config.yaml'), 0o444);
  chownSync(stateDir, UID, UID);
  chmodSync(stateDir, 0o700);
}

function assertNoSecrets(text: string): void {
  for (const s of [salt.bridge.password, KEYS.privateText, KEYS.privateHex])
    assert.ok(!text.includes(s), `output must not contain the secret ${s.slice(0, 6)}…`);
}

before(
  async () => {
    requireTools(['podman', 'runc', 'buildah', 'debootstrap']);
    removeContainers(false);
    const t0 = Date.now();
    const built = await run('bash', [join(ROOT, 'scripts', 'build-image.sh')], { timeoutMs: 900_000 });
    assert.equal(built.code, 0, `scripts/build-image.sh failed:\n${built.stderr.slice(-6000)}`);
    image = built.stdout.trim().split('\n').pop()!;
    process.stderr.write(
      `# image ${image} built in ${Math.round((Date.now() - t0) / 1000)}s\n${built.stderr
        .split('\n')
        .filter((l) => l.startsWith('[image]'))
        .map((l) => `# ${l}`)
        .join('\n')}\n`,
    );
    kube = await startKube('image');
    lab = await startLab();
    salt = await startSalt(lab, { minions: 0 });
    await kube.createNode('i1', [{ type: 'InternalIP', address: '10.40.0.1' }]);
    await kube.createNode('i2', [{ type: 'InternalIP', address: '10.40.0.2' }]);
    await writeContainerConfig();
  },
  { timeout: 1_200_000 },
);

after(async () => {
  removeContainers(true);
  await stopInOrder(salt, lab, kube);
});

test('the image: non-root, tini, healthcheck on loopback, a state volume, only the built bridge and its production dependencies', async () => {
  const inspect = JSON.parse(await must('podman', [...PODMAN_GLOBAL, 'image', 'inspect', image])) as Array<{
    Config: { User: string; Entrypoint: string[]; Cmd: string[]; Volumes?: Record<string, unknown>; Env: string[] };
    Healthcheck?: { Test?: string[] };
  }>;
  const c = inspect[0]!.Config;
  const healthcheck = inspect[0]!.Healthcheck;
  assert.equal(c.User, `${UID}:${UID}`, 'a numeric non-root user (runAsNonRoot can check it)');
  assert.deepEqual(c.Entrypoint, ['/usr/bin/tini', '--', 'node', '--max-semi-space-size=1', '/app/dist/main.js']);
  assert.deepEqual(c.Cmd, ['run', '--config', '/etc/kube-salt-bridge/config.yaml']);
  assert.ok(Object.keys(c.Volumes ?? {}).includes('/var/lib/kube-salt-bridge'));
  assert.ok(!c.Env.some((e) => e.startsWith('NODE_EXTRA_CA_CERTS')), 'the build-time CA setting stays in the build steps');

  const mnt = (await must('podman', [...PODMAN_GLOBAL, 'image', 'mount', image])).trim();
  try {
    assert.deepEqual(readdirSync(join(mnt, 'app')).sort(), ['LICENSE', 'dist', 'node_modules', 'package.json']);
    assert.ok(existsSync(join(mnt, 'app', 'dist', 'main.js')));
    assert.ok(!existsSync(join(mnt, 'app', 'src')), 'no TypeScript sources');
    for (const dev of ['typescript', '@types/ws']) assert.ok(!existsSync(join(mnt, 'app', 'node_modules', dev)), `no dev dependency ${dev}`);
    assert.ok(existsSync(join(mnt, 'app', 'node_modules', 'prom-client')), 'production dependencies are there');
    assert.deepEqual(
      readdirSync(join(mnt, 'run')).filter((f) => f !== 'lock'),
      [],
      'nothing under /run: the build CA bundle was a build secret',
    );
    for (const f of ['root/.npmrc', 'app/.npmrc', 'etc/kube-salt-bridge/config.yaml', 'etc/kube-salt-bridge/secrets'])
      assert.ok(!existsSync(join(mnt, f)), `no ${f} in the image`);
    const state = statSync(join(mnt, 'var', 'lib', 'kube-salt-bridge'));
    assert.equal(state.uid, UID, 'a new volume takes the state dir owner from the image');
    assert.equal(state.mode & 0o777, 0o700);
    assert.notEqual(statSync(join(mnt, 'app', 'dist')).uid, UID, 'the code is not writable by the user that runs it');
    assert.ok(existsSync(join(mnt, 'usr', 'bin', 'tini')));
  } finally {
    await podman(['image', 'unmount', image]);
  }
  assert.equal(healthcheck?.Test?.[0], 'CMD', 'a HEALTHCHECK (the image is built in docker format, which keeps it)');
  assert.match(healthcheck.Test.join(' '), /http:\/\/127\.0\.0\.1:9540\/healthz/, 'an IP literal in Host, which the bridge accepts');
});

test('--version prints the package version from inside the image', async () => {
  const r = await runImage(['--version']);
  assert.equal(r.code, 0, r.stderr);
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(r.stdout.trim(), version);
});

test('check from the image against the real kube-apiserver and salt-api: every line OK', async () => {
  const r = await runImage(['check']);
  assert.equal(r.code, 0, `check failed:\n${r.stdout}\n${r.stderr}`);
  const ok = (what: RegExp) => assert.match(r.stdout, new RegExp(`^\\S.*\\s+OK\\s+${what.source}`, 'm'), `an OK line for ${what}`);
  ok(/credentials: server https:\/\/127\.0\.0\.1:\d+/);
  ok(/list nodes: 2 node\(s\)/);
  ok(/watch nodes: stream opened/);
  ok(/login as kube-salt-bridge \(eauth file\)/);
  ok(/fire event kube-salt-bridge\/check .*permitted/);
  ok(/event stream open/);
  ok(new RegExp(`Ed25519 key id ${KEYS.keyId}`));
  assert.doesNotMatch(r.stdout, /\bFAIL\b/);
  assertNoSecrets(r.stdout + r.stderr);
});

test('a bad config from the image exits 2 and names the field', async () => {
  const bad = JSON.parse(readFileSync(join(etcDir, 'config.yaml'), 'utf8')) as ConfigFile;
  bad.clusters[0]!.kubeconfig = '/etc/kube-salt-bridge/secrets/missing.kubeconfig';
  writeFileSync(join(etcDir, 'bad.yaml'), JSON.stringify(bad));
  chmodSync(join(etcDir, 'bad.yaml'), 0o444);
  const r = await runImage(['check', '--config', '/etc/kube-salt-bridge/bad.yaml']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /clusters\[0\]\.kubeconfig/);
});

test('run from the image: read-only root, publishes, persists into the volume, healthy, stops cleanly on SIGTERM through tini', async () => {
  const { name, argv } = podmanRunArgs(['-e', `KSB_HEALTHCHECK_URL=http://127.0.0.1:${port}/healthz`], []);
  started.add(name);
  const since = salt.events.length;
  let out = '';
  const child: ChildProcess = spawn('podman', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor(
      'the containerized bridge /readyz',
      async () => {
        if (child.exitCode !== null) throw new Error(`podman run exited ${child.exitCode}:\n${out.slice(-4000)}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok;
      },
      90_000,
      300,
    );

    const ev = await salt.waitForEvent('the published node list', (e) => salt.events.indexOf(e) >= since && e.tag === TAG, 30_000);
    assert.deepEqual(ev.data.ipv4, ['10.40.0.1', '10.40.0.2']);

    const exec = (cmd: string) => podman(['exec', name, 'sh', '-c', cmd], 30_000);
    assert.equal((await exec('cat /proc/1/comm')).stdout.trim(), 'tini', 'tini is PID 1');
    const procs = (await exec('for p in /proc/[0-9]*; do echo "$(cat $p/comm) $(stat -c %u $p)"; done')).stdout;
    assert.match(procs, new RegExp(`^node ${UID}$`, 'm'), `the bridge runs as ${UID}:\n${procs}`);
    assert.doesNotMatch(procs, /^\S+ 0$/m, `nothing in the container runs as root:\n${procs}`);
    for (const path of ['/app/written', '/tmp/written', '/etc/kube-salt-bridge/written']) {
      const w = await exec(`echo x > ${path}`);
      assert.notEqual(w.code, 0, `${path} must not be writable`);
      assert.match(w.stderr, /Read-only file system/, w.stderr);
    }

    await waitFor('the generation persisted in the state volume', () => existsSync(join(stateDir, 'alpha.json')), 20_000);
    const persisted = JSON.parse(readFileSync(join(stateDir, 'alpha.json'), 'utf8')) as { generation: number; ipv4: string[] };
    assert.equal(persisted.generation, ev.data.generation, 'the state volume holds the published generation');
    assert.deepEqual(persisted.ipv4, ['10.40.0.1', '10.40.0.2']);
    assert.equal(statSync(join(stateDir, 'alpha.json')).uid, UID);

    const health = await podman(['healthcheck', 'run', name], 30_000);
    assert.equal(health.code, 0, `the image's HEALTHCHECK: ${health.stdout}${health.stderr}`);

    const stop = await podman(['stop', '-t', '30', name]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await exited, 0, `SIGTERM to tini reaches the bridge, which exits 0 (not killed):\n${out.slice(-3000)}`);
    assert.match(out, /"msg":"stopping: closing watches and streams/);
    assert.match(out, /"msg":"stopped"/);
    assertNoSecrets(out);
  } finally {
    if (child.exitCode === null) spawnSync('podman', [...PODMAN_GLOBAL, 'rm', '-f', '-t', '0', name], { stdio: 'ignore' });
    started.delete(name);
  }
});

// The docker-compose stack, as far as this machine (no Docker engine, no registry) can take it:
// Debian's docker-compose resolves and validates docker-compose.yml; deploy/compose/init.sh makes
// every secret it names, with keys the bridge itself accepts; the bridge image loads the stack's
// config with exactly those mounts; the stack's RBAC manifest is applied to a real kube-apiserver,
// which then grants the bridge's user what it needs and nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { ROOT, requireTools } from '../harness/tools.ts';
import { must, run, stopInOrder } from '../harness/proc.ts';
import type { ComposeFile } from '../harness/compose.ts';
import { parseKeyText, signerFromSeed } from '../../src/plan/keys.ts';

let compose: ComposeFile;
let out: string;
let kube: KubeCluster | undefined;
const SECRETS = () => join(out, 'secrets');

before(
  async () => {
    requireTools(['docker-compose', 'openssl', 'podman', 'runc']);
    // The whole file, every profile included.
    const r = await run('docker-compose', ['--project-directory', ROOT, '-f', join(ROOT, 'docker-compose.yml'), '--profile', 'monitoring', 'config'], {
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, `docker-compose config failed:\n${r.stderr}`);
    compose = parse(r.stdout) as ComposeFile;
    out = mkdtempSync(join(tmpdir(), 'ksb-compose-'));
    const init = await run('bash', [join(ROOT, 'deploy', 'compose', 'init.sh'), out], { timeoutMs: 60_000 });
    assert.equal(init.code, 0, init.stderr);
  },
  { timeout: 120_000 },
);

after(async () => {
  if (out) rmSync(out, { recursive: true, force: true });
  await stopInOrder(kube);
});

test('docker-compose config: the stack is complete and valid', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), [
    'grafana',
    'k3s',
    'k3s-ca',
    'kube-salt-bridge',
    'minion-1',
    'minion-2',
    'prometheus',
    'redis-1',
    'redis-2',
    'salt-api',
    'salt-master',
  ]);
  const s = compose.services;
  assert.match(s.k3s!.image ?? '', /^docker\.io\/rancher\/k3s:v1\.35\./, 'k3s of the Kubernetes minor the tests use');
  assert.equal(s.k3s!.privileged, true);
  for (const m of ['minion-1', 'minion-2']) {
    assert.deepEqual(s[m]!.cap_add, ['NET_ADMIN'], `${m} may change its own firewall`);
    assert.equal(s[m]!.build?.dockerfile, 'deploy/compose/salt/Dockerfile');
  }
  assert.equal(s['redis-1']!.network_mode, 'service:minion-1', "redis-1 sits behind minion-1's firewall");
  assert.equal(s['salt-api']!.network_mode, 'service:salt-master', "salt-api reaches the master's request port on its own address");
  assert.deepEqual(s['salt-master']!.networks?.default?.aliases, ['salt-api'], "the name in the bridge's salt.url and salt-api's certificate");
  assert.equal(s['redis-2']!.network_mode, 'service:minion-2');
  const bridge = s['kube-salt-bridge']!;
  assert.equal(bridge.build?.dockerfile, 'Dockerfile');
  assert.equal(bridge.read_only, true);
  assert.deepEqual(bridge.cap_drop, ['ALL']);
  assert.equal(bridge.depends_on?.['k3s-ca']?.condition, 'service_completed_successfully');
});

test('credentials are compose secrets only: none in the environment, ports only on loopback', () => {
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const [k, v] of Object.entries(svc.environment ?? {})) {
      if (/PASSWORD|TOKEN|SECRET|KEY/i.test(k)) assert.match(k, /__FILE$|_FILE$/, `${name}: ${k} must name a file, not hold a secret`);
      assert.ok(!String(v).includes('BEGIN'), `${name}: ${k}`);
    }
    for (const p of svc.ports ?? []) {
      const text = typeof p === 'string' ? p : JSON.stringify(p);
      assert.match(text, /127\.0\.0\.1/, `${name} publishes ${text} beyond loopback`);
    }
  }
  const used = new Set(
    Object.values(compose.services).flatMap((svc) =>
      ((svc.secrets ?? []) as Array<string | { source: string }>).map((x) => (typeof x === 'string' ? x : x.source)),
    ),
  );
  assert.deepEqual([...used].sort(), Object.keys(compose.secrets).sort(), 'every secret is used, every used secret declared');
  const files = Object.values(compose.secrets)
    .map((x) => basename(x.file))
    .sort();
  assert.deepEqual(readdirSync(SECRETS()).sort(), files, 'init.sh makes exactly the files the secrets name');
  for (const x of Object.values(compose.secrets)) assert.ok(x.file.startsWith(join(ROOT, 'deploy', 'compose', 'secrets') + '/'), x.file);
});

test('every file the stack mounts from this repository exists (Salt content, configs, dashboards)', () => {
  const generated = join(ROOT, 'deploy', 'compose', 'generated');
  let n = 0;
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const v of (svc.volumes ?? []) as Array<string | { type: string; source: string }>) {
      const source = typeof v === 'string' ? v.split(':')[0]! : v.source;
      if (!source.startsWith('/')) continue; // a named volume
      if (source.startsWith(generated)) continue; // made by init.sh
      n++;
      assert.ok(existsSync(source), `${name} mounts ${source}, which does not exist`);
    }
  }
  assert.ok(n >= 15, `${n} bind mounts`);
  for (const f of ['reactor/kube_allowlist.sls', 'kube_allowlist/init.sls']) assert.ok(existsSync(join(ROOT, 'salt', 'file_roots', f)), f);
  const master = compose.services['salt-master']!.volumes as Array<string | { target: string }>;
  const targets = master.map((v) => (typeof v === 'string' ? v.split(':')[1] : v.target));
  assert.ok(targets.includes('/srv/salt') && targets.includes('/etc/salt/master.d/reactor.conf') && targets.includes('/etc/salt/master.d/eauth.conf'));
});

test('init.sh: secrets with safe modes, consistent with each other, never overwritten', async () => {
  assert.equal(statSync(SECRETS()).mode & 0o777, 0o700);
  const read = (f: string) => readFileSync(join(SECRETS(), f), 'utf8');
  const mode = (f: string) => statSync(join(SECRETS(), f)).mode & 0o777;
  for (const f of ['salt-api-users', 'salt-api.key', 'k3s-token-auth']) assert.equal(mode(f), 0o400, f);
  for (const f of ['salt-api-password', 'signing-key', 'http-token', 'kube-token', 'salt-api-ca.crt']) {
    // Made as root: group 10001 (the bridge's), not world-readable.
    assert.equal(mode(f), 0o440, `${f}: the bridge (gid 10001) reads it`);
    assert.equal(statSync(join(SECRETS(), f)).gid, 10001, f);
  }

  const password = read('salt-api-password').replace(/\n$/, '');
  assert.match(password, /^[0-9a-f]{64}$/);
  assert.equal(read('salt-api-users'), `kube-salt-bridge:${createHash('sha256').update(password).digest('hex')}\n`, "eauth.conf's file format and hash");
  assert.equal(read('k3s-token-auth'), `${read('kube-token').trim()},kube-salt-bridge,kube-salt-bridge\n`);
  await must('openssl', ['verify', '-CAfile', join(SECRETS(), 'salt-api-ca.crt'), join(SECRETS(), 'salt-api.crt')]);
  assert.match(await must('openssl', ['x509', '-in', join(SECRETS(), 'salt-api.crt'), '-noout', '-ext', 'subjectAltName']), /DNS:salt-api\b/);

  const key = parseKeyText(read('signing-key'));
  assert.ok(key.ok, 'the bridge parses the signing key');
  const signer = signerFromSeed(key.raw);
  const pillar = readFileSync(join(out, 'generated', 'pillar', 'kube_allowlist_keys.sls'), 'utf8');
  assert.deepEqual(parse(pillar), { kube_allowlist: { public_keys: [signer.publicKey] } }, 'the pillar holds the public key of that private key');
  assert.ok(pillar.includes(`key id ${signer.keyId}`));
  assert.ok(!pillar.includes(read('signing-key').trim()), 'never the private key');

  const before = Object.fromEntries(readdirSync(SECRETS()).map((f) => [f, read(f)]));
  const again = await run('bash', [join(ROOT, 'deploy', 'compose', 'init.sh'), out]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /all secrets already exist/);
  assert.deepEqual(Object.fromEntries(readdirSync(SECRETS()).map((f) => [f, read(f)])), before);
  assert.ok(!again.stdout.includes(read('signing-key').trim()) && !again.stdout.includes(password), 'init.sh prints no secret');
});

test("the bridge image loads the stack's config with the stack's mounts: valid (exit 1 for the unreachable services, not 2), the key id of the pillar", async () => {
  const built = await run('bash', [join(ROOT, 'scripts', 'build-image.sh')], { timeoutMs: 900_000 });
  assert.equal(built.code, 0, built.stderr.slice(-4000));
  const image = built.stdout.trim().split('\n').pop()!;
  const bridge = compose.services['kube-salt-bridge']!;
  const mounts: string[] = [];
  for (const v of bridge.volumes ?? []) {
    const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
    if (target === '/run/ksb-kube')
      mounts.push('-v', `${join(SECRETS(), 'salt-api-ca.crt')}:/run/ksb-kube/server-ca.crt:ro`); // a CA file k3s-ca would copy
    else if (source!.startsWith('/')) mounts.push('-v', `${source}:${target}:ro`);
  }
  for (const s of bridge.secrets ?? []) {
    const name = typeof s === 'string' ? s : s.source;
    mounts.push('-v', `${join(SECRETS(), basename(compose.secrets[name]!.file))}:/run/secrets/${name}:ro`);
  }
  const env = Object.entries(bridge.environment ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const r = await run(
    'podman',
    [
      '--runtime',
      'runc',
      '--cgroup-manager',
      'cgroupfs',
      'run',
      '--rm',
      '--pull=never',
      '--network=none',
      '--ulimit',
      'nofile=4096:4096',
      '--ulimit',
      'nproc=4096:4096',
      '--read-only',
      '--read-only-tmpfs=false',
      ...mounts,
      ...env,
      image,
      'check',
      '--timeout',
      '3',
    ],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.code, 1, `check must load the config and fail only on connectivity:\n${r.stdout}\n${r.stderr}`);
  const key = signerFromSeed((parseKeyText(readFileSync(join(SECRETS(), 'signing-key'))) as { raw: Buffer }).raw);
  assert.match(r.stdout, new RegExp(`OK\\s+.*Ed25519 key id ${key.keyId}`), r.stdout);
  assert.match(r.stdout, /cluster local\s+FAIL/, r.stdout);
  assert.match(r.stdout, /salt-api\s+FAIL/, r.stdout);
  assert.doesNotMatch(r.stdout, /world-readable/, "init.sh's modes give the bridge no warning");
  for (const f of ['salt-api-password', 'signing-key', 'http-token', 'kube-token'])
    assert.ok(!(r.stdout + r.stderr).includes(readFileSync(join(SECRETS(), f), 'utf8').trim()), `no ${f} in the output`);
});

test("the stack's RBAC manifest on a real kube-apiserver: the bridge's user may get, list and watch Nodes and nothing else", async () => {
  kube = await startKube('compose');
  for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'compose', 'k3s', 'rbac.yaml'), 'utf8'))) {
    const o = doc.toJSON() as { kind: string };
    const plural = o.kind === 'ClusterRole' ? 'clusterroles' : 'clusterrolebindings';
    await kube.admin.req('POST', `/apis/rbac.authorization.k8s.io/v1/${plural}`, o);
  }
  const can = async (verb: string, resource: string, namespace?: string) => {
    const review = await kube!.admin.req<{ status: { allowed: boolean } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: 'kube-salt-bridge', resourceAttributes: { verb, resource, ...(namespace ? { namespace } : {}) } },
    });
    return review.status.allowed;
  };
  for (const verb of ['get', 'list', 'watch']) assert.equal(await can(verb, 'nodes'), true, `${verb} nodes`);
  for (const [verb, resource, ns] of [
    ['patch', 'nodes'],
    ['delete', 'nodes'],
    ['list', 'secrets', 'kube-system'],
    ['list', 'pods'],
    ['create', 'leases', 'default'],
  ] as const) {
    assert.equal(await can(verb, resource, ns), false, `${verb} ${resource} must be denied`);
  }
});

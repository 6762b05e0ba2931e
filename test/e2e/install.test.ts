// Installing the bridge the ways operators do, each exercised for real against one real stack
// (kube-apiserver + etcd, salt-master + salt-api):
// - the npm package: `npm pack` (which builds dist/), installed from the tarball into empty
//   prefixes, locally and globally; the installed command's --help, --version and `check`;
// - the systemd unit: the path of its ExecStart is where a global install puts the command;
// - deploy/kubernetes: every object created through the API (strict fields, PodSecurity
//   "restricted"), two replicas of the Deployment run as pods from the globally installed
//   package (test/harness/pod.ts) with the ServiceAccount's token: they list and watch the nodes,
//   one takes the Lease and publishes, the other takes over when it stops; and the same token can
//   do nothing else (SelfSubjectAccessReview and real requests).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, BRIDGE_SALT_USER, type SaltStack } from '../harness/salt.ts';
import { waitForAllowList } from '../harness/bus.ts';
import { writeBridgeConfig } from '../harness/bridge.ts';
import { ROOT } from '../harness/tools.ts';
import { must, run, stopInOrder, waitFor, workDir } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';
import { Api, imageConfig, renderKustomization, runPod, type Image, type Obj, type PodProc } from '../harness/pod.ts';
import { verifyPayload } from '../../src/plan/index.ts';
import type { V1PodSpec } from '@kubernetes/client-node';

const KEYS = testKeys('install tests');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const NS = 'kube-salt-bridge';
const CLUSTER = 'incluster';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
const HTTP_TOKEN = 'install-test-http-token-0123456789abcdef';
const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/kube-salt-bridge`;
// The test's node first on PATH: the installed command's `#!/usr/bin/env node` must find Node 22.
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let admin: Api;
let tarball: string;
let localPrefix: string;
let globalPrefix: string;
let objects: Obj[];

/** The manifests' kinds as far as these tests read them. */
type ConfigMapObj = Obj & { data: Record<string, string> };
type DeploymentObj = Obj & { spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: V1PodSpec } } };
/** The bridge's config.yaml in the ConfigMap: the fields these tests read or set. */
interface ConfigYaml {
  salt: { url: string; username: string; passwordFile: string; caFile: string };
  signing: { keyFile: string };
  http: { tokenFile: string };
  leaderElection: { enabled: boolean };
  clusters: Array<{ name: string; inCluster?: boolean }>;
}
const configYaml = (o: Obj): ConfigYaml => parse((o as ConfigMapObj).data['config.yaml']!) as ConfigYaml;
const pods: PodProc[] = [];
const timings: Record<string, number> = {};

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings[label] = (Date.now() - t0) / 1000;
  }
}

async function npm(args: string[], cwd: string): Promise<string> {
  const r = await run('bash', ['-c', `cd ${JSON.stringify(cwd)} && exec npm "$@"`, 'npm', ...args], { env: { ...process.env, PATH }, timeoutMs: 300_000 });
  assert.equal(r.code, 0, `npm ${args.join(' ')}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** Packs the working tree (prepack builds dist/) and installs the tarball into two empty prefixes. */
async function packAndInstall(): Promise<void> {
  const dir = workDir('npm');
  const out = await timed('npm pack (build)', () => npm(['pack', '--pack-destination', dir, '--json'], ROOT));
  const [info] = JSON.parse(out) as Array<{ filename: string }>;
  tarball = join(dir, basename(info!.filename));
  localPrefix = join(dir, 'local');
  globalPrefix = join(dir, 'global');
  await timed('npm install (local + global)', () =>
    Promise.all([
      npm(['install', '--prefix', localPrefix, '--no-audit', '--no-fund', tarball], dir),
      npm(['install', '--global', '--prefix', globalPrefix, '--no-audit', '--no-fund', tarball], dir),
    ]),
  );
}

function runInstalled(bin: string, args: string[], timeoutMs = 60_000) {
  return run(bin, args, { env: { PATH, HOME: process.env.HOME ?? '/root' }, timeoutMs });
}

function assertNoSecrets(text: string, extra: string[] = []): void {
  for (const s of [salt.bridge.password, KEYS.privateText, KEYS.privateHex, HTTP_TOKEN, ...extra]) {
    assert.ok(!text.includes(s), `output must not contain the secret ${s.slice(0, 6)}…`);
  }
}

before(
  async () => {
    await timed('stack + package', () =>
      Promise.all([
        (async () => {
          kube = await startKube('install');
        })(),
        (async () => {
          lab = await startLab();
          salt = await startSalt(lab, { minions: 0 });
        })(),
        packAndInstall(),
      ]),
    );
    admin = Api.admin(kube);
    await kube.createNode('n1', [{ type: 'InternalIP', address: '10.40.0.1' }]);
    await kube.createNode('n2', [{ type: 'InternalIP', address: '10.40.0.2' }]);
  },
  { timeout: 600_000 },
);

after(async () => {
  for (const p of pods.splice(0)) await p.stop();
  await stopInOrder(salt, lab, kube);
  console.log(`# install test timings (s): ${JSON.stringify(timings)}`);
});

test('npm package: the tarball holds what runs, not the sources or tests', async () => {
  const list = (await must('tar', ['-tzf', tarball])).split('\n').filter(Boolean);
  for (const f of [
    'package.json',
    'README.md',
    'LICENSE',
    'bin/kube-salt-bridge.js',
    'dist/main.js',
    'dist/cli.js',
    'dist/main.d.ts',
    'dist/config/index.js',
    'examples/config.yaml',
    'deploy/systemd/kube-salt-bridge.service',
    'deploy/systemd/config.yaml',
    'deploy/kubernetes/kustomization.yaml',
  ]) {
    assert.ok(list.includes(`package/${f}`), `the tarball has ${f}`);
  }
  assert.ok(list.some((f) => /^package\/salt\/.*\.py$/.test(f)) && list.some((f) => /^package\/salt\/.*\.sls$/.test(f)), 'the Salt content');
  const unwanted = list.filter(
    (f) =>
      /^package\/(src|test|scripts|bench|tools|node_modules|\.tools|deploy\/compose)\//.test(f) ||
      (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)) ||
      f.includes('__pycache__'),
  );
  assert.deepEqual(unwanted, [], 'no sources, tests, tools or caches');
  const manifest = JSON.parse(readFileSync(join(localPrefix, 'node_modules', PKG.name, 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(manifest.private, undefined, 'publishable');
  assert.deepEqual(manifest.bin, { 'kube-salt-bridge': 'bin/kube-salt-bridge.js' });
});

test('npm package: the installed command runs the compiled bridge: --help, --version', async () => {
  for (const bin of [join(localPrefix, 'node_modules', '.bin', 'kube-salt-bridge'), join(globalPrefix, 'bin', 'kube-salt-bridge')]) {
    const v = await runInstalled(bin, ['--version']);
    assert.deepEqual({ code: v.code, out: v.stdout, err: v.stderr }, { code: 0, out: `${PKG.version}\n`, err: '' }, bin);
    const h = await runInstalled(bin, ['--help']);
    assert.equal(h.code, 0, h.stderr);
    for (const cmd of ['run', 'once', 'check', 'keygen', 'status', 'release']) assert.match(h.stdout, new RegExp(`^  ${cmd}\\b`, 'm'), `--help lists ${cmd}`);
    const bad = await runInstalled(bin, ['frobnicate']);
    assert.equal(bad.code, 2, 'usage errors still exit 2');
  }
});

test('npm package: `check` from the installed command passes against the real kube-apiserver and salt-api', async () => {
  const { file } = await writeBridgeConfig({ clusters: [{ name: 'installed', kube }], salt, privateKey: KEYS.privateText });
  const since = salt.events.length;
  const r = await timed('check (installed)', () => runInstalled(join(localPrefix, 'node_modules', '.bin', 'kube-salt-bridge'), ['check', '--config', file]));
  assert.equal(r.code, 0, `check failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /OK\s+list nodes: 2 node\(s\)/);
  assert.match(r.stdout, /OK\s+watch nodes: stream opened/);
  assert.match(r.stdout, new RegExp(`OK\\s+Ed25519 key id ${KEYS.keyId}`));
  assert.match(r.stdout, /all checks passed/);
  await salt.waitForEvent('the check event from the installed command', (e) => salt.events.indexOf(e) >= since && e.tag === 'kube-salt-bridge/check', 20_000);
  assertNoSecrets(r.stdout + r.stderr);
});

test("systemd: the unit's ExecStart is where `npm install --global` puts the command", async () => {
  const unit = readFileSync(join(ROOT, 'deploy', 'systemd', 'kube-salt-bridge.service'), 'utf8');
  const exec = /^ExecStart=(\S+) /m.exec(unit)?.[1];
  assert.equal(exec, '/usr/local/bin/kube-salt-bridge');
  // The same layout under another prefix: <prefix>/bin/kube-salt-bridge.
  const file = join(workDir('systemd'), 'kube-salt-bridge.service');
  writeFileSync(file, unit.replace(`ExecStart=${exec} `, `ExecStart=${join(globalPrefix, 'bin', 'kube-salt-bridge')} `));
  const r = await run('systemd-analyze', ['verify', file]);
  assert.deepEqual({ code: r.code, out: r.stdout + r.stderr }, { code: 0, out: '' });
});

/** What an operator's overlay sets: the salt-api address and the cluster's name. */
function siteOverlay(o: Obj): Obj {
  if (o.kind !== 'ConfigMap') return o;
  const config = configYaml(o);
  config.salt.url = salt.apiUrl;
  config.clusters[0]!.name = CLUSTER;
  return { ...o, data: { ...(o as ConfigMapObj).data, 'config.yaml': stringify(config) } };
}

const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
const deployment = () => byKind('Deployment')[0] as DeploymentObj;

test('kubernetes: the manifests say what the deployment relies on', () => {
  objects = renderKustomization(join(ROOT, 'deploy', 'kubernetes')).map(siteOverlay);
  assert.deepEqual(objects.map((o) => o.kind).sort(), [
    'ClusterRole',
    'ClusterRoleBinding',
    'ConfigMap',
    'Deployment',
    'Namespace',
    'NetworkPolicy',
    'PodDisruptionBudget',
    'Role',
    'RoleBinding',
    'ServiceAccount',
  ]);
  for (const o of objects) if (o.kind !== 'Namespace' && !o.kind.startsWith('Cluster')) assert.equal(o.metadata.namespace, NS, `${o.kind} ${o.metadata.name}`);
  assert.deepEqual(byKind('ClusterRole')[0]!.rules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
  assert.deepEqual(byKind('Role')[0]!.rules, [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);

  const d = deployment();
  const spec = d.spec.template.spec;
  const sc = spec.securityContext!;
  const c = spec.containers[0]!;
  assert.equal(d.spec.replicas, 2);
  assert.equal(c.image, `kube-salt-bridge:${PKG.version}`, 'the image tag is the package version');
  const img = imageConfig(join(ROOT, 'Dockerfile'));
  assert.equal(`${sc.runAsUser}:${sc.runAsGroup}`, img.user, "the pod runs as the image's user");
  assert.equal(c.command, undefined, "the image's entrypoint runs");
  assert.deepEqual({ nonRoot: sc.runAsNonRoot, seccomp: sc.seccompProfile }, { nonRoot: true, seccomp: { type: 'RuntimeDefault' } });
  assert.deepEqual(c.securityContext, {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory, 'requests and limits');
  assert.deepEqual([c.livenessProbe?.httpGet?.path, c.readinessProbe?.httpGet?.path], ['/healthz', '/readyz']);
  const secretVolume = spec.volumes?.find((v) => v.secret);
  assert.ok(secretVolume?.secret, 'a Secret volume');
  assert.equal(secretVolume.secret.defaultMode, 0o400, 'the Secret is mounted 0400');
  const secretMount = c.volumeMounts?.find((m) => m.name === secretVolume.name);
  assert.ok(secretMount, 'the Secret volume is mounted');
  assert.equal(secretMount.readOnly, true, 'read-only');

  const config = configYaml(byKind('ConfigMap')[0]!);
  assert.equal(config.leaderElection.enabled, true, 'leader election on');
  assert.deepEqual(config.clusters, [{ name: CLUSTER, inCluster: true }]);
  const mount = secretMount.mountPath;
  for (const f of [config.salt.passwordFile, config.signing.keyFile, config.http.tokenFile, config.salt.caFile]) {
    assert.equal(dirname(f), mount, `${f} is in the Secret's volume`);
  }
  for (const k of ['password', 'key', 'token']) assert.ok(!(k in config.salt) && !(k in (config.signing ?? {})), `no ${k} in the ConfigMap`);
  assert.equal((byKind('PodDisruptionBudget')[0]!.spec as { minAvailable: number }).minAvailable, 1);
  assert.deepEqual((byKind('NetworkPolicy')[0]!.spec as { policyTypes: string[] }).policyTypes, ['Ingress', 'Egress']);
});

test('kubernetes: the apiserver accepts every object with strict field validation and no PodSecurity warning', async () => {
  assert.ok(objects, 'rendered');
  for (const o of objects) {
    const r = await admin.create(o);
    assert.equal(r.status, 201, `${o.kind} ${o.metadata.name}: ${JSON.stringify(r.body).slice(0, 500)}`);
    assert.deepEqual(r.warnings, [], `${o.kind} ${o.metadata.name}: no warnings`);
  }
  // The same template without its security context is warned about: the check above can fail.
  const weak = structuredClone(deployment());
  weak.metadata.name = 'weak';
  delete weak.spec.template.spec.securityContext;
  delete weak.spec.template.spec.containers[0]!.securityContext;
  const r = await admin.create(weak, '&dryRun=All');
  assert.equal(r.status, 201);
  assert.ok(
    r.warnings.some((w) => /would violate PodSecurity \\?"restricted:/.test(w)),
    `a PodSecurity warning: ${r.warnings.join(' | ')}`,
  );
  const weakPod = await admin.create(
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'weak', namespace: NS }, spec: weak.spec.template.spec },
    '&dryRun=All',
  );
  assert.equal(weakPod.status, 403, 'the namespace enforces "restricted"');
});

/** A TokenRequest for the ServiceAccount of the manifests. */
async function serviceAccountToken(): Promise<string> {
  const sa = byKind('ServiceAccount')[0]!.metadata.name;
  const r = await admin.req<{ status: { token: string } }>('POST', `/api/v1/namespaces/${NS}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.status.token;
}

test('kubernetes: the ServiceAccount can read nodes and keep its Lease, and nothing else', async () => {
  const token = await serviceAccountToken();
  const sa = admin.withToken(token);
  const can = async (a: Record<string, string | undefined>): Promise<boolean> => {
    const r = await sa.req<{ status: { allowed: boolean } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: a },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.status.allowed;
  };
  const allowed = [
    { verb: 'get', resource: 'nodes' },
    { verb: 'list', resource: 'nodes' },
    { verb: 'watch', resource: 'nodes' },
    { verb: 'get', group: 'coordination.k8s.io', resource: 'leases', namespace: NS },
    { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: NS },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: NS },
  ];
  const denied = [
    { verb: 'update', resource: 'nodes' },
    { verb: 'patch', resource: 'nodes' },
    { verb: 'delete', resource: 'nodes' },
    { verb: 'update', resource: 'nodes', subresource: 'status' },
    { verb: 'list', resource: 'pods' },
    { verb: 'list', resource: 'pods', namespace: NS },
    { verb: 'create', resource: 'pods', namespace: NS },
    { verb: 'get', resource: 'secrets', namespace: NS, name: 'kube-salt-bridge' },
    { verb: 'list', resource: 'secrets', namespace: NS },
    { verb: 'list', resource: 'secrets' },
    { verb: 'get', resource: 'configmaps', namespace: NS },
    { verb: 'list', group: 'coordination.k8s.io', resource: 'leases', namespace: NS },
    { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace: NS },
    { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system' },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system' },
    { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: NS, name: 'kube-salt-bridge' },
    { verb: 'impersonate', resource: 'users' },
    { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
  ];
  for (const a of allowed) assert.equal(await can(a), true, `allowed: ${JSON.stringify(a)}`);
  for (const a of denied) assert.equal(await can(a), false, `denied: ${JSON.stringify(a)}`);

  // And by really trying.
  assert.equal((await sa.req('GET', '/api/v1/nodes')).status, 200, 'list nodes');
  assert.equal((await sa.req('GET', '/api/v1/nodes?watch=1&timeoutSeconds=1')).status, 200, 'watch nodes');
  for (const [method, path, body, type] of [
    ['GET', '/api/v1/pods'],
    ['GET', `/api/v1/namespaces/${NS}/pods`],
    ['GET', `/api/v1/namespaces/${NS}/secrets`],
    ['GET', `/api/v1/namespaces/${NS}/secrets/kube-salt-bridge`],
    ['GET', '/api/v1/secrets'],
    ['PATCH', '/api/v1/nodes/n1', { metadata: { labels: { owned: 'yes' } } }, 'application/merge-patch+json'],
    ['PATCH', '/api/v1/nodes/n1/status', { status: { addresses: [{ type: 'InternalIP', address: '192.0.2.66' }] } }, 'application/merge-patch+json'],
    ['DELETE', '/api/v1/nodes/n2'],
    ['POST', '/api/v1/nodes', { metadata: { name: 'rogue' } }],
    ['POST', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases', { metadata: { name: 'kube-salt-bridge' }, spec: {} }],
  ] as Array<[string, string, unknown?, string?]>) {
    const r = await sa.req(method, path, body, type);
    assert.equal(r.status, 403, `${method} ${path} must be forbidden, got ${r.status}`);
  }
  assert.deepEqual((await kube.listNodes()).map((n) => n.metadata.name).sort(), ['n1', 'n2'], 'the nodes are untouched');
});

/**
 * The Dockerfile's image, its files taken from the global npm install: the compiled dist/, the
 * production node_modules, package.json and LICENSE the Dockerfile copies to its WORKDIR are what
 * the package holds there too; node in /usr/local/bin as on the Node.js base image.
 */
function image(): Image {
  const cfg = imageConfig(join(ROOT, 'Dockerfile'));
  const pkgDir = join(globalPrefix, 'lib', 'node_modules', PKG.name);
  for (const p of cfg.copied) {
    assert.ok(p.startsWith(`${cfg.workdir}/`), `the Dockerfile copies ${p} into its WORKDIR ${cfg.workdir}`);
    assert.ok(existsSync(join(pkgDir, relative(cfg.workdir, p))), `the package provides ${p}`);
  }
  return {
    ...cfg,
    files: [
      { src: pkgDir, dest: cfg.workdir },
      { src: process.execPath, dest: '/usr/local/bin/node' },
    ],
  };
}

/** Admits a pod of the Deployment (dry run: PodSecurity, ServiceAccount admission) and runs it. */
async function startPod(name: string, podIP: string): Promise<PodProc> {
  const t = deployment().spec.template;
  const r = await admin.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: t.metadata.labels }, spec: t.spec }, '&dryRun=All');
  assert.equal(r.status, 201, `the pod is admitted: ${JSON.stringify(r.body).slice(0, 800)}`);
  assert.deepEqual(r.warnings, []);
  const mounts = ((r.body.spec as V1PodSpec).containers[0]!.volumeMounts ?? []).map((m) => m.mountPath);
  assert.ok(mounts.includes('/var/run/secrets/kubernetes.io/serviceaccount'), 'the ServiceAccount admission adds the token volume');
  const apiPort = new URL(kube.url).port;
  const p = await runPod({ api: admin, pod: r.body, podIP, image: image(), service: { host: '127.0.0.1', port: apiPort } });
  pods.push(p);
  return p;
}

/** What the kubelet's probe gets: GET http://<pod IP>:<containerPort><path>. */
async function probe(p: PodProc, which: 'livenessProbe' | 'readinessProbe'): Promise<number> {
  const c = deployment().spec.template.spec.containers[0]!;
  const get = c[which]!.httpGet!;
  const port = c.ports!.find((x) => x.name === get.port)!.containerPort;
  const res = await fetch(`http://${p.ip}:${port}${get.path}`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  return res?.status ?? 0;
}

async function metric(p: PodProc, name: string): Promise<number | undefined> {
  const res = await fetch(`http://${p.ip}:9540/metrics`).catch(() => undefined);
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec((await res?.text()) ?? '');
  return m ? Number(m[1]) : undefined;
}

const holder = async (): Promise<string | undefined> => {
  const r = await admin.req<{ spec: { holderIdentity?: string } }>('GET', LEASE);
  return r.status === 200 ? r.body.spec.holderIdentity : undefined;
};

const waitForList = (ipv4: string[], since: number) => waitForAllowList(salt, TAG, ipv4, { since, timeoutMs: 30_000 });

test('kubernetes: two replicas in the cluster with the ServiceAccount token: one holds the Lease and publishes, the other takes over', async () => {
  assert.equal(BRIDGE_SALT_USER, configYaml(byKind('ConfigMap')[0]!).salt.username, 'the ConfigMap names the eauth user');
  // What the operator creates (README): the Secret the Deployment mounts.
  const secret = {
    'salt-api-password': `${salt.bridge.password}\n`,
    'signing-key': `${KEYS.privateText}\n`,
    'http-token': `${HTTP_TOKEN}\n`,
    'salt-api-ca.crt': readFileSync(salt.apiCaFile, 'utf8'),
  };
  const s = await admin.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'kube-salt-bridge', namespace: NS },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(secret).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  // What kube-controller-manager publishes in every namespace (the projected token volume reads it).
  const ca = await admin.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'kube-root-ca.crt', namespace: NS },
    data: { 'ca.crt': readFileSync(kube.caFile, 'utf8') },
  });
  assert.equal(ca.status, 201);

  const since = salt.events.length;
  const a = await timed('pod a ready', async () => {
    const p = await startPod('kube-salt-bridge-7d9f-a', '127.0.0.11');
    await waitFor(
      'pod a /readyz',
      async () => {
        if (p.daemon.exited()) throw new Error(`pod a exited:\n${p.output().slice(-3000)}`);
        return (await probe(p, 'readinessProbe')) === 200;
      },
      60_000,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${p.output().slice(-3000)}`);
    });
    return p;
  });
  assert.equal(await probe(a, 'livenessProbe'), 200);
  await waitFor('pod a holds the Lease', async () => (await holder()) === a.name, 30_000);
  const first = await waitForList(['10.40.0.1', '10.40.0.2'], since);
  assert.ok(verifyPayload(first.data, KEYS.signer), "signed with the Secret's key");
  assert.equal(await metric(a, 'ksb_leader'), 1);

  const b = await startPod('kube-salt-bridge-7d9f-b', '127.0.0.12');
  await waitFor(
    'pod b /readyz',
    async () => {
      if (b.daemon.exited()) throw new Error(`pod b exited:\n${b.output().slice(-3000)}`);
      return (await probe(b, 'readinessProbe')) === 200;
    },
    60_000,
    250,
  );
  assert.equal(await metric(b, 'ksb_leader'), 0, 'b is the standby');
  assert.equal(await holder(), a.name, 'a keeps the Lease');

  // a stops (a rolling update, a drain): it releases the Lease and b takes over and publishes.
  await a.stop();
  await timed('takeover', () => waitFor('pod b holds the Lease', async () => (await holder()) === b.name, 30_000));
  await waitFor('b leads', async () => (await metric(b, 'ksb_leader')) === 1, 15_000);
  const later = salt.events.length;
  await kube.createNode('n3', [{ type: 'InternalIP', address: '10.40.0.3' }]);
  const third = await waitForList(['10.40.0.1', '10.40.0.2', '10.40.0.3'], later);
  assert.ok(verifyPayload(third.data, KEYS.signer));

  const logs = [...a.logs(), ...b.logs()];
  assert.ok(logs.length > 10, 'the pods logged JSON lines');
  const forbidden = logs.filter((l) => JSON.stringify(l).includes('KSB_KUBE_FORBIDDEN') || JSON.stringify(l).includes('KSB_LEADER'));
  assert.deepEqual(forbidden, [], 'no RBAC or Lease error: the Role and ClusterRole are enough');
  const warnings = logs.filter((l) => typeof l.msg === 'string' && /world-readable/.test(l.msg));
  assert.deepEqual(warnings, [], 'the Secret files are not world-readable');
  assert.equal(a.tokens.length + b.tokens.length, 2, 'each pod got its token');
  assertNoSecrets(
    a.output() + b.output(),
    [...a.tokens, ...b.tokens].map((t) => t.split('.')[2]!),
  );
});

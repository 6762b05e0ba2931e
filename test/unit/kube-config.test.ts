// loadKubeConfig: explicit sources only, typed errors that never repeat secrets; error translation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig, describeKubeConfig } from '../../src/kube/kubeconfig.ts';
import { KubeConfigError, translateKubeError, errorForStatus, isGoneStatus, safeMessage } from '../../src/kube/errors.ts';
import { ApiException } from '@kubernetes/client-node';

const TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldCJ9.very-secret-token-value';
const dir = mkdtempSync(join(tmpdir(), 'ksb-kc-'));

function kubeconfig(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, body);
  return p;
}

const good = kubeconfig(
  'good.yaml',
  `apiVersion: v1
kind: Config
current-context: one
clusters:
- name: c1
  cluster: { server: 'https://127.0.0.1:6443', certificate-authority: ca.crt }
- name: c2
  cluster: { server: 'https://10.0.0.2:6443' }
- name: empty
  cluster: { server: '' }
users:
- name: u
  user: { token: ${TOKEN} }
contexts:
- name: one
  context: { cluster: c1, user: u }
- name: two
  context: { cluster: c2, user: u }
- name: broken
  context: { cluster: empty, user: u }
`,
);

function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KubeConfigError, String(e));
    assert.equal(e.code, 'KSB_KUBE_CONFIG');
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /eyJ|secret-token/);
    return true;
  });
}

test('kubeconfig: current-context, explicit context, relative paths made absolute', () => {
  const kc = loadKubeConfig({ kubeconfig: good });
  assert.deepEqual(describeKubeConfig(kc), { server: 'https://127.0.0.1:6443', context: 'one', user: 'u' });
  assert.equal(kc.getCurrentCluster()?.caFile, join(dir, 'ca.crt'));
  const kc2 = loadKubeConfig({ kubeconfig: good, context: 'two' });
  assert.equal(describeKubeConfig(kc2).server, 'https://10.0.0.2:6443');
  assert.equal(describeKubeConfig(kc).server, 'https://127.0.0.1:6443', 'separate objects');
});

test('kubeconfig errors are typed and never quote credentials', () => {
  rejects(() => loadKubeConfig({}), /set kubeconfig .* or inCluster/);
  rejects(() => loadKubeConfig({ kubeconfig: join(dir, 'missing.yaml') }), /cannot read \(ENOENT\)/);
  rejects(
    () => loadKubeConfig({ kubeconfig: good, context: 'nope', label: 'prod' }),
    /cluster "prod": .*context "nope" not found \(contexts: one, two, broken\)/,
  );
  rejects(() => loadKubeConfig({ kubeconfig: good, context: 'broken' }), /names no known cluster/);
  rejects(() => loadKubeConfig({ kubeconfig: good, inCluster: true }), /not both/);
  const bad = kubeconfig('bad.yaml', `users:\n- name: u\n  user: { token: ${TOKEN}\n  :: [\n`);
  rejects(() => loadKubeConfig({ kubeconfig: bad }), /cannot parse \(invalid YAML\)/);
  const noCtx = kubeconfig('noctx.yaml', `apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n`);
  rejects(() => loadKubeConfig({ kubeconfig: noCtx }), /no usable current-context/);
});

test('inCluster: requires the env and the service account files', () => {
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  rejects(() => loadKubeConfig({ inCluster: true, env: {} }), /KUBERNETES_SERVICE_HOST/);
  const root = mkdtempSync(join(tmpdir(), 'ksb-sa-'));
  rejects(() => loadKubeConfig({ inCluster: true, env, serviceAccountPrefix: root }), /token is missing/);
  const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'token'), TOKEN);
  writeFileSync(join(sa, 'ca.crt'), 'x');
  const before = process.env.KUBERNETES_SERVICE_HOST;
  const kc = loadKubeConfig({ inCluster: true, env, serviceAccountPrefix: root });
  assert.equal(describeKubeConfig(kc).server, 'https://10.96.0.1:443');
  assert.equal(process.env.KUBERNETES_SERVICE_HOST, before, 'process env restored');
  const kc6 = loadKubeConfig({ inCluster: true, env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountPrefix: root });
  assert.equal(describeKubeConfig(kc6).server, 'https://[fd00::1]:443');
});

test('client-node errors translate to stable codes without headers or bodies leaking', () => {
  const status = { kind: 'Status', code: 403, reason: 'Forbidden', message: 'nodes is forbidden: User "x" cannot list resource "nodes"' };
  const e403 = translateKubeError(
    'list nodes',
    new ApiException(403, 'Unknown API Status Code!', JSON.stringify(status), { authorization: `Bearer ${TOKEN}` }),
  );
  assert.equal(e403.code, 'KSB_KUBE_FORBIDDEN');
  assert.match(e403.message, /^list nodes: HTTP 403 \(Forbidden: nodes is forbidden/);
  assert.doesNotMatch(e403.message, /Bearer|eyJ/);
  assert.equal(e403.cause, undefined);
  assert.equal(translateKubeError('x', new ApiException(401, 'Unauthorized', undefined, {})).code, 'KSB_KUBE_FORBIDDEN');
  assert.equal(translateKubeError('x', new ApiException(410, 'Gone', { code: 410, reason: 'Expired' }, {})).code, 'KSB_KUBE_GONE');
  assert.equal(translateKubeError('x', new ApiException(409, 'Conflict', {}, {})).code, 'KSB_LEADER_CONFLICT');
  assert.equal(translateKubeError('x', new ApiException(503, 'x', {}, {})).code, 'KSB_KUBE_UNREACHABLE');
  assert.equal(translateKubeError('x', new ApiException(422, 'x', {}, {})).code, 'KSB_KUBE_API');
  assert.equal(translateKubeError('x', Object.assign(new Error('Gone'), { statusCode: 410 })).code, 'KSB_KUBE_GONE');
  const refused = translateKubeError('watch', Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
  assert.equal(refused.code, 'KSB_KUBE_UNREACHABLE');
  assert.equal(refused.message, 'watch: ECONNREFUSED');
  assert.equal(translateKubeError('w', new DOMException('x', 'TimeoutError')).message, 'w: timed out');
  assert.equal(translateKubeError('w', new Error(`exec plugin said token=${TOKEN}`)).message, 'w: Error');
  assert.equal(translateKubeError('w', new Error('aws: command not found')).message, 'w: Error: aws: command not found');
  assert.equal(errorForStatus('w', 429).retryable, true);
  assert.equal(isGoneStatus({ kind: 'Status', code: 410, reason: 'Expired' }), true);
  assert.equal(isGoneStatus({ kind: 'Status', code: 500 }), false);
  assert.equal(safeMessage('-----BEGIN PRIVATE KEY-----'), '');
});

// examples/config.yaml documents every field; it must load once its paths point at real files.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/index.ts';
import { testKeys } from '../harness/keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'ksb-example-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('examples/config.yaml loads and sets every documented field', () => {
  const text = readFileSync(new URL('../../examples/config.yaml', import.meta.url), 'utf8');
  const root = join(dir, 'etc');
  mkdirSync(join(root, 'secrets'), { recursive: true });
  mkdirSync(join(root, 'kubeconfigs'));
  writeFileSync(join(root, 'secrets/salt-api-password'), 'pw\n', { mode: 0o400 });
  const keys = testKeys('examples/config.yaml');
  writeFileSync(join(root, 'secrets/signing-key'), `${keys.privateText}\n`, { mode: 0o400 });
  writeFileSync(join(root, 'secrets/http-token'), 'example-http-token-0123456789\n', { mode: 0o400 });
  writeFileSync(join(root, 'kubeconfigs/prod.yaml'), 'contexts:\n- name: prod-admin\n  context: {cluster: prod, user: admin}\ncurrent-context: prod-admin\n');
  const path = join(dir, 'config.yaml');
  writeFileSync(path, text.replaceAll('/etc/kube-salt-bridge/', `${root}/`));

  const c = loadConfig(path, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, { hostname: 'h' });
  assert.equal(c.clusters.length, 2);
  assert.deepEqual(c.clusters[0]!.extraEntries, ['10.250.0.0/24', '192.0.2.10']);
  assert.equal(c.clusters[1]!.name, 'edge-1');
  assert.equal(c.signing.signer.keyId, keys.keyId);
  assert.deepEqual(c.clusters[0]!.allowedNetworks, ['10.0.0.0/8', 'fd00::/8']);
  assert.equal(c.http.token?.reveal(), 'example-http-token-0123456789');
  assert.doesNotMatch(text, /^\s*(# )?target:/m, 'the removed clusters[].target is not documented as a field');

  // Every key of the schema appears in the example (commented-out optional ones included).
  for (const key of [
    'caFile',
    'identity',
    'insecureSkipVerify',
    'eventStream',
    'labelSelector',
    'podCIDRs',
    'extraEntries',
    'allowEmpty',
    'maxShrinkFraction',
    'minNodes',
    'timeoutSeconds',
    'relistIntervalSeconds',
    'watchdogSeconds',
    'listPageSize',
    'minIntervalMs',
    'maxDelayMs',
    'resyncIntervalSeconds',
    'initialMs',
    'maxMs',
    'dir',
    'listen',
    'leaseDurationSeconds',
    'renewDeadlineSeconds',
    'retryPeriodSeconds',
    'namespace',
    'level',
    'eauth',
    'timeoutMs',
    'context',
    'inCluster',
    'keyFile',
    'maxAddressesPerNode',
    'allowedNetworks',
    'tokenFile',
    'allowedHosts',
  ]) {
    assert.match(text, new RegExp(`^\\s*(# )?(- )?${key}:`, 'm'), key);
  }
  assert.equal(typeof parse(text), 'object');
});

// systemd credentials: file fields written `${CREDENTIALS_DIRECTORY}/<name>` are read from the
// directory systemd names in $CREDENTIALS_DIRECTORY (LoadCredential=), and a config that names a
// credential it cannot have is refused naming the field, once, without any secret in the message.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig, type Config, type Env } from '../../src/config/index.ts';
import { issuesOf, type ConfigDoc } from '../fakes/config.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('credentials unit tests');
const PASSWORD = 'salt-api-password-from-a-credential';
const TOKEN = 'http-token-from-a-credential-0123456789';

const root = mkdtempSync(join(tmpdir(), 'ksb-credentials-'));
after(() => rmSync(root, { recursive: true, force: true }));

// What systemd lays out for LoadCredential=: one file per credential, named by its id.
const creds = join(root, 'credentials');
mkdirSync(creds, { mode: 0o700 });
const put = (dir: string, name: string, content: string): string => {
  const p = join(dir, name);
  writeFileSync(p, content, { mode: 0o400 });
  return p;
};
put(creds, 'salt-api-password', `${PASSWORD}\n`);
put(creds, 'signing-key', `${KEYS.privateText}\n`);
put(creds, 'http-token', `${TOKEN}\n`);
put(creds, 'salt-api-ca.crt', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
put(
  creds,
  'kubeconfig-prod',
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'prod',
    contexts: [{ name: 'prod', context: { cluster: 'prod', user: 'prod' } }],
    clusters: [{ name: 'prod', cluster: { server: 'https://prod.example:6443' } }],
    users: [{ name: 'prod', user: { token: 'kube-token-never-shown' } }],
  }),
);

const C = '${CREDENTIALS_DIRECTORY}';
const doc = (): ConfigDoc => ({
  salt: {
    url: 'https://salt.example:8000',
    username: 'kube-salt-bridge',
    eauth: 'file',
    passwordFile: `${C}/salt-api-password`,
    caFile: `${C}/salt-api-ca.crt`,
  },
  signing: { keyFile: `${C}/signing-key` },
  clusters: [{ name: 'prod', kubeconfig: `${C}/kubeconfig-prod` }],
  http: { tokenFile: `${C}/http-token` },
});

let n = 0;
function load(d: ConfigDoc, env: Env): Config {
  const p = join(root, `config-${n++}.yaml`);
  writeFileSync(p, stringify(d));
  return loadConfig(p, env, { hostname: 'host-1' });
}

const noSecrets = (text: string): void => {
  for (const s of [PASSWORD, TOKEN, KEYS.privateText, 'kube-token-never-shown']) assert.ok(!text.includes(s), 'no secret in the message');
};

describe('config: systemd credentials', () => {
  it('reads every file field written ${CREDENTIALS_DIRECTORY}/<name> from that directory', () => {
    const c = load(doc(), { CREDENTIALS_DIRECTORY: creds });
    assert.equal(c.salt.password.reveal(), PASSWORD);
    assert.equal(c.salt.caFile, join(creds, 'salt-api-ca.crt'));
    assert.equal(c.signing.signer.keyId, KEYS.keyId);
    assert.equal(c.http.token?.reveal(), TOKEN);
    assert.deepEqual(c.clusters[0]!.source, { kind: 'kubeconfig', kubeconfig: join(creds, 'kubeconfig-prod'), context: undefined });
    assert.deepEqual(c.warnings, [], 'credential files (0400) are not world-readable');
  });

  it('a trailing slash on $CREDENTIALS_DIRECTORY changes nothing', () => {
    const c = load(doc(), { CREDENTIALS_DIRECTORY: `${creds}/` });
    assert.equal(c.signing.signer.keyId, KEYS.keyId);
    assert.equal(c.salt.caFile, join(creds, 'salt-api-ca.crt'));
  });

  it('without $CREDENTIALS_DIRECTORY every field naming a credential is refused once, saying how to provide it', () => {
    const e = issuesOf(() => load(doc(), {}));
    const paths = e.issues.map((i) => i.path).sort();
    assert.deepEqual(
      paths,
      ['clusters[0].kubeconfig', 'http.tokenFile', 'salt.caFile', 'salt.passwordFile', 'signing.keyFile'],
      'one issue per field, no "file not found" on top',
    );
    const pw = e.issues.find((i) => i.path === 'salt.passwordFile')!;
    assert.match(pw.message, /systemd credential "salt-api-password"/);
    assert.match(pw.message, /\$CREDENTIALS_DIRECTORY is not set/);
    assert.match(pw.message, /LoadCredential=salt-api-password:/);
    assert.match(e.message, /^salt\.passwordFile: /m, 'the message names the field');
    noSecrets(e.message);
  });

  it('an empty $CREDENTIALS_DIRECTORY counts as unset; a relative one is refused', () => {
    assert.match(issuesOf(() => load(doc(), { CREDENTIALS_DIRECTORY: '' })).message, /is not set/);
    const rel = issuesOf(() => load(doc(), { CREDENTIALS_DIRECTORY: 'credentials' }));
    assert.ok(
      rel.issues.some((i) => i.path === 'signing.keyFile' && /must be an absolute path/.test(i.message)),
      rel.message,
    );
  });

  it('a credential the unit did not load is a missing file, named with the field', () => {
    const d = doc();
    d.signing.keyFile = `${C}/no-such-credential`;
    const e = issuesOf(() => load(d, { CREDENTIALS_DIRECTORY: creds }));
    assert.equal(e.issues.length, 1, e.message);
    assert.equal(e.issues[0]!.path, 'signing.keyFile');
    assert.match(e.issues[0]!.message, new RegExp(`file not found: ${join(creds, 'no-such-credential')}`));
  });

  it('only the exact form ${CREDENTIALS_DIRECTORY}/<name> is accepted', () => {
    for (const bad of [`${C}/sub/signing-key`, `${C}/..`, `${C}/`, '$CREDENTIALS_DIRECTORY/signing-key', `/etc/${C}/signing-key`, `${C}signing-key`]) {
      const d = doc();
      d.signing.keyFile = bad;
      const e = issuesOf(() => load(d, { CREDENTIALS_DIRECTORY: creds }));
      assert.deepEqual(
        e.issues.map((i) => i.path),
        ['signing.keyFile'],
        `${bad}: ${e.message}`,
      );
      assert.match(e.issues[0]!.message, /written \$\{CREDENTIALS_DIRECTORY\}\/<name>/, bad);
    }
    const d = doc();
    d.signing.keyFile = '%d/signing-key';
    const e = issuesOf(() => load(d, { CREDENTIALS_DIRECTORY: creds }));
    assert.match(e.message, /signing\.keyFile: "%d" is expanded in unit files only; here write \$\{CREDENTIALS_DIRECTORY\}\/signing-key/);
  });

  it('an environment override replaces the field before it is looked at', () => {
    const pw = put(root, 'password-from-env', 'password-from-env\n');
    const d = doc();
    d.salt = { url: 'https://salt.example:8000', username: 'kube-salt-bridge', passwordFile: `${C}/salt-api-password` };
    d.signing.keyFile = put(root, 'key-from-file', `${KEYS.privateText}\n`);
    d.clusters[0].kubeconfig = join(creds, 'kubeconfig-prod');
    delete d.http;
    const c = load(d, { KSB_SALT_API_PASSWORD_FILE: pw });
    assert.equal(c.salt.password.reveal(), 'password-from-env');
  });

  it('other fields and plain paths are taken literally', () => {
    const d = doc();
    d.salt.username = `${C}`;
    d.signing.keyFile = join(creds, 'signing-key');
    const c = load(d, { CREDENTIALS_DIRECTORY: creds });
    assert.equal(c.salt.username, C);
    assert.equal(c.signing.signer.keyId, KEYS.keyId);
  });
});

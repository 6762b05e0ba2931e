import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig, type Config, type Env } from '../../src/config/index.ts';
import { ConfigError, KsbError } from '../../src/errors.ts';
import { DEFAULT_LIST_PAGE_SIZE } from '../../src/kube/reflectorTypes.ts';
import { issuesOf, type ConfigDoc, type ConfigFields } from '../fakes/config.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('config unit tests');
const OTHER = testKeys('config unit tests, another key');

const dir = mkdtempSync(join(tmpdir(), 'ksb-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, content: string, mode = 0o600): string => {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
};
const KUBECONFIG = file(
  'kubeconfig.yaml',
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'ctx-a',
    contexts: [
      { name: 'ctx-a', context: { cluster: 'a', user: 'a' } },
      { name: 'ctx-b', context: { cluster: 'b', user: 'b' } },
    ],
    clusters: [{ name: 'a', cluster: { server: 'https://a:6443' } }],
    users: [{ name: 'a', user: {} }],
  }),
);
const NO_CURRENT = file('no-current.yaml', stringify({ contexts: [{ name: 'x' }] }));
file('password', 'salt-pass\n');
file('signing-key', `${KEYS.privateText}\n`);
file('empty', '');
file('http-token', 'http-token-0123456789abcdef\n');
file('short-token', 'short\n');
file('spaced-token', 'has spaces inside the token text\n');
file('v1-key', 'a-version-1-shared-hmac-key-0123456789\n');
file('placeholder-key', 'CHANGE-ME\n');
file('short-key', `${Buffer.from(KEYS.privateHex, 'hex').subarray(1).toString('base64')}\n`);
file('binary-key', '');
writeFileSync(join(dir, 'binary-key'), Buffer.from(KEYS.privateHex, 'hex'));
file('utf16-key', '');
writeFileSync(join(dir, 'utf16-key'), Buffer.from(`\ufeff${KEYS.privateText}\n`, 'utf16le'));
file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
file('not-pem', 'hello');

const base = (): ConfigDoc => ({
  salt: { url: 'https://salt.example:8000', username: 'ksb', passwordFile: 'password' },
  signing: { keyFile: 'signing-key' },
  clusters: [{ name: 'prod', kubeconfig: 'kubeconfig.yaml' }],
});

let n = 0;
function load(doc: ConfigDoc, env: Env = {}): Config {
  const p = file(`config-${n++}.yaml`, stringify(doc));
  return loadConfig(p, env, { hostname: 'host-1' });
}

describe('loadConfig: defaults', () => {
  it('a minimal file gets every default', () => {
    const c = load(base());
    assert.equal(c.salt.url, 'https://salt.example:8000');
    assert.equal(c.salt.eauth, 'pam');
    assert.equal(c.salt.timeoutMs, 10_000);
    assert.equal(c.salt.eventStream, 'auto');
    assert.equal(c.salt.insecureSkipVerify, false);
    assert.equal(c.salt.caFile, undefined);
    assert.equal(c.salt.password.reveal(), 'salt-pass');
    assert.equal(c.signing.signer.keyId, KEYS.keyId);
    assert.equal(c.signing.signer.publicKey, KEYS.publicText);
    const [cl] = c.clusters;
    assert.deepEqual(cl, {
      name: 'prod',
      source: { kind: 'kubeconfig', kubeconfig: KUBECONFIG, context: undefined },
      labelSelector: undefined,
      addressTypes: ['InternalIP'],
      families: ['ipv4', 'ipv6'],
      podCIDRs: false,
      extraEntries: [],
      maxAddressesPerNode: 4,
      allowedNetworks: undefined,
      safety: { allowEmpty: false, maxShrinkFraction: 0.5, minNodes: 1 },
      watch: { timeoutSeconds: 300, relistIntervalSeconds: 1800, watchdogSeconds: 600, listPageSize: DEFAULT_LIST_PAGE_SIZE },
    });
    assert.deepEqual(c.publish, {
      minIntervalMs: 500,
      maxDelayMs: 2000,
      resyncIntervalSeconds: 600,
      delta: true,
      deltaMinEntries: 256,
      retry: { initialMs: 1000, maxMs: 60_000 },
    });
    assert.deepEqual(c.state, { dir: '/var/lib/kube-salt-bridge' });
    assert.deepEqual(c.http, { listen: '127.0.0.1:9540', host: '127.0.0.1', port: 9540, token: undefined, allowedHosts: [] });
    assert.deepEqual(c.leaderElection, {
      enabled: false,
      cluster: 'prod',
      namespace: 'kube-system',
      name: 'kube-salt-bridge',
      identity: 'host-1',
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
    });
    assert.deepEqual(c.log, { level: 'info' });
    assert.deepEqual(c.warnings, []);
  });

  it('is deeply frozen', () => {
    const c = load(base());
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.clusters) && Object.isFrozen(c.clusters[0]!.safety));
    assert.throws(() => {
      (c.clusters[0]!.safety as { minNodes: number }).minNodes = 0;
    }, TypeError);
  });

  it('extra entries are canonicalised, deduplicated and sorted', () => {
    const doc = base();
    doc.clusters[0].extraEntries = ['10.0.0.9/32', 'FD00::A', '10.0.0.10', '10.0.0.9', '10.250.0.0/24'];
    assert.deepEqual(load(doc).clusters[0]!.extraEntries, ['10.0.0.10', '10.0.0.9', '10.250.0.0/24', 'fd00::a']);
  });

  it('a kubeconfig context that exists is accepted', () => {
    const doc = base();
    doc.clusters[0].context = 'ctx-b';
    assert.deepEqual(load(doc).clusters[0]!.source, { kind: 'kubeconfig', kubeconfig: KUBECONFIG, context: 'ctx-b' });
  });

  it('http to loopback is allowed', () => {
    for (const url of ['http://127.0.0.1:8000', 'http://[::1]:8000/', 'http://localhost:8000/salt/']) {
      const doc = base();
      doc.salt.url = url;
      assert.equal(load(doc).salt.url, url.replace(/\/$/, ''));
    }
  });

  it('IPv6 listen address and port 0', () => {
    const doc = base();
    doc.http = { listen: '[::1]:0' };
    assert.deepEqual(load(doc).http, { listen: '[::1]:0', host: '::1', port: 0, token: undefined, allowedHosts: [] });
  });

  it('a world-readable secret file is accepted with a warning', () => {
    const doc = base();
    doc.salt.passwordFile = file('password-644', 'p\n', 0o644);
    assert.match(load(doc).warnings.join('\n'), /salt.passwordFile: .* world-readable/);
  });

  it('leader election on another cluster, in-cluster source', () => {
    const doc = base();
    doc.clusters.push({ name: 'edge', inCluster: true });
    doc.leaderElection = { enabled: true, cluster: 'edge', identity: 'bridge-a' };
    const c = load(doc, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' });
    assert.deepEqual(c.clusters[1]!.source, { kind: 'inCluster' });
    assert.equal(c.leaderElection.cluster, 'edge');
    assert.equal(c.leaderElection.identity, 'bridge-a');
  });
});

describe('loadConfig: secrets stay secret', () => {
  it('JSON, inspect and template strings print [redacted] for the password and only the public part of the key', () => {
    const c = load(base());
    const seed = Buffer.from(KEYS.privateHex, 'hex');
    // What a careless template or String() shows is the point of the two last entries.
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions, @typescript-eslint/no-base-to-string
    const careless = [`${c.salt.password}`, String(c.signing.signer)];
    for (const text of [JSON.stringify(c), inspect(c, { depth: 10 }), inspect(c, { depth: 10, showHidden: true }), ...careless]) {
      assert.doesNotMatch(text, /salt-pass/);
      for (const s of [KEYS.privateText, KEYS.privateHex, KEYS.privateText.slice(0, 16), seed.toString('base64url').slice(0, 16)]) {
        assert.ok(!text.includes(s), `the private key shows in: ${text.slice(0, 200)}`);
      }
    }
    assert.match(JSON.stringify(c.salt), /"password":"\[redacted\]"/);
    assert.deepEqual(JSON.parse(JSON.stringify(c.signing)), { signer: { keyId: KEYS.keyId, publicKey: KEYS.publicText } });
  });

  it('the configured key signs what its public key verifies', () => {
    const c = load(base());
    const sig = c.signing.signer.sign('{"x":1}');
    assert.equal(KEYS.signer.verify('{"x":1}', sig), true);
    assert.equal(OTHER.signer.verify('{"x":1}', sig), false);
  });

  it('secrets from the environment win over files; the key may be hex or base64 there', () => {
    const doc = base();
    delete doc.salt.passwordFile;
    delete (doc as ConfigFields).signing;
    const c = load(doc, { KSB_SALT_API_PASSWORD: 'from-env', KSB_SIGNING_KEY: OTHER.privateHex });
    assert.equal(c.salt.password.reveal(), 'from-env');
    assert.equal(c.signing.signer.keyId, OTHER.keyId);
    const withFile = load(base(), { KSB_SIGNING_KEY: ` ${OTHER.privateText}\n` });
    assert.equal(withFile.signing.signer.keyId, OTHER.keyId, 'KSB_SIGNING_KEY wins over signing.keyFile');
  });

  it('a world-readable key file is accepted with a warning', () => {
    const doc = base();
    doc.signing.keyFile = file('key-644', `${KEYS.privateText}\n`, 0o644);
    assert.match(load(doc).warnings.join('\n'), /signing\.keyFile: .* world-readable/);
  });
});

describe('loadConfig: environment overrides', () => {
  it('override fields', () => {
    const c = load(base(), {
      KSB_SALT_API_URL: 'https://other:8000',
      KSB_LOG_LEVEL: 'debug',
      KSB_HTTP_LISTEN: '0.0.0.0:9999',
      KSB_LEADER_ELECTION_ENABLED: 'true',
      KSB_LEADER_ELECTION_IDENTITY: 'pod-x',
      KSB_STATE_DIR: '/tmp/ksb-state',
      KSB_SALT_API_EAUTH: 'sharedsecret',
      KSB_SIGNING_KEY_FILE: join(dir, 'signing-key'),
      KSB_LOG_UNRELATED: 'ignored',
      KSB_SALT_API_USERNAME: '',
    });
    assert.equal(c.salt.url, 'https://other:8000');
    assert.equal(c.log.level, 'debug');
    assert.equal(c.http.port, 9999);
    assert.equal(c.leaderElection.enabled, true);
    assert.equal(c.leaderElection.identity, 'pod-x');
    assert.equal(c.state.dir, '/tmp/ksb-state');
    assert.equal(c.salt.eauth, 'sharedsecret');
    assert.equal(c.salt.username, 'ksb', 'an empty variable counts as unset');
  });

  it('errors name the field and the variable', () => {
    const e = issuesOf(() => load(base(), { KSB_SALT_API_URL: 'http://salt.example:8000', KSB_LOG_LEVEL: 'loud' }));
    assert.deepEqual(
      e.issues.map((i) => i.path),
      ['salt.url', 'log.level'],
    );
    assert.match(e.message, /^salt\.url: plain http is allowed only to a loopback address.*\(value from KSB_SALT_API_URL\)$/m);
    assert.match(e.message, /^log\.level: must be one of .*\(value from KSB_LOG_LEVEL\)$/m);
  });
});

type Mutation = (d: ConfigDoc) => void;
const ERRORS: Array<[string, Mutation, string, RegExp, Env?]> = [
  [
    'http url to a non-loopback host',
    (d) => {
      d.salt.url = 'http://salt.example:8000';
    },
    'salt.url',
    /loopback/,
  ],
  [
    'http url to 10/8',
    (d) => {
      d.salt.url = 'http://10.0.0.1:8000';
    },
    'salt.url',
    /loopback/,
  ],
  [
    'url with credentials',
    (d) => {
      d.salt.url = 'https://u:p@salt.example';
    },
    'salt.url',
    /credentials/,
  ],
  [
    'url not http(s)',
    (d) => {
      d.salt.url = 'ftp://salt.example';
    },
    'salt.url',
    /https/,
  ],
  [
    'url garbage',
    (d) => {
      d.salt.url = 'salt';
    },
    'salt.url',
    /not a valid URL/,
  ],
  [
    'inline password',
    (d) => {
      d.salt.password = 'hunter2';
    },
    'salt.password',
    /never written in the config file; use salt\.passwordFile/,
  ],
  [
    'inline signing key',
    (d) => {
      d.signing.key = 'k';
    },
    'signing.key',
    /use signing\.keyFile/,
  ],
  [
    'password file missing',
    (d) => {
      d.salt.passwordFile = 'nope';
    },
    'salt.passwordFile',
    /file not found: .*nope/,
  ],
  [
    'password file is a directory',
    (d) => {
      d.salt.passwordFile = '.';
    },
    'salt.passwordFile',
    /not a regular file/,
  ],
  [
    'password file empty',
    (d) => {
      d.salt.passwordFile = 'empty';
    },
    'salt.passwordFile',
    /empty secret file/,
  ],
  [
    'no password at all',
    (d) => {
      delete d.salt.passwordFile;
    },
    'salt.passwordFile',
    /required.*KSB_SALT_API_PASSWORD/,
  ],
  [
    'no signing key at all',
    (d) => {
      delete (d as ConfigFields).signing;
    },
    'signing.keyFile',
    /required.*Ed25519 private key.*keygen --out FILE.*KSB_SIGNING_KEY/,
  ],
  [
    'signing key file missing',
    (d) => {
      d.signing.keyFile = 'no-such-key';
    },
    'signing.keyFile',
    /file not found: .*no-such-key/,
  ],
  [
    'signing key file empty',
    (d) => {
      d.signing.keyFile = 'empty';
    },
    'signing.keyFile',
    /empty does not hold an Ed25519 private key: empty;/,
  ],
  [
    'signing key of 31 bytes',
    (d) => {
      d.signing.keyFile = 'short-key';
    },
    'signing.keyFile',
    /short-key does not hold an Ed25519 private key: base64 of 31 bytes, not 32/,
  ],
  [
    'a version 1 HMAC key',
    (d) => {
      d.signing.keyFile = 'v1-key';
    },
    'signing.keyFile',
    /v1-key does not hold an Ed25519 private key: .*kube-salt-bridge keygen/,
  ],
  [
    'a placeholder key',
    (d) => {
      d.signing.keyFile = 'placeholder-key';
    },
    'signing.keyFile',
    /placeholder-key does not hold an Ed25519 private key: not valid base64/,
  ],
  [
    'the raw seed as a binary file',
    (d) => {
      d.signing.keyFile = 'binary-key';
    },
    'signing.keyFile',
    /binary-key does not hold an Ed25519 private key/,
  ],
  [
    'a UTF-16 key file',
    (d) => {
      d.signing.keyFile = 'utf16-key';
    },
    'signing.keyFile',
    /utf16-key does not hold an Ed25519 private key: not ASCII text/,
  ],
  [
    'a bad key in KSB_SIGNING_KEY',
    () => {},
    'signing.keyFile',
    /^KSB_SIGNING_KEY does not hold an Ed25519 private key: whitespace inside/,
    { KSB_SIGNING_KEY: 'abc def' },
  ],
  [
    'target (removed in contract v2)',
    (d) => {
      d.clusters[0].target = 'G@role:db and I@kube_allowlist:clusters:prod';
    },
    'clusters[0].target',
    /no longer supported: the reactor always targets I@kube_allowlist:clusters:prod .*pillar/,
  ],
  [
    'username missing',
    (d) => {
      delete d.salt.username;
    },
    'salt.username',
    /required/,
  ],
  [
    'timeout not a number',
    (d) => {
      d.salt.timeoutMs = '10s';
    },
    'salt.timeoutMs',
    /expected number, got string/,
  ],
  [
    'eventStream unknown',
    (d) => {
      d.salt.eventStream = 'poll';
    },
    'salt.eventStream',
    /one of "ws", "sse", "auto"/,
  ],
  [
    'caFile with insecureSkipVerify',
    (d) => {
      d.salt.caFile = 'ca.pem';
      d.salt.insecureSkipVerify = true;
    },
    'salt.insecureSkipVerify',
    /caFile/,
  ],
  [
    'caFile not PEM',
    (d) => {
      d.salt.caFile = 'not-pem';
    },
    'salt.caFile',
    /no PEM certificate/,
  ],
  [
    'unknown field',
    (d) => {
      d.salt.urll = 'x';
    },
    'salt.urll',
    /unknown field/,
  ],
  [
    'typo in a nested field',
    (d) => {
      d.clusters[0].safety = { maxShrinkFracton: 0.2 };
    },
    'clusters[0].safety.maxShrinkFracton',
    /unknown field/,
  ],
  [
    'no clusters',
    (d) => {
      (d as ConfigFields).clusters = [];
    },
    'clusters',
    /at least 1/,
  ],
  [
    'clusters missing',
    (d) => {
      delete (d as ConfigFields).clusters;
    },
    'clusters',
    /required/,
  ],
  [
    'cluster name not a DNS label',
    (d) => {
      d.clusters[0].name = 'Prod_1';
    },
    'clusters[0].name',
    /DNS label/,
  ],
  [
    'duplicate cluster names',
    (d) => {
      d.clusters.push({ name: 'prod', kubeconfig: 'kubeconfig.yaml' });
    },
    'clusters[1].name',
    /duplicate cluster name "prod"/,
  ],
  [
    'missing kubeconfig file',
    (d) => {
      d.clusters.push({ name: 'b', kubeconfig: 'missing.yaml' });
    },
    'clusters[1].kubeconfig',
    /file not found: .*missing\.yaml/,
  ],
  [
    'neither kubeconfig nor inCluster',
    (d) => {
      delete d.clusters[0].kubeconfig;
    },
    'clusters[0].kubeconfig',
    /no fallback to localhost/,
  ],
  [
    'kubeconfig and inCluster',
    (d) => {
      d.clusters[0].inCluster = true;
    },
    'clusters[0].inCluster',
    /exclusive/,
  ],
  [
    'context not in kubeconfig',
    (d) => {
      d.clusters[0].context = 'ctx-z';
    },
    'clusters[0].context',
    /context "ctx-z" not found/,
  ],
  [
    'kubeconfig without current-context',
    (d) => {
      d.clusters[0].kubeconfig = NO_CURRENT;
    },
    'clusters[0].context',
    /no current-context/,
  ],
  [
    'context without kubeconfig',
    (d) => {
      d.clusters[0] = { name: 'prod', inCluster: true, context: 'x' };
    },
    'clusters[0].context',
    /only meaningful with kubeconfig/,
    { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
  ],
  [
    'inCluster outside a pod',
    (d) => {
      d.clusters[0] = { name: 'prod', inCluster: true };
    },
    'clusters[0].inCluster',
    /KUBERNETES_SERVICE_HOST/,
  ],
  [
    'two inCluster clusters',
    (d) => {
      d.clusters = [
        { name: 'a', inCluster: true },
        { name: 'b', inCluster: true },
      ];
    },
    'clusters[1].inCluster',
    /only one cluster/,
    { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
  ],
  [
    'bad extra entry',
    (d) => {
      d.clusters[0].extraEntries = ['10.0.0.1', '10.0.0.0/33'];
    },
    'clusters[0].extraEntries[1]',
    /"10\.0\.0\.0\/33" refused/,
  ],
  [
    'extra entry with host bits',
    (d) => {
      d.clusters[0].extraEntries = ['10.1.1.0/16'];
    },
    'clusters[0].extraEntries[0]',
    /host bits/,
  ],
  [
    'extra entry of an unpublished family',
    (d) => {
      d.clusters[0].families = ['ipv4'];
      d.clusters[0].extraEntries = ['fd00::1'];
    },
    'clusters[0].extraEntries[0]',
    /fd00::1 is ipv6 but families is \[ipv4\]/,
  ],
  [
    'bad address type',
    (d) => {
      d.clusters[0].addressTypes = ['Hostname'];
    },
    'clusters[0].addressTypes[0]',
    /one of "InternalIP", "ExternalIP"/,
  ],
  [
    'duplicate family',
    (d) => {
      d.clusters[0].families = ['ipv4', 'ipv4'];
    },
    'clusters[0].families[1]',
    /duplicate/,
  ],
  [
    'no family',
    (d) => {
      d.clusters[0].families = [];
    },
    'clusters[0].families',
    /at least 1/,
  ],
  [
    'label selector garbage',
    (d) => {
      d.clusters[0].labelSelector = 'a=$(x)';
    },
    'clusters[0].labelSelector',
    /not a Kubernetes label selector: invalid value "\$" for "a"/,
  ],
  [
    'label selector: unclosed set',
    (d) => {
      d.clusters[0].labelSelector = 'app in (a,b';
    },
    'clusters[0].labelSelector',
    /not a Kubernetes label selector: missing '\)'/,
  ],
  [
    'label selector: no key',
    (d) => {
      d.clusters[0].labelSelector = '=web';
    },
    'clusters[0].labelSelector',
    /found '=', expected: identifier/,
  ],
  [
    'label selector: notin without values',
    (d) => {
      d.clusters[0].labelSelector = 'app notin';
    },
    'clusters[0].labelSelector',
    /expected: '\('/,
  ],
  [
    'label selector: words',
    (d) => {
      d.clusters[0].labelSelector = 'a b c';
    },
    'clusters[0].labelSelector',
    /found 'b' after "a"/,
  ],
  [
    'maxAddressesPerNode 0',
    (d) => {
      d.clusters[0].maxAddressesPerNode = 0;
    },
    'clusters[0].maxAddressesPerNode',
    />= 1/,
  ],
  [
    'allowedNetworks not a network',
    (d) => {
      d.clusters[0].allowedNetworks = ['10.0.0.0/8', 'nodes'];
    },
    'clusters[0].allowedNetworks[1]',
    /"nodes" refused: not an IP network/,
  ],
  [
    'allowedNetworks with host bits',
    (d) => {
      d.clusters[0].allowedNetworks = ['10.1.0.0/8'];
    },
    'clusters[0].allowedNetworks[0]',
    /host bits/,
  ],
  [
    'allowedNetworks empty',
    (d) => {
      d.clusters[0].allowedNetworks = [];
    },
    'clusters[0].allowedNetworks',
    /at least 1/,
  ],
  [
    'allowedNetworks without a published family',
    (d) => {
      d.clusters[0].allowedNetworks = ['10.0.0.0/8'];
    },
    'clusters[0].allowedNetworks',
    /no ipv6 network, but families includes ipv6/,
  ],
  [
    'inline http token',
    (d) => {
      d.http = { token: 'abc' };
    },
    'http.token',
    /use http\.tokenFile/,
  ],
  [
    'http token file missing',
    (d) => {
      d.http = { tokenFile: 'no-token' };
    },
    'http.tokenFile',
    /file not found/,
  ],
  [
    'http token too short',
    (d) => {
      d.http = { tokenFile: 'short-token' };
    },
    'http.tokenFile',
    /shorter than 16 characters/,
  ],
  [
    'http token with spaces',
    (d) => {
      d.http = { tokenFile: 'spaced-token' };
    },
    'http.tokenFile',
    /printable ASCII without spaces/,
  ],
  [
    'allowedHosts with a port',
    (d) => {
      d.http = { allowedHosts: ['bridge.example:9540'] };
    },
    'http.allowedHosts[0]',
    /DNS name without port/,
  ],
  [
    'allowedHosts with an IP literal',
    (d) => {
      d.http = { allowedHosts: ['[::1]'] };
    },
    'http.allowedHosts[0]',
    /always allowed/,
  ],
  [
    'allowedHosts duplicate',
    (d) => {
      d.http = { allowedHosts: ['a.example', 'A.example.'] };
    },
    'http.allowedHosts[1]',
    /duplicate/,
  ],
  [
    'maxShrinkFraction above 1',
    (d) => {
      d.clusters[0].safety = { maxShrinkFraction: 1.5 };
    },
    'clusters[0].safety.maxShrinkFraction',
    /<= 1/,
  ],
  [
    'allowEmpty with minNodes 1',
    (d) => {
      d.clusters[0].safety = { allowEmpty: true };
    },
    'clusters[0].safety.minNodes',
    /must be 0 when safety.allowEmpty/,
  ],
  [
    'minNodes negative',
    (d) => {
      d.clusters[0].safety = { minNodes: -1 };
    },
    'clusters[0].safety.minNodes',
    />= 0/,
  ],
  [
    'watchdog not above watch timeout',
    (d) => {
      d.clusters[0].watch = { timeoutSeconds: 300, watchdogSeconds: 300 };
    },
    'clusters[0].watch.watchdogSeconds',
    /greater than watch.timeoutSeconds \(300\)/,
  ],
  [
    'list page size 0',
    (d) => {
      d.clusters[0].watch = { listPageSize: 0 };
    },
    'clusters[0].watch.listPageSize',
    />= 1/,
  ],
  [
    'list page size not an integer',
    (d) => {
      d.clusters[0].watch = { listPageSize: 2.5 };
    },
    'clusters[0].watch.listPageSize',
    /expected int/,
  ],
  [
    'list page size too large',
    (d) => {
      d.clusters[0].watch = { listPageSize: 100_001 };
    },
    'clusters[0].watch.listPageSize',
    /<= 100000/,
  ],
  [
    'minInterval above maxDelay',
    (d) => {
      d.publish = { minIntervalMs: 5000 };
    },
    'publish.maxDelayMs',
    /publish.minIntervalMs \(5000\)/,
  ],
  [
    'publish.delta not a boolean',
    (d) => {
      d.publish = { delta: 'yes' };
    },
    'publish.delta',
    /boolean/,
  ],
  [
    'publish.deltaMinEntries negative',
    (d) => {
      d.publish = { deltaMinEntries: -1 };
    },
    'publish.deltaMinEntries',
    />= 0/,
  ],
  [
    'publish.deltaMinEntries not an integer',
    (d) => {
      d.publish = { deltaMinEntries: 2.5 };
    },
    'publish.deltaMinEntries',
    /expected int/,
  ],
  [
    'retry initial above max',
    (d) => {
      d.publish = { retry: { initialMs: 10, maxMs: 5 } };
    },
    'publish.retry.maxMs',
    /initialMs/,
  ],
  [
    'renewDeadline not below leaseDuration',
    (d) => {
      d.leaderElection = { leaseDurationSeconds: 10, renewDeadlineSeconds: 10 };
    },
    'leaderElection.renewDeadlineSeconds',
    /less than leaderElection.leaseDurationSeconds \(10\)/,
  ],
  [
    'retryPeriod not below renewDeadline',
    (d) => {
      d.leaderElection = { retryPeriodSeconds: 10 };
    },
    'leaderElection.retryPeriodSeconds',
    /less than leaderElection.renewDeadlineSeconds \(10\)/,
  ],
  [
    'lease cluster unknown',
    (d) => {
      d.leaderElection = { cluster: 'nope' };
    },
    'leaderElection.cluster',
    /no cluster named "nope"/,
  ],
  [
    'lease namespace invalid',
    (d) => {
      d.leaderElection = { namespace: 'Kube System' };
    },
    'leaderElection.namespace',
    /namespace/,
  ],
  [
    'listen without port',
    (d) => {
      d.http = { listen: '127.0.0.1' };
    },
    'http.listen',
    /HOST:PORT/,
  ],
  [
    'listen port too big',
    (d) => {
      d.http = { listen: '127.0.0.1:70000' };
    },
    'http.listen',
    /0\.\.65535/,
  ],
  [
    'unbracketed IPv6 listen',
    (d) => {
      d.http = { listen: '::1:9540' };
    },
    'http.listen',
    /HOST:PORT/,
  ],
  [
    'log level',
    (d) => {
      d.log = { level: 'verbose' };
    },
    'log.level',
    /one of/,
  ],
  [
    'section of the wrong type',
    (d) => {
      d.publish = 5;
    },
    'publish',
    /expected object, got number/,
  ],
];

describe('loadConfig: every bad field is a ConfigError naming it', () => {
  for (const [name, mutate, field, reason, env] of ERRORS) {
    it(name, () => {
      const doc = base();
      mutate(doc);
      const e = issuesOf(() => load(doc, env));
      assert.ok(e instanceof ConfigError && e instanceof KsbError);
      assert.equal(e.code, 'KSB_CONFIG');
      assert.equal(e.retryable, false);
      const issue = e.issues.find((i) => i.path === field);
      assert.ok(issue, `no issue for ${field}; got: ${e.message}`);
      assert.match(issue.message, reason);
      assert.match(e.message, new RegExp(`^${field.replace(/[[\].]/g, '\\$&')}: `, 'm'));
    });
  }

  it('all problems are reported at once, one line each', () => {
    const doc = base();
    doc.salt.url = 'http://salt.example';
    doc.salt.password = 'x';
    doc.clusters.push({ name: 'b', kubeconfig: 'missing.yaml' });
    doc.log = { level: 'loud' };
    const e = issuesOf(() => load(doc));
    assert.deepEqual(
      e.issues.map((i) => i.path),
      ['salt.password', 'salt.url', 'clusters[1].kubeconfig', 'log.level'],
    );
    assert.equal(e.field, 'salt.password');
    assert.equal(e.message.split('\n').length, 4);
  });
});

describe('loadConfig: the signing key and the removed target', () => {
  it('a refused key never appears in the message, from a file or from KSB_SIGNING_KEY', () => {
    const t = KEYS.privateText;
    const wrapped = `${t.slice(0, 22)}\n${t.slice(22)}\n`;
    const doc = base();
    doc.signing.keyFile = file('wrapped-key', wrapped);
    for (const e of [issuesOf(() => load(doc)), issuesOf(() => load(base(), { KSB_SIGNING_KEY: wrapped }))]) {
      assert.equal(e.field, 'signing.keyFile');
      assert.match(e.message, /whitespace inside the key/);
      for (let i = 0; i + 6 <= t.length; i++) assert.ok(!e.message.includes(t.slice(i, i + 6)), `message quotes the key: ${e.message}`);
    }
  });

  it('target is refused with the other problems of the same file, even when the schema fails too', () => {
    const doc = base();
    doc.clusters.push({ name: 'edge', kubeconfig: 'kubeconfig.yaml', target: 'G@role:db' });
    doc.log = { level: 'loud' };
    const e = issuesOf(() => load(doc));
    assert.deepEqual(
      e.issues.map((i) => i.path),
      ['clusters[1].target', 'log.level'],
    );
    assert.match(e.message, /^clusters\[1\]\.target: no longer supported: the reactor always targets I@kube_allowlist:clusters:edge/m);
    assert.doesNotMatch(e.message, /unknown field/);
  });
});

describe('loadConfig: the file itself', () => {
  it('missing file', () => {
    assert.throws(
      () => loadConfig(join(dir, 'absent.yaml'), {}),
      (e: unknown) => e instanceof ConfigError && e.field === 'config' && /cannot read/.test(e.message),
    );
  });
  it('YAML syntax error and duplicate keys', () => {
    for (const text of ['salt: [\n', 'log:\n  level: info\nlog:\n  level: debug\n']) {
      const p = file(`bad-${n++}.yaml`, text);
      assert.throws(
        () => loadConfig(p, {}),
        (e: unknown) => e instanceof ConfigError && e.field === 'config',
      );
    }
  });
  it('empty file and non-mapping', () => {
    for (const text of ['', '- a\n- b\n']) {
      const p = file(`bad-${n++}.yaml`, text);
      assert.throws(
        () => loadConfig(p, {}),
        (e: unknown) => e instanceof ConfigError && e.field === 'config',
      );
    }
  });
});

describe('salt.websocketUrl (rest_tornado websocket stream)', () => {
  it('is optional and kept when valid', () => {
    assert.equal(load(base()).salt.websocketUrl, undefined);
    const d = base();
    d.salt.websocketUrl = 'https://salt.example:8001';
    assert.equal(load(d).salt.websocketUrl, 'https://salt.example:8001');
  });
  it('follows the url rules (plain http only to loopback)', () => {
    const d = base();
    d.salt.websocketUrl = 'http://salt.example:8001';
    assert.equal(issuesOf(() => load(d)).field, 'salt.websocketUrl');
  });
  it('eventStream ws without websocketUrl is an error naming eventStream', () => {
    const d = base();
    d.salt.eventStream = 'ws';
    const e = issuesOf(() => load(d));
    assert.equal(e.field, 'salt.eventStream');
    assert.match(e.message, /websocketUrl/);
  });
});

describe('node address bounds, label selector and the HTTP endpoint', () => {
  it('maxAddressesPerNode and allowedNetworks are kept, networks canonical and sorted', () => {
    const doc = base();
    doc.clusters[0].maxAddressesPerNode = 2;
    doc.clusters[0].allowedNetworks = ['FD00::/8', '10.0.0.0/8', '10.0.0.7', '10.0.0.0/8'];
    const c = load(doc).clusters[0]!;
    assert.equal(c.maxAddressesPerNode, 2);
    assert.deepEqual(c.allowedNetworks, ['10.0.0.0/8', '10.0.0.7', 'fd00::/8']);
  });

  it('a valid label selector is kept (trimmed); an empty one selects every node', () => {
    const doc = base();
    doc.clusters[0].labelSelector = ' node-role.kubernetes.io/worker, env in (prod,staging), !tainted ';
    assert.equal(load(doc).clusters[0]!.labelSelector, 'node-role.kubernetes.io/worker, env in (prod,staging), !tainted');
    doc.clusters[0].labelSelector = '';
    assert.equal(load(doc).clusters[0]!.labelSelector, undefined);
  });

  it('http.tokenFile is read into a Secret; http.allowedHosts is lower-cased without the trailing dot', () => {
    const doc = base();
    doc.http = { tokenFile: 'http-token', allowedHosts: ['Bridge.Example.', 'metrics.internal'] };
    const c = load(doc);
    assert.equal(c.http.token?.reveal(), 'http-token-0123456789abcdef');
    assert.deepEqual(c.http.allowedHosts, ['bridge.example', 'metrics.internal']);
    assert.doesNotMatch(JSON.stringify(c) + inspect(c, { depth: 10 }), /http-token-0123456789abcdef/);
  });

  it('KSB_HTTP_TOKEN_FILE sets http.tokenFile', () => {
    const c = load(base(), { KSB_HTTP_TOKEN_FILE: join(dir, 'http-token') });
    assert.equal(c.http.token?.reveal(), 'http-token-0123456789abcdef');
  });
});

// The command line without a stack: runCli with a fake io (exit codes, usage errors, config errors
// naming the field) and the status table.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli, type CliIo } from '../../src/cli.ts';
import { formatStatus, type StatusDoc } from '../../src/commands/status.ts';
import { loadConfig } from '../../src/config/index.ts';
import { parseKeyText, signerFromSeed } from '../../src/plan/index.ts';
import { testKeys } from '../harness/keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'ksb-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, content: string): string => {
  const p = join(dir, name);
  writeFileSync(p, content, { mode: 0o600 });
  return p;
};
const KUBECONFIG = file(
  'kubeconfig',
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'a',
    contexts: [{ name: 'a', context: { cluster: 'a', user: 'a' } }],
    clusters: [{ name: 'a', cluster: { server: 'https://127.0.0.1:1' } }],
    users: [{ name: 'a', user: {} }],
  }),
);
const PASSWORD = file('password', 'cli-unit-password\n');
const KEYS = testKeys('cli unit tests');
const KEY = file('signing-key', `${KEYS.privateText}\n`);

const config = (o: { salt?: Record<string, unknown>; cluster?: Record<string, unknown> } = {}) => ({
  salt: { url: 'http://127.0.0.1:1', username: 'u', passwordFile: PASSWORD, eauth: 'file', ...o.salt },
  signing: { keyFile: KEY },
  clusters: [{ name: 'alpha', kubeconfig: KUBECONFIG, ...o.cluster }],
  state: { dir: join(dir, 'state') },
});
let n = 0;
const configFile = (doc: unknown): string => file(`config-${++n}.yaml`, JSON.stringify(doc));

interface Run {
  code: number;
  out: string;
  err: string;
}

/** runCli with captured output; `run` would wait on stopSignal, which never resolves here. */
async function cli(...argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => (out += t), err: (t) => (err += t), env: {}, stopSignal: new Promise(() => {}) };
  const code = await runCli(argv, io);
  return { code, out, err };
}

describe('runCli exit codes', () => {
  it('--help prints every command and exits 0', async () => {
    const r = await cli('--help');
    assert.equal(r.code, 0);
    for (const c of ['run', 'once', 'check', 'keygen', 'status', 'release']) assert.match(r.out, new RegExp(`^\\s+${c}\\b`, 'm'), `help lists ${c}`);
  });

  it("a command's --help exits 0 and lists its options", async () => {
    const r = await cli('once', '--help');
    assert.equal(r.code, 0);
    assert.match(r.out, /--dry-run/);
    assert.match(r.out, /--timeout/);
  });

  it('an unknown command exits 2 and says so', async () => {
    const r = await cli('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command 'frobnicate'/);
  });

  it('an unknown option exits 2 and names it', async () => {
    const r = await cli('run', '--frob');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown option '--frob'/);
  });

  it('no command at all is a usage error (2)', async () => {
    assert.equal((await cli()).code, 2);
  });

  it('release without a cluster is a usage error (2)', async () => {
    const r = await cli('release', '--url', 'http://127.0.0.1:1');
    assert.equal(r.code, 2);
    assert.match(r.err, /missing required argument 'cluster'/);
  });

  for (const bad of ['abc', '0', '-5', '']) {
    it(`once --timeout ${JSON.stringify(bad)} is a usage error (2), not an endless wait`, async () => {
      const r = await cli('once', '--config', configFile(config()), '--timeout', bad);
      assert.equal(r.code, 2);
      assert.match(r.err, /--timeout/);
    });
  }

  it('check --timeout must be a positive number too', async () => {
    const r = await cli('check', '--config', configFile(config()), '--timeout', 'soon');
    assert.equal(r.code, 2);
    assert.match(r.err, /--timeout/);
  });
});

describe('runCli bad configuration exits 2 naming the field', () => {
  for (const cmd of ['run', 'once', 'check']) {
    it(`${cmd}: a missing kubeconfig file names clusters[0].kubeconfig`, async () => {
      const r = await cli(cmd, '--config', configFile(config({ cluster: { kubeconfig: join(dir, 'no-such-kubeconfig') } })));
      assert.equal(r.code, 2);
      assert.match(r.err, /invalid configuration/);
      assert.match(r.err, /clusters\[0\]\.kubeconfig/);
      assert.equal(r.out, '', 'nothing on stdout');
    });
  }

  it('an inline salt password names salt.password and does not echo the value', async () => {
    const r = await cli('once', '--config', configFile(config({ salt: { password: 'inline-secret-value' } })));
    assert.equal(r.code, 2);
    assert.match(r.err, /salt\.password/);
    assert.doesNotMatch(r.err + r.out, /inline-secret-value/);
  });

  it('an unknown field names it', async () => {
    const r = await cli('check', '--config', configFile({ ...config(), sallt: {} }));
    assert.equal(r.code, 2);
    assert.match(r.err, /sallt: unknown field/);
  });

  it('a config file that does not exist exits 2 and names the file', async () => {
    const r = await cli('once', '--config', join(dir, 'absent.yaml'));
    assert.equal(r.code, 2);
    assert.match(r.err, /absent\.yaml/);
  });

  it('the config path can come from KSB_CONFIG_FILE (in the io env)', async () => {
    let err = '';
    const code = await runCli(['check'], {
      out: () => {},
      err: (t) => (err += t),
      stopSignal: new Promise(() => {}),
      env: { KSB_CONFIG_FILE: configFile(config({ cluster: { kubeconfig: join(dir, 'nope') } })) },
    });
    assert.equal(code, 2);
    assert.match(err, /clusters\[0\]\.kubeconfig/);
  });
});

describe('keygen', () => {
  it('writes a private key (base64 + newline, mode 0600) and prints its public key, key id and pillar', async () => {
    const out = join(dir, 'new-key');
    const r = await cli('keygen', '--out', out);
    assert.equal(r.code, 0, r.err);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /^[A-Za-z0-9+/]{43}=\n$/);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const parsed = parseKeyText(readFileSync(out));
    assert.ok(parsed.ok);
    const signer = signerFromSeed(parsed.raw);
    assert.match(r.out, new RegExp(`^key id: +${signer.keyId}$`, 'm'));
    assert.match(r.out, new RegExp(`^public key: +${signer.publicKey.replace(/[+/]/g, '\\$&')}$`, 'm'));
    assert.match(r.out, new RegExp(`^kube_allowlist:\n  public_keys:\n    - "${signer.publicKey.replace(/[+/]/g, '\\$&')}"  # key id ${signer.keyId}$`, 'm'));
    assert.ok(!(r.out + r.err).includes(text.trim()), 'the private key is never printed');
    assert.ok(!(r.out + r.err).includes(parsed.raw.toString('hex')), 'not even as hex');
  });

  it('a written key is one the config accepts, and two runs give different keys', async () => {
    const k1 = join(dir, 'k1');
    const k2 = join(dir, 'k2');
    assert.equal((await cli('keygen', '--out', k1)).code, 0);
    assert.equal((await cli('keygen', '--out', k2)).code, 0);
    assert.notEqual(readFileSync(k1, 'utf8'), readFileSync(k2, 'utf8'));
    const c = loadConfig(configFile({ ...config(), signing: { keyFile: k1 } }), {});
    const parsed = parseKeyText(readFileSync(k1));
    assert.ok(parsed.ok);
    assert.equal(c.signing.signer.keyId, signerFromSeed(parsed.raw).keyId);
  });

  it('never overwrites an existing file (exit 2, file unchanged)', async () => {
    const existing = file('existing-key', 'keep me\n');
    const r = await cli('keygen', '--out', existing);
    assert.equal(r.code, 2);
    assert.match(r.err, /existing-key exists; keygen never overwrites a key/);
    assert.equal(r.out, '');
    assert.equal(readFileSync(existing, 'utf8'), 'keep me\n');
  });

  it('usage errors exit 2: no --out, a directory that does not exist, a directory', async () => {
    const none = await cli('keygen');
    assert.equal(none.code, 2);
    assert.match(none.err, /required option '--out <file>'/);
    const missing = await cli('keygen', '--out', join(dir, 'no-such-dir', 'key'));
    assert.equal(missing.code, 2);
    assert.match(missing.err, /its directory does not exist/);
    assert.equal(existsSync(join(dir, 'no-such-dir')), false);
    const isDir = await cli('keygen', '--out', dir);
    assert.equal(isDir.code, 2);
    assert.match(isDir.err, /exists; keygen never overwrites|is a directory/);
  });
});

describe('check shows the signing key', () => {
  it('prints the configured key id and public key, never the private key', async () => {
    const r = await cli('check', '--config', configFile(config()), '--timeout', '2');
    assert.equal(r.code, 1, 'nothing answers at 127.0.0.1:1, so connectivity fails');
    assert.match(r.out, new RegExp(`^signing key\\s+OK\\s+Ed25519 key id ${KEYS.keyId}, public key ${KEYS.publicText.replace(/[+/]/g, '\\$&')} `, 'm'));
    assert.ok(!(r.out + r.err).includes(KEYS.privateText) && !(r.out + r.err).includes(KEYS.privateHex));
  });

  it('a key file that is not an Ed25519 key exits 2 naming signing.keyFile, without echoing it', async () => {
    const bad = file('hmac-key', 'an-old-shared-hmac-key-0123456789abcdef\n');
    for (const cmd of ['run', 'once', 'check']) {
      const r = await cli(cmd, '--config', configFile({ ...config(), signing: { keyFile: bad } }));
      assert.equal(r.code, 2, `${cmd}: ${r.err}`);
      assert.match(r.err, /signing\.keyFile: .*hmac-key does not hold an Ed25519 private key/);
      assert.ok(!(r.out + r.err).includes('an-old-shared-hmac-key'), 'the key is not echoed');
    }
  });

  it('a cluster target exits 2 naming clusters[0].target and saying where targeting went', async () => {
    const r = await cli('once', '--config', configFile(config({ cluster: { target: 'G@role:db' } })));
    assert.equal(r.code, 2);
    assert.match(r.err, /clusters\[0\]\.target: no longer supported: the reactor always targets I@kube_allowlist:clusters:alpha/);
  });
});

describe('status without a bridge', () => {
  it('exits 1 with a message naming the address it tried', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const r = await cli('status', '--url', `http://127.0.0.1:${port}`);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`cannot reach the bridge at http://127\\.0\\.0\\.1:${port}`));
    assert.match(r.err, /kube-salt-bridge run/);
  });
});

/** A stand-in for a bridge's HTTP endpoint; returns its base URL and the requests it saw. */
async function fakeBridge(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

describe('status and release against an HTTP endpoint', () => {
  const doc = {
    active: true,
    dryRun: false,
    ready: [],
    minions: [],
    clusters: [
      {
        cluster: 'alpha',
        synced: true,
        nodes: 2,
        pending: [],
        ipv4: 2,
        ipv6: 0,
        generation: 42,
        digest: 'sha256:x',
        lastPublishAt: undefined,
        held: undefined,
        lastError: undefined,
        minionsBehind: [],
      },
    ],
  };

  it('status prints the table, --json the document; exit 0', async () => {
    const b = await fakeBridge((_req, res) => res.end(JSON.stringify(doc)));
    try {
      const table = await cli('status', '--url', b.url);
      assert.equal(table.code, 0, table.err);
      assert.match(table.out, /^alpha\s+yes\s+2\s+0\s+2\s+0\s+42\s/m);
      const json = await cli('status', '--url', b.url, '--json');
      assert.equal(json.code, 0, json.err);
      assert.deepEqual((JSON.parse(json.out) as { clusters: Array<{ generation: number }> }).clusters[0]?.generation, 42);
      assert.deepEqual(b.seen, ['GET /status', 'GET /status']);
    } finally {
      await b.close();
    }
  });

  it('status against something that is not a bridge exits 1 and says so', async () => {
    const b = await fakeBridge((_req, res) => {
      res.writeHead(404);
      res.end('<html>nope</html>');
    });
    try {
      const r = await cli('status', '--url', b.url);
      assert.equal(r.code, 1);
      assert.match(r.err, /answered HTTP 404 without JSON.*kube-salt-bridge's http\.listen/);
    } finally {
      await b.close();
    }
  });

  it('release posts the cluster and digest; exit 0 when released, 1 when refused', async () => {
    let released = true;
    const b = await fakeBridge((_req, res) => {
      res.writeHead(released ? 200 : 409);
      res.end(JSON.stringify({ released, message: released ? 'alpha: releasing held list sha256:abc' : 'alpha has no held publish' }));
    });
    try {
      const ok = await cli('release', 'alpha', '--url', b.url, '--digest', 'sha256:abc');
      assert.equal(ok.code, 0, ok.err);
      assert.equal(ok.out, 'alpha: releasing held list sha256:abc\n');
      released = false;
      const refused = await cli('release', 'alpha', '--url', b.url);
      assert.equal(refused.code, 1);
      assert.match(refused.out, /no held publish/);
      assert.deepEqual(b.seen, ['POST /release?cluster=alpha&digest=sha256%3Aabc', 'POST /release?cluster=alpha']);
    } finally {
      await b.close();
    }
  });
});

describe('formatStatus', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  const doc: StatusDoc = {
    active: true,
    dryRun: false,
    ready: [],
    clusters: [
      {
        cluster: 'alpha',
        synced: true,
        nodes: 3,
        pending: ['a9'],
        ipv4: 3,
        ipv6: 1,
        generation: 1772366390000,
        digest: 'sha256:aaaa',
        lastPublishAt: '2026-03-01T11:59:50Z',
        held: undefined,
        lastError: undefined,
        minionsBehind: [],
      },
      {
        cluster: 'beta-long-name',
        synced: false,
        nodes: 0,
        pending: [],
        ipv4: 0,
        ipv6: 0,
        generation: undefined,
        digest: undefined,
        lastPublishAt: undefined,
        held: { reasons: ['shrink'], messages: ['would remove 80%'], digest: 'sha256:0123456789abcdef0123456789', since: '2026-03-01T11:59:00Z' },
        lastError: { code: 'KSB_SALT_UNREACHABLE', message: 'x', at: '2026-03-01T11:59:00Z' },
        minionsBehind: ['m1', 'm2'],
      },
    ],
    minions: [
      {
        cluster: 'alpha',
        minion: 'm1',
        appliedGeneration: 1772366390000,
        appliedDigest: 'sha256:aaaa',
        lastResult: 'applied',
        reason: '',
        lastSeenAt: now - 5000,
        retryAt: undefined,
      },
      {
        cluster: 'alpha',
        minion: 'm2',
        appliedGeneration: 5,
        appliedDigest: undefined,
        lastResult: 'failed',
        reason: 'bad signature',
        lastSeenAt: undefined,
        retryAt: now + 1000,
      },
    ],
  };

  it('renders an aligned row per cluster with nodes, generation, held and errors', () => {
    const text = formatStatus(doc, now);
    const lines = text.split('\n');
    assert.equal(lines[0], 'bridge: publishing; ready');
    const header = lines.find((l) => l.startsWith('CLUSTER'))!;
    const alpha = lines.find((l) => l.startsWith('alpha '))!;
    const beta = lines.find((l) => l.startsWith('beta-long-name '))!;
    const col = (row: string, name: string) => row.slice(header.indexOf(name)).split(/\s{2,}/)[0];
    assert.equal(col(alpha, 'SYNCED'), 'yes');
    assert.equal(col(alpha, 'NODES'), '3');
    assert.equal(col(alpha, 'PENDING'), '1');
    assert.equal(col(alpha, 'IPV6'), '1');
    assert.equal(col(alpha, 'GENERATION'), '1772366390000');
    assert.equal(col(alpha, 'LAST PUBLISH'), '10s ago');
    assert.equal(col(alpha, 'HELD'), '-');
    assert.equal(col(beta, 'SYNCED'), 'no');
    assert.equal(col(beta, 'GENERATION'), '-');
    assert.equal(col(beta, 'HELD'), 'shrink sha256:0123456789ab');
    assert.equal(col(beta, 'BEHIND'), 'm1,m2');
    assert.equal(col(beta, 'ERROR'), 'KSB_SALT_UNREACHABLE');
  });

  it('renders minions, marking the ones behind the current generation', () => {
    const lines = formatStatus(doc, now).split('\n');
    const m1 = lines.find((l) => l.startsWith('m1 '))!;
    const m2 = lines.find((l) => l.startsWith('m2 '))!;
    assert.match(m1, /applied\s+current\s+5s ago\s+-$/);
    assert.match(m2, /failed\s+behind \(current 1772366390000\)\s+-\s+bad signature$/);
  });

  it('says standby, dry run and why it is not ready; no minion yet', () => {
    const text = formatStatus({ ...doc, active: false, dryRun: true, ready: ['cluster beta-long-name not synced'], minions: [] }, now);
    assert.match(text, /^bridge: standby \(not leader\) \[dry run\]; not ready: cluster beta-long-name not synced\n/);
    assert.match(text, /\(no minion has answered yet\)\n$/);
  });
});

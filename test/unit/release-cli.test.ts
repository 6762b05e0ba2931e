// `kube-salt-bridge release` against the real HTTP server: the token comes from the config's
// http.tokenFile or --token-file; without the right one nothing is released and the exit code is 1.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { runCli, type CliIo } from '../../src/cli.ts';
import { startHttp } from '../../src/http/server.ts';
import { testKeys } from '../harness/keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'ksb-release-'));
const file = (name: string, content: string): string => {
  const p = join(dir, name);
  writeFileSync(p, content, { mode: 0o600 });
  return p;
};
const TOKEN = 'release-cli-token-0123456789abcdef';
const TOKEN_FILE = file('http-token', `${TOKEN}\n`);
const WRONG_FILE = file('wrong-token', 'another-token-0123456789abcdef\n');
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
const KEY = file('signing-key', `${testKeys('release cli unit tests').privateText}\n`);
const PASSWORD = file('password', 'pw\n');

let server: Server;
let port: number;
const released: string[] = [];

before(async () => {
  server = await startHttp(
    { listen: '127.0.0.1:0', token: { reveal: () => TOKEN } },
    {
      registry: new Registry(),
      notReady: () => [],
      status: () => ({}),
      release: (cluster) => {
        released.push(cluster);
        return { released: true, message: `${cluster}: releasing held list sha256:abc` };
      },
    },
  );
  port = (server.address() as { port: number }).port;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const configFile = (http: Record<string, unknown>): string =>
  file(
    `config-${Math.random().toString(36).slice(2)}.yaml`,
    JSON.stringify({
      salt: { url: 'http://127.0.0.1:1', username: 'u', passwordFile: PASSWORD, eauth: 'file' },
      signing: { keyFile: KEY },
      clusters: [{ name: 'alpha', kubeconfig: KUBECONFIG }],
      http: { listen: `127.0.0.1:${port}`, ...http },
    }),
  );

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => (out += t), err: (t) => (err += t), env: {}, stopSignal: new Promise(() => {}) };
  const code = await runCli(argv, io);
  return { code, out, err };
}

describe('release with a token', () => {
  it('takes the address and the token from the config (http.listen, http.tokenFile)', async () => {
    const r = await cli('release', 'alpha', '--config', configFile({ tokenFile: TOKEN_FILE }));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /alpha: releasing held list/);
    assert.deepEqual(released.splice(0), ['alpha']);
  });

  it('--token-file wins over the config, and works with --url alone', async () => {
    const viaFlag = await cli(
      'release',
      'alpha',
      '--url',
      `http://127.0.0.1:${port}`,
      '--token-file',
      TOKEN_FILE,
      '--config',
      join(dir, 'no-such-config.yaml'),
    );
    assert.equal(viaFlag.code, 0, viaFlag.err);
    const wins = await cli('release', 'alpha', '--config', configFile({ tokenFile: TOKEN_FILE }), '--token-file', WRONG_FILE);
    assert.equal(wins.code, 1);
    assert.match(wins.err, /refused the release: HTTP 401: POST \/release: wrong token/);
    assert.deepEqual(released.splice(0), ['alpha']);
  });

  it('no token: exit 1, nothing released, the message says where the token comes from', async () => {
    const r = await cli('release', 'alpha', '--config', configFile({}));
    assert.equal(r.code, 1);
    assert.match(r.err, /HTTP 401: .*Authorization: Bearer.*set http\.tokenFile in the config or pass --token-file/);
    assert.deepEqual(released, []);
    assert.ok(!(r.out + r.err).includes(TOKEN));
  });

  it('an unreadable --token-file exits 2 naming the option', async () => {
    const r = await cli('release', 'alpha', '--url', `http://127.0.0.1:${port}`, '--token-file', join(dir, 'missing'));
    assert.equal(r.code, 2);
    assert.match(r.err, /--token-file: file not found/);
  });
});

// deploy/systemd/kube-salt-bridge.service: systemd's own tools accept it (systemd-analyze verify),
// its exposure score stays at the figure the README states (systemd-analyze security), a weakened
// copy fails the same threshold, and deploy/systemd/config.yaml loads from exactly the credentials
// the unit's LoadCredential= lines provide, laid out the way systemd lays them out.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { testKeys } from '../harness/keys.ts';
import { ROOT, which } from '../harness/tools.ts';

const UNIT = join(ROOT, 'deploy', 'systemd', 'kube-salt-bridge.service');
const CONFIG = join(ROOT, 'deploy', 'systemd', 'config.yaml');
const INSTALLED_COMMAND = '/usr/local/bin/kube-salt-bridge';
/** The exposure threshold, in systemd-analyze's tenths: the unit must score 1.1 or better. */
const THRESHOLD = 11;

const dir = mkdtempSync(join(tmpdir(), 'ksb-systemd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function analyze(args: string[]): Promise<{ code: number; out: string }> {
  const bin = which('systemd-analyze');
  assert.ok(bin, 'systemd-analyze is missing (Debian package systemd; scripts/setup.sh installs it)');
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** [Service] settings: key → every value assigned, in order. */
function settings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const i = line.indexOf('=');
    const key = `${section}.${line.slice(0, i)}`;
    m.set(key, [...(m.get(key) ?? []), line.slice(i + 1)]);
  }
  return m;
}

const unitText = readFileSync(UNIT, 'utf8');
const service = settings(unitText);
const one = (key: string): string | undefined => service.get(`Service.${key}`)?.at(-1);

/** The unit with its ExecStart pointed at an executable that exists here (verify checks it). */
function unitRunnable(to: string): string {
  const execStart = one('ExecStart') ?? '';
  assert.ok(execStart.startsWith(`${INSTALLED_COMMAND} `), `ExecStart runs the npm package's command: ${execStart}`);
  const d = join(dir, `unit-${basename(to)}`);
  mkdirSync(d, { recursive: true });
  const file = join(d, 'kube-salt-bridge.service');
  writeFileSync(file, unitText.replace(`ExecStart=${INSTALLED_COMMAND} `, `ExecStart=${to} `));
  return file;
}

describe('systemd unit', () => {
  it('systemd-analyze verify accepts it', async () => {
    const launcher = join(ROOT, 'bin', 'kube-salt-bridge.js');
    assert.ok((statSync(launcher).mode & 0o111) !== 0, 'the launcher is executable');
    const r = await analyze(['verify', unitRunnable(launcher)]);
    assert.deepEqual(r, { code: 0, out: '' }, 'verify prints nothing and exits 0');
  });

  it(`is hardened: systemd-analyze security --offline scores it at most ${THRESHOLD / 10}, the figure in the README`, async () => {
    const r = await analyze(['security', '--offline=yes', `--threshold=${THRESHOLD}`, '--no-pager', UNIT]);
    assert.equal(r.code, 0, r.out);
    const m = /Overall exposure level for kube-salt-bridge\.service: (\d+\.\d)/.exec(r.out);
    assert.ok(m, r.out);
    const score = Number(m[1]);
    assert.ok(score <= THRESHOLD / 10, `exposure ${score}`);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    assert.ok(readme.includes(`exposure level of **${m[1]}**`), `the README states the measured score (${m[1]})`);
  });

  it('the same threshold fails a unit without the sandbox (the check can fail)', async () => {
    const weak = join(dir, 'weak.service');
    writeFileSync(
      weak,
      unitText
        .split('\n')
        .filter((l) => !/^(Protect|Private|SystemCall|RestrictAddressFamilies|CapabilityBoundingSet)/.test(l))
        .join('\n'),
    );
    const r = await analyze(['security', '--offline=yes', `--threshold=${THRESHOLD}`, '--no-pager', weak]);
    assert.notEqual(r.code, 0, r.out);
  });

  it('has the settings the deployment relies on', () => {
    const expect: Record<string, string> = {
      Type: 'exec',
      DynamicUser: 'yes',
      StateDirectory: 'kube-salt-bridge',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      CapabilityBoundingSet: '',
      RestartPreventExitStatus: '2',
    };
    for (const [k, v] of Object.entries(expect)) assert.equal(one(k), v, k);
    assert.deepEqual(service.get('Service.SystemCallFilter'), ['@system-service', '~@privileged @resources']);
    assert.equal(service.get('Install.WantedBy')?.[0], 'multi-user.target');
  });

  it('deploy/systemd/config.yaml loads from exactly the credentials LoadCredential= provides', () => {
    // Sources as the README lays them out, under a scratch root instead of /.
    const keys = testKeys('systemd unit test');
    const root = join(dir, 'root');
    const sources: Record<string, string> = {
      '/etc/kube-salt-bridge/credentials/salt-api-password': 'the-salt-api-password\n',
      '/etc/kube-salt-bridge/credentials/signing-key': `${keys.privateText}\n`,
      '/etc/kube-salt-bridge/credentials/http-token': 'http-token-0123456789abcdef\n',
      '/etc/kube-salt-bridge/credentials/kubeconfigs/prod.yaml': JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'prod',
        contexts: [{ name: 'prod', context: { cluster: 'prod', user: 'prod' } }],
        clusters: [{ name: 'prod', cluster: { server: 'https://prod.example:6443' } }],
        users: [{ name: 'prod', user: { token: 'kube-token' } }],
      }),
    };
    for (const [p, content] of Object.entries(sources)) {
      mkdirSync(join(root, p, '..'), { recursive: true });
      writeFileSync(join(root, p), content, { mode: 0o600 });
    }
    // What systemd does at start: a file becomes the credential <id>; a directory's files become
    // <id>_<file name> (systemd.exec(5), LoadCredential=); each read-only, for the service only.
    const creds = join(dir, 'credentials');
    mkdirSync(creds, { mode: 0o700 });
    const loaded = service.get('Service.LoadCredential') ?? [];
    assert.ok(loaded.length > 0, 'the unit loads credentials');
    for (const spec of loaded) {
      const [id, path] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)];
      const src = join(root, path);
      if (statSync(src).isDirectory()) {
        for (const f of readdirSync(src)) copyFileSync(join(src, f), join(creds, `${id}_${f}`));
      } else {
        copyFileSync(src, join(creds, id));
      }
    }
    for (const f of readdirSync(creds)) chmodSync(join(creds, f), 0o400);
    const ca = join(dir, 'salt-api.crt');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');

    const c = loadConfig(CONFIG, { CREDENTIALS_DIRECTORY: creds, KSB_SALT_API_CA_FILE: ca }, { hostname: 'master-1' });
    assert.equal(c.salt.password.reveal(), 'the-salt-api-password');
    assert.equal(c.signing.signer.keyId, keys.keyId);
    assert.equal(c.http.token?.reveal(), 'http-token-0123456789abcdef');
    assert.deepEqual(
      c.clusters.map((k) => k.source),
      [{ kind: 'kubeconfig', kubeconfig: join(creds, 'kubeconfig_prod.yaml'), context: undefined }],
    );
    assert.equal(c.state.dir, `/var/lib/${one('StateDirectory')}`, "state.dir is the unit's StateDirectory");
    assert.equal(c.http.host, '127.0.0.1');
    assert.deepEqual(c.warnings, []);
  });
});

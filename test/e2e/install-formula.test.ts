// The kube_salt_bridge Salt formula (salt/file_roots/kube_salt_bridge) applied for real with
// `salt-call --local` into a throwaway root: a private mount namespace whose /etc and /opt are
// overlays (writes land in the test's directory, the machine's own files are untouched). It
// installs Node.js from the npm registry and the package from `npm pack`'s tarball, writes the
// config and the secrets from pillar, the unit and its drop-in, and the bridge's eauth user; then,
// in the same namespace, `systemd-analyze verify` accepts the unit, a second apply changes
// nothing, and `check` run as the unit would run it (its command, its LoadCredential= files as
// $CREDENTIALS_DIRECTORY) passes against the real kube-apiserver and salt-api. Last, still in that
// namespace, kube_salt_bridge.clean removes what the formula installed and a second clean changes
// nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, BRIDGE_SALT_USER, type SaltStack } from '../harness/salt.ts';
import { ROOT } from '../harness/tools.ts';
import { run, stopInOrder, workDir } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';

const KEYS = testKeys('formula tests');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const HTTP_TOKEN = 'formula-test-http-token-0123456789abcdef';
const PREFIX = '/opt/kube-salt-bridge';
const UNIT = '/etc/systemd/system/kube-salt-bridge.service';
const WANTS = '/etc/systemd/system/multi-user.target.wants/kube-salt-bridge.service';

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let dir: string;
/** What the namespace script printed, by step. */
let out: Record<string, string>;

interface StateRet {
  result: boolean;
  changes: Record<string, unknown>;
  comment: string;
  name: string;
}

/** The formula's states of one salt-call --out json run, by state id. */
function states(json: string): Record<string, StateRet> {
  const doc = JSON.parse(json) as { local: Record<string, StateRet & { __id__: string }> };
  return Object.fromEntries(Object.values(doc.local).map((s) => [s.__id__, s]));
}

before(
  async () => {
    dir = workDir('formula');
    const [tarball] = await Promise.all([
      (async () => {
        const r = await run('bash', ['-c', `cd ${JSON.stringify(ROOT)} && exec npm pack --pack-destination ${JSON.stringify(dir)} --json`], {
          env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
          timeoutMs: 300_000,
        });
        assert.equal(r.code, 0, `npm pack:\n${r.stderr.slice(-2000)}`);
        return join(dir, basename((JSON.parse(r.stdout) as Array<{ filename: string }>)[0]!.filename));
      })(),
      (async () => {
        kube = await startKube('formula');
      })(),
      (async () => {
        lab = await startLab();
        salt = await startSalt(lab, { minions: 0 });
      })(),
    ]);
    await kube.createNode('f1', [{ type: 'InternalIP', address: '10.41.0.1' }]);

    const pillar = {
      kube_salt_bridge: {
        package: tarball,
        version: PKG.version,
        node: { install: true, version: process.versions.node },
        config: {
          salt: {
            url: salt.apiUrl,
            username: BRIDGE_SALT_USER,
            eauth: 'file',
            passwordFile: '${CREDENTIALS_DIRECTORY}/salt-api-password',
            caFile: salt.apiCaFile,
          },
          signing: { keyFile: '${CREDENTIALS_DIRECTORY}/signing-key' },
          clusters: [{ name: 'formula', kubeconfig: '${CREDENTIALS_DIRECTORY}/kubeconfig_formula.yaml' }],
          state: { dir: join(dir, 'state') },
          http: { listen: '127.0.0.1:0', tokenFile: '${CREDENTIALS_DIRECTORY}/http-token' },
        },
        credentials: {
          'salt-api-password': salt.bridge.password,
          'signing-key': KEYS.privateText,
          'http-token': HTTP_TOKEN,
          kubeconfigs: { formula: readFileSync(kube.bridgeKubeconfig, 'utf8') },
        },
        service: { enable: false }, // no systemd as PID 1 here
      },
    };
    for (const d of ['conf', 'pillar', 'root', 'creds']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'pillar', 'top.sls'), stringify({ base: { '*': ['ksb'] } }));
    writeFileSync(join(dir, 'pillar', 'ksb.sls'), stringify(pillar), { mode: 0o600 });
    writeFileSync(
      join(dir, 'conf', 'minion'),
      stringify({
        id: 'formula-test',
        file_client: 'local',
        root_dir: join(dir, 'root'),
        log_file: join(dir, 'root', 'minion.log'),
        file_roots: { base: [join(ROOT, 'salt', 'file_roots')] },
        pillar_roots: { base: [join(dir, 'pillar')] },
      }),
    );

    // Everything below runs in one private mount namespace with /etc and /opt as overlays.
    const apply = `salt-call --local -c ${dir}/conf --out json --retcode-passthrough state.apply kube_salt_bridge`;
    const left = [
      PREFIX,
      '/etc/kube-salt-bridge',
      UNIT,
      `${UNIT}.d`,
      WANTS,
      '/etc/salt/master.d/kube-salt-bridge-eauth.conf',
      '/etc/salt/kube-salt-bridge.users',
    ];
    const node = `${PREFIX}/node/node_modules/.bin/node`;
    const script = `set -u
for d in etc opt; do mkdir -p ${dir}/up/$d ${dir}/work/$d; mount -t overlay overlay -o lowerdir=/$d,upperdir=${dir}/up/$d,workdir=${dir}/work/$d /$d; done
step() { echo "=== $1"; }
step apply1; ${apply} 2>${dir}/apply1.err; echo "rc=$?"
step apply2; ${apply} 2>${dir}/apply2.err; echo "rc=$?"
step modes; stat -c '%a %U:%G %n' /etc/kube-salt-bridge /etc/kube-salt-bridge/config.yaml /etc/kube-salt-bridge/credentials /etc/kube-salt-bridge/credentials/* /etc/kube-salt-bridge/credentials/kubeconfigs/* /etc/salt/kube-salt-bridge.users
step users; cat /etc/salt/kube-salt-bridge.users; echo
step eauth; cmp /etc/salt/master.d/kube-salt-bridge-eauth.conf ${ROOT}/salt/conf/master.d/eauth.conf && echo identical
step verify; systemd-analyze verify ${UNIT} 2>&1; echo "rc=$?"
step dropin; cat ${UNIT}.d/10-salt-formula.conf
step node; ${node} --version
step version; ${PREFIX}/bin/kube-salt-bridge --version 2>&1
step check
# The credentials as the unit's LoadCredential= lines hand them to the service.
creds=${dir}/creds
sed -n 's/^LoadCredential=//p' ${UNIT} | while IFS=: read -r name path; do
  if [ -d "$path" ]; then for f in "$path"/*; do cp "$f" "$creds/\${name}_$(basename "$f")"; done; else cp "$path" "$creds/$name"; fi
done
exec_start=$(sed -n 's/^ExecStart=\\(.\\+\\)/\\1/p' ${UNIT}.d/10-salt-formula.conf)
env -i PATH=$(dirname ${node}):/usr/bin:/bin HOME=/root CREDENTIALS_DIRECTORY=$creds \${exec_start/ run / check } 2>&1; echo "rc=$?"
# What the formula wrote, for the tests below (clean removes it from the overlay).
mkdir ${dir}/applied && cp -a ${dir}/up/etc ${dir}/applied/etc
# Enabled, as systemctl enable would link it.
mkdir -p $(dirname ${WANTS}) && ln -s ${UNIT} ${WANTS}
step clean1; ${apply}.clean 2>${dir}/clean1.err; echo "rc=$?"
step clean2; ${apply}.clean 2>${dir}/clean2.err; echo "rc=$?"
step left; for p in ${left.join(' ')}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done
`;
    const r = await run('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], { env: process.env, timeoutMs: 540_000 });
    assert.equal(r.code, 0, `the namespace script failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    out = {};
    for (const part of r.stdout.split(/^=== /m).slice(1)) {
      const nl = part.indexOf('\n');
      out[part.slice(0, nl)] = part.slice(nl + 1);
    }
  },
  { timeout: 900_000 },
);

after(() => stopInOrder(salt, lab, kube));

/** The JSON of an apply step (before its rc line). */
const applied = (step: string) => states(out[step]!.replace(/\nrc=\d+\n?$/, ''));

test('the formula applies cleanly: Node.js, the package, config, credentials, unit, eauth user', () => {
  assert.match(out.apply1!, /\nrc=0\n?$/, `first apply:\n${out.apply1}\n${readFileSync(join(dir, 'apply1.err'), 'utf8').slice(-2000)}`);
  const s = applied('apply1');
  for (const [id, st] of Object.entries(s)) assert.equal(st.result, true, `${id}: ${st.comment}`);
  for (const id of [
    'kube_salt_bridge-init-cmd-node-installed',
    'kube_salt_bridge-init-cmd-package-installed',
    'kube_salt_bridge-init-file-config',
    'kube_salt_bridge-init-file-unit',
    'kube_salt_bridge-init-file-unit-dropin',
    'kube_salt_bridge-init-file-eauth-users',
  ]) {
    assert.ok(s[id] && Object.keys(s[id].changes).length > 0, `${id} changed something on the first run`);
  }
  assert.equal(out.node!.trim(), `v${process.versions.node}`, 'Node.js from the npm registry in the prefix');
  assert.equal(out.version!.trim(), PKG.version, 'the package of the tarball');
});

test('a second apply changes nothing', () => {
  assert.match(out.apply2!, /\nrc=0\n?$/);
  const changed = Object.entries(applied('apply2'))
    .filter(([, st]) => Object.keys(st.changes).length > 0)
    .map(([id]) => id);
  assert.deepEqual(changed, []);
});

test('secrets: 0400 root files in a 0700 directory, never in the state output', () => {
  const modes = out.modes!.trim().split('\n');
  const mode = (p: string) =>
    modes
      .find((l) => l.endsWith(` ${p}`))
      ?.split(' ')
      .slice(0, 2)
      .join(' ');
  assert.equal(mode('/etc/kube-salt-bridge/credentials'), '700 root:root');
  for (const f of ['salt-api-password', 'signing-key', 'http-token', 'kubeconfigs/formula.yaml'])
    assert.equal(mode(`/etc/kube-salt-bridge/credentials/${f}`), '400 root:root', f);
  assert.equal(mode('/etc/salt/kube-salt-bridge.users'), '600 root:root');
  assert.equal(mode('/etc/kube-salt-bridge/config.yaml'), '644 root:root');
  const written = readFileSync(join(dir, 'applied', 'etc', 'kube-salt-bridge', 'credentials', 'salt-api-password'), 'utf8');
  assert.equal(written, salt.bridge.password, 'the password exactly, no trailing newline');
  const text = out.apply1! + out.apply2! + readFileSync(join(dir, 'apply1.err'), 'utf8') + readFileSync(join(dir, 'apply2.err'), 'utf8');
  for (const secret of [salt.bridge.password, KEYS.privateText.trim(), KEYS.privateHex, HTTP_TOKEN]) {
    assert.ok(!text.includes(secret), `the state output must not contain the secret ${secret.slice(0, 6)}…`);
  }
  assert.ok(text.includes('kube_salt_bridge-init-file-credential-signing-key'), 'the secret states ran');
});

test("the eauth user: the package's eauth.conf and the SHA-256 of the password", () => {
  assert.equal(out.eauth!.trim(), 'identical');
  assert.equal(out.users!.trim(), `${BRIDGE_SALT_USER}:${createHash('sha256').update(salt.bridge.password).digest('hex')}`);
});

test("the unit: the package's own, verified by systemd-analyze, with a drop-in running this prefix on this Node.js", () => {
  assert.deepEqual(out.verify!.trim(), 'rc=0');
  assert.equal(
    readFileSync(join(dir, 'applied', 'etc', 'systemd', 'system', 'kube-salt-bridge.service'), 'utf8'),
    readFileSync(join(ROOT, 'deploy', 'systemd', 'kube-salt-bridge.service'), 'utf8'),
  );
  assert.match(
    out.dropin!,
    new RegExp(
      `^ExecStart=${PREFIX}/node/node_modules/.bin/node --max-semi-space-size=1 ${PREFIX}/lib/node_modules/kube-salt-bridge/bin/kube-salt-bridge.js run --config /etc/kube-salt-bridge/config.yaml$`,
      'm',
    ),
  );
});

test('`check`, run as the unit runs the bridge, passes against the real kube-apiserver and salt-api', () => {
  assert.match(out.check!, /\nrc=0\n?$/, out.check);
  assert.match(out.check!, /OK\s+list nodes: 1 node\(s\)/);
  assert.match(out.check!, new RegExp(`OK\\s+Ed25519 key id ${KEYS.keyId}`));
  assert.match(out.check!, /all checks passed/);
  for (const secret of [salt.bridge.password, HTTP_TOKEN]) assert.ok(!out.check!.includes(secret));
});

test('clean removes the service, unit, configuration, secrets, package, Node.js and eauth user; a second clean changes nothing', () => {
  assert.match(out.clean1!, /\nrc=0\n?$/, `first clean:\n${out.clean1}\n${readFileSync(join(dir, 'clean1.err'), 'utf8').slice(-2000)}`);
  const s = applied('clean1');
  for (const [id, st] of Object.entries(s)) assert.equal(st.result, true, `${id}: ${st.comment}`);
  for (const id of [
    'kube_salt_bridge-clean-file-enabled-absent',
    'kube_salt_bridge-clean-file-unit-absent',
    'kube_salt_bridge-clean-file-config-absent',
    'kube_salt_bridge-clean-file-package-absent',
    'kube_salt_bridge-clean-file-eauth-absent',
    'kube_salt_bridge-clean-cmd-dirs-removed',
  ]) {
    assert.ok(s[id] && Object.keys(s[id].changes).length > 0, `${id} changed something on the first clean`);
  }
  assert.equal(out.left!.trim(), '', 'nothing the formula installed is left');
  assert.match(out.clean2!, /\nrc=0\n?$/, `second clean:\n${out.clean2}\n${readFileSync(join(dir, 'clean2.err'), 'utf8').slice(-2000)}`);
  const changed = Object.entries(applied('clean2'))
    .filter(([, st]) => Object.keys(st.changes).length > 0)
    .map(([id]) => id);
  assert.deepEqual(changed, []);
  const text = out.clean1! + out.clean2! + readFileSync(join(dir, 'clean1.err'), 'utf8') + readFileSync(join(dir, 'clean2.err'), 'utf8');
  for (const secret of [salt.bridge.password, KEYS.privateText.trim(), KEYS.privateHex, HTTP_TOKEN]) assert.ok(!text.includes(secret));
});

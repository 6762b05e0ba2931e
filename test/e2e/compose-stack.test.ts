// The compose stack's Salt side, run for real: the services salt-master, salt-api, minion-1 and
// minion-2 of docker-compose.yml exactly as `docker-compose config` resolves them (image built from
// deploy/compose/salt/Dockerfile, commands, capabilities, bind mounts, named volumes, secrets made
// by deploy/compose/init.sh, salt-api in salt-master's network namespace), started with podman on
// a network of their own; the bridge from its image with the stack's config and secrets.
//
// Stand-ins, because nothing can be pulled here: the harness's real kube-apiserver instead of k3s
// (the bridge gets the harness's kubeconfig in place of the stack's token kubeconfig, and the host
// network to reach it); a TCP listener from the Salt image on port 6379 in each minion's network
// namespace instead of the Redis image; two containers on the stack's network as a node of the
// cluster and as an outsider. podman flags as in install-image.test.ts (runc, cgroupfs, ulimits).
// There is no DNS on this podman network (CNI without its dnsname plugin): every container gets
// the service names as host entries, which is what compose's DNS gives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { ROOT, freePort, requireTools } from '../harness/tools.ts';
import { run, must, stopInOrder, waitFor } from '../harness/proc.ts';
import type { ComposeFile, ComposeService } from '../harness/compose.ts';

const P = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
const ULIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'];
const LABEL = 'ksb-test-run';
const RUN = `ksbc${process.pid}`;
// A /24 of the podman network that is this run's alone (the project's own test hosts).
const NET = `10.124.${process.pid % 250}`;
const IP: Record<string, string> = { 'salt-master': `${NET}.10`, 'minion-1': `${NET}.21`, 'minion-2': `${NET}.22`, node: `${NET}.31`, outsider: `${NET}.32` };
const SALT_SERVICES = ['salt-master', 'salt-api', 'minion-1', 'minion-2'];

type Service = ComposeService;
let compose: ComposeFile;
let out: string;
let kube: KubeCluster;
let bridgeImage: string;
let saltImage: string;
let bridgePort: number;
const created = { containers: [] as string[], volumes: new Set<string>(), network: false };

const podman = (args: string[], timeoutMs = 120_000) => run('podman', [...P, ...args], { timeoutMs });
const cname = (service: string) => `${RUN}-${service}`;

/** Removes what this run (or a crashed earlier one, by its label) left: containers, volumes, network. */
function cleanup(owner = process.pid): void {
  const sync = (args: string[]) => spawnSync('podman', [...P, ...args], { encoding: 'utf8' });
  const ids = (sync(['ps', '-a', '-q', '--filter', `label=${LABEL}=${owner}`]).stdout ?? '').split('\n').filter(Boolean);
  // Containers sharing another's network namespace go first.
  for (const id of ids.reverse()) sync(['rm', '-f', '-t', '0', id]);
  // Named volumes are created by `podman run -v NAME:…` (no label): they are known by their prefix.
  for (const v of (sync(['volume', 'ls', '-q']).stdout ?? '').split('\n').filter((v) => v.startsWith(`ksbc${owner}-`))) sync(['volume', 'rm', '-f', v]);
  for (const n of (sync(['network', 'ls', '-q', '--filter', `label=${LABEL}=${owner}`]).stdout ?? '').split('\n').filter(Boolean))
    sync(['network', 'rm', '-f', n]);
}
function cleanupStale(): void {
  const r = spawnSync('podman', [...P, 'ps', '-a', '--filter', `label=${LABEL}`, '--format', `{{index .Labels "${LABEL}"}}`], { encoding: 'utf8' });
  const nets = spawnSync('podman', [...P, 'network', 'ls', '--filter', `label=${LABEL}`, '--format', `{{index .Labels "${LABEL}"}}`], { encoding: 'utf8' });
  const vols = spawnSync('podman', [...P, 'volume', 'ls', '-q'], { encoding: 'utf8' });
  const volOwners = (vols.stdout ?? '')
    .split('\n')
    .map((v) => /^ksbc(\d+)-/.exec(v)?.[1])
    .filter((o): o is string => o !== undefined);
  for (const owner of new Set([...(r.stdout ?? '').split('\n'), ...(nets.stdout ?? '').split('\n'), ...volOwners].filter(Boolean).map(Number))) {
    let alive = true;
    try {
      process.kill(owner, 0);
    } catch {
      alive = false;
    }
    if (!alive) cleanup(owner);
  }
}
process.on('exit', () => {
  if (created.containers.length > 0 || created.network) cleanup();
});

/** Host entries for every service name (and network alias) of the stack. */
function hostEntries(): string[] {
  const hosts: Record<string, string> = { 'salt-master': IP['salt-master']!, 'minion-1': IP['minion-1']!, 'minion-2': IP['minion-2']! };
  for (const a of compose.services['salt-master']!.networks?.default?.aliases ?? []) hosts[a] = IP['salt-master']!;
  return Object.entries(hosts).flatMap(([h, ip]) => ['--add-host', `${h}:${ip}`]);
}

/** The podman flags for one compose service as docker-compose config resolved it. */
function serviceArgs(name: string, svc: Service, over: { network?: string[]; mounts?: (source: string, target: string) => string | undefined } = {}): string[] {
  const args = ['--name', cname(name), '--label', `${LABEL}=${process.pid}`, ...ULIMITS];
  if (!over.network && svc.hostname) args.push('--hostname', svc.hostname);
  if (over.network) args.push(...over.network);
  else if (typeof svc.network_mode === 'string' && svc.network_mode.startsWith('service:'))
    args.push('--network', `container:${cname(svc.network_mode.slice(8))}`);
  else args.push('--network', RUN, '--ip', IP[name]!, ...hostEntries());
  for (const c of svc.cap_add ?? []) args.push('--cap-add', c);
  for (const c of svc.cap_drop ?? []) args.push('--cap-drop', c);
  for (const o of svc.security_opt ?? []) args.push('--security-opt', o);
  if (svc.read_only) args.push('--read-only', '--read-only-tmpfs=false');
  for (const [k, v] of Object.entries(svc.environment ?? {})) args.push('-e', `${k}=${v}`);
  for (const v of (svc.volumes ?? []) as string[]) {
    const [source, target, mode] = v.split(':') as [string, string, string?];
    const replaced = over.mounts?.(source, target);
    if (replaced === '') continue;
    if (replaced) {
      args.push('-v', replaced);
      continue;
    }
    if (source.startsWith('/')) {
      // init.sh's generated pillar comes from this run's output directory.
      const generated = join(ROOT, 'deploy', 'compose', 'generated');
      args.push('-v', `${source.startsWith(generated) ? join(out, 'generated') + source.slice(generated.length) : source}:${target}:${mode ?? 'rw'}`);
    } else {
      const vol = `${RUN}-${source}`;
      created.volumes.add(vol);
      args.push('-v', `${vol}:${target}:${mode ?? 'rw'}`);
    }
  }
  for (const s of (svc.secrets ?? []) as Array<{ source: string; target?: string }>) {
    const file = join(out, 'secrets', basename(compose.secrets[s.source]!.file));
    const target = s.target?.startsWith('/') ? s.target : `/run/secrets/${s.target ?? s.source}`;
    args.push('-v', `${file}:${target}:ro`);
  }
  return args;
}

async function startService(name: string, image: string, args: string[], command: string[]): Promise<void> {
  const r = await podman(['run', '-d', '--pull=never', ...args, image, ...command]);
  assert.equal(r.code, 0, `podman run ${name}: ${r.stderr}`);
  created.containers.push(cname(name));
}

const exec = (service: string, cmd: string[], timeoutMs = 60_000) => podman(['exec', cname(service), ...cmd], timeoutMs);

/** A TCP connection from one container to host:port, within 3 s. */
async function connects(from: string, host: string, port: number): Promise<boolean> {
  const r = await exec(from, [
    'python3',
    '-c',
    `import socket,sys\ntry:\n  socket.create_connection((${JSON.stringify(host)}, ${port}), 3).close(); print("open")\nexcept OSError as e:\n  print("closed", e)`,
  ]);
  return r.stdout.startsWith('open');
}

let bridgeLog = '';
before(
  async () => {
    requireTools(['podman', 'runc', 'buildah', 'debootstrap', 'docker-compose']);
    cleanupStale();
    const built = await run('bash', [join(ROOT, 'scripts', 'build-image.sh'), '--compose-salt'], { timeoutMs: 1_200_000 });
    assert.equal(built.code, 0, `scripts/build-image.sh --compose-salt failed:\n${built.stderr.slice(-6000)}`);
    [bridgeImage, saltImage] = built.stdout.trim().split('\n').slice(-2) as [string, string];
    process.stderr.write(
      built.stderr
        .split('\n')
        .filter((l) => l.startsWith('[image]'))
        .map((l) => `# ${l}\n`)
        .join(''),
    );

    const r = await run('docker-compose', ['--project-directory', ROOT, '-f', join(ROOT, 'docker-compose.yml'), 'config'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    compose = parse(r.stdout) as ComposeFile;
    for (const s of SALT_SERVICES) assert.equal(compose.services[s]!.image, saltImage, `${s} runs the image build-image.sh --compose-salt makes`);
    assert.equal(compose.services['kube-salt-bridge']!.image, bridgeImage);

    out = mkdtempSync(join(tmpdir(), 'ksb-compose-stack-'));
    await must('bash', [join(ROOT, 'deploy', 'compose', 'init.sh'), out]);
    kube = await startKube('compose-stack');

    await must('podman', [...P, 'network', 'create', '--label', `${LABEL}=${process.pid}`, '--subnet', `${NET}.0/24`, RUN]);
    created.network = true;
    for (const name of SALT_SERVICES) {
      const svc = compose.services[name]!;
      await startService(name, saltImage, serviceArgs(name, svc), svc.command ?? []);
      if (name === 'salt-master') {
        await waitFor(
          'salt-master answering',
          async () => (await exec('salt-master', ['salt-run', 'manage.up', '--out=json'], 30_000)).code === 0,
          90_000,
          1000,
        );
      }
    }
    // The protected services: a listener on 6379 in each minion's network namespace (the stack's redis-N).
    for (const n of ['1', '2']) {
      const redis = compose.services[`redis-${n}`]!;
      assert.equal(redis.network_mode, `service:minion-${n}`);
      await startService(
        `redis-${n}`,
        saltImage,
        ['--name', cname(`redis-${n}`), '--label', `${LABEL}=${process.pid}`, ...ULIMITS, '--network', `container:${cname(`minion-${n}`)}`],
        [
          'python3',
          '-c',
          'import socketserver as s\nclass H(s.BaseRequestHandler):\n  def handle(self): self.request.sendall(b"+PONG\\r\\n")\ns.ThreadingTCPServer.allow_reuse_address=True\ns.ThreadingTCPServer(("0.0.0.0", 6379), H).serve_forever()',
        ],
      );
    }
    for (const h of ['node', 'outsider']) {
      await startService(
        h,
        saltImage,
        ['--name', cname(h), '--label', `${LABEL}=${process.pid}`, ...ULIMITS, '--network', RUN, '--ip', IP[h]!, ...hostEntries()],
        ['sleep', 'infinity'],
      );
    }

    // Both minions connected, their startup states (the formula) done, pillar targeting ready.
    let last = '';
    const logsOf = async (...names: string[]) =>
      (
        await Promise.all(
          names.map(async (n) => {
            const l = await podman(['logs', '--tail', '40', cname(n)]);
            return `--- ${n}:\n${l.stdout}${l.stderr}`;
          }),
        )
      ).join('\n');
    await waitFor(
      'both minions answering',
      async () => {
        const r = await exec('salt-master', ['salt', '-I', 'kube_allowlist:clusters:local', 'test.ping', '--out=json', '--static', '-t', '10'], 60_000);
        last = r.stdout + r.stderr;
        try {
          const o = JSON.parse(r.stdout) as Record<string, unknown>;
          return o['minion-1'] === true && o['minion-2'] === true;
        } catch {
          return false;
        }
      },
      180_000,
      2000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${last}\n${await logsOf('salt-master', 'minion-1', 'minion-2')}`);
    });
    await waitFor(
      'the kube_allowlist module synced on both minions',
      async () => {
        const r = await exec('salt-master', ['salt', '*', 'sys.list_functions', 'kube_allowlist', '--out=json', '--static', '-t', '20'], 60_000);
        try {
          const o = JSON.parse(r.stdout) as Record<string, string[]>;
          return ['minion-1', 'minion-2'].every((m) => o[m]?.includes('kube_allowlist.apply'));
        } catch {
          return false;
        }
      },
      120_000,
      2000,
    );

    // The bridge: the stack's service, with the harness's kube-apiserver in place of k3s.
    await kube.createNode('node-1', [{ type: 'InternalIP', address: IP.node! }]);
    bridgePort = await freePort();
    const bridge = compose.services['kube-salt-bridge']!;
    const kubeconfig = join(out, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, readFileSync(kube.bridgeKubeconfig));
    const args = serviceArgs(
      'kube-salt-bridge',
      { ...bridge, environment: { ...bridge.environment, KSB_HTTP_LISTEN: `127.0.0.1:${bridgePort}` } },
      {
        network: ['--network', 'host', '--add-host', `salt-api:${IP['salt-master']}`],
        mounts: (source, target) => {
          if (target === '/etc/kube-salt-bridge/kubeconfig.yaml') return `${kubeconfig}:${target}:ro`;
          if (target === '/run/ksb-kube') return ''; // k3s's CA: the harness kubeconfig embeds its own
          return undefined;
        },
      },
    );
    await startService('kube-salt-bridge', bridgeImage, args, []);
    await waitFor(
      'the bridge /readyz',
      async () => {
        bridgeLog = (await podman(['logs', cname('kube-salt-bridge')])).stdout;
        return (await fetch(`http://127.0.0.1:${bridgePort}/readyz`).catch(() => undefined))?.ok;
      },
      120_000,
      1000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${bridgeLog.slice(-4000)}`);
    });
  },
  { timeout: 1_800_000 },
);

after(async () => {
  cleanup();
  created.containers = [];
  created.network = false;
  if (out) rmSync(out, { recursive: true, force: true });
  await stopInOrder(kube);
});

test("salt-api in salt-master's network namespace logs the bridge in with init.sh's password (eauth file, the shipped ACL) over init.sh's TLS", async () => {
  const r = await podman([
    'run',
    '--rm',
    '--pull=never',
    ...ULIMITS,
    '--network',
    'host',
    '--add-host',
    `salt-api:${IP['salt-master']}`,
    '-v',
    `${join(out, 'secrets', 'salt-api-ca.crt')}:/ca.crt:ro`,
    '-v',
    `${join(out, 'secrets', 'salt-api-password')}:/password:ro`,
    '--entrypoint',
    'node',
    bridgeImage,
    '-e',
    `import('node:https').then(({request}) => { const body = JSON.stringify({username: 'kube-salt-bridge', password: require('fs').readFileSync('/password','utf8').trim(), eauth: 'file'});
      const q = request('https://salt-api:8000/login', {method: 'POST', ca: require('fs').readFileSync('/ca.crt'), headers: {'Content-Type': 'application/json', Accept: 'application/json'}}, (res) => { let t = ''; res.on('data', (d) => t += d); res.on('end', () => { const o = JSON.parse(t).return[0]; console.log(res.statusCode, JSON.stringify(o.perms)); }); });
      q.end(body); })`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^200 /, r.stdout);
  assert.match(r.stdout, /event\\\\\.send/, 'the ACL of salt/conf/master.d/eauth.conf');
});

test("the bridge publishes through the stack's salt-api; the reactor applies it on both minions (nftables); only the node reaches the protected port", async () => {
  await waitFor(
    'minion-1 and minion-2 enforce the node list',
    async () => {
      for (const m of ['minion-1', 'minion-2'])
        if (!(await exec(m, ['nft', 'list', 'table', 'inet', 'kube_allowlist'])).stdout.includes(IP.node!)) return false;
      return true;
    },
    90_000,
    2000,
  ).catch(async (e: Error) => {
    throw new Error(
      `${e.message}\nbridge:\n${(await podman(['logs', cname('kube-salt-bridge')])).stdout.slice(-3000)}\nmaster:\n${(await podman(['logs', '--tail', '30', cname('salt-master')])).stderr}`,
    );
  });
  for (const m of ['minion-1', 'minion-2']) {
    const nft = await exec(m, ['nft', 'list', 'table', 'inet', 'kube_allowlist']);
    assert.equal(nft.code, 0, nft.stderr);
    assert.ok(nft.stdout.includes(IP.node!), `${m}'s nftables table admits the node:\n${nft.stdout}`);
    assert.equal(await connects('node', m, 6379), true, `the node reaches ${m}:6379`);
    assert.equal(await connects('outsider', m, 6379), false, `the outsider does not reach ${m}:6379`);
  }
});

test("a node joins with the outsider's address: it is admitted; it leaves: dropped again", async () => {
  await kube.createNode('node-2', [{ type: 'InternalIP', address: IP.outsider! }]);
  await waitFor(
    'the outsider admitted on both minions',
    async () => (await connects('outsider', 'minion-1', 6379)) && (await connects('outsider', 'minion-2', 6379)),
    60_000,
    1000,
  );
  await kube.deleteNode('node-2');
  await waitFor(
    'the outsider dropped again',
    async () => !(await connects('outsider', 'minion-1', 6379)) && !(await connects('outsider', 'minion-2', 6379)),
    60_000,
    1000,
  );
  assert.equal(await connects('node', 'minion-1', 6379), true, 'the remaining node still reaches minion-1');
});

test('the bridge container: its status names both minions current, its log holds no secret', async () => {
  await waitFor(
    'both minions report the published generation',
    async () => {
      const status = (await (await fetch(`http://127.0.0.1:${bridgePort}/status`)).json()) as {
        clusters: Array<{ cluster: string; generation?: number }>;
        minions: Array<{ minion: string; cluster: string; appliedGeneration?: number }>;
      };
      const gen = status.clusters.find((c) => c.cluster === 'local')?.generation;
      const current = status.minions
        .filter((m) => m.cluster === 'local' && m.appliedGeneration === gen)
        .map((m) => m.minion)
        .sort();
      return JSON.stringify(current) === JSON.stringify(['minion-1', 'minion-2']);
    },
    60_000,
    1000,
  );
  const log = (await podman(['logs', cname('kube-salt-bridge')])).stdout;
  for (const f of ['salt-api-password', 'signing-key', 'http-token']) {
    assert.ok(!log.includes(readFileSync(join(out, 'secrets', f), 'utf8').trim()), `no ${f} in the bridge's log`);
  }
});

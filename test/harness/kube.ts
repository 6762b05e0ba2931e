// A real Kubernetes control plane for tests: etcd + kube-apiserver (built from Go modules by
// scripts/setup.sh) on loopback, with generated certificates, RBAC on, an admin kubeconfig and a
// restricted kubeconfig holding exactly the bridge's permissions.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeCa, issue, rsaKeyPair } from './certs.ts';
import { startDaemon, waitFor, workDir, tail, type Daemon } from './proc.ts';
import { requireTools, freePort } from './tools.ts';
import { httpsJson } from './https.ts';

export interface NodeAddress {
  type: string;
  address: string;
}

export interface KubeCluster {
  readonly name: string;
  readonly url: string;
  readonly caFile: string;
  /** cluster-admin (system:masters). */
  readonly adminKubeconfig: string;
  /** The bridge's real permissions: get/list/watch nodes; get/create/update leases in kube-system. */
  readonly bridgeKubeconfig: string;
  /** A user with no permissions at all, to prove RBAC errors. */
  readonly nobodyKubeconfig: string;
  readonly admin: KubeClient;
  createNode(name: string, addresses: NodeAddress[], opts?: { labels?: Record<string, string>; podCIDRs?: string[] }): Promise<KubeObject>;
  setAddresses(name: string, addresses: NodeAddress[]): Promise<KubeObject>;
  setLabels(name: string, labels: Record<string, string | null>): Promise<KubeObject>;
  /** A status-only update like a kubelet heartbeat: conditions' timestamps change, addresses don't. */
  heartbeat(name: string): Promise<KubeObject>;
  deleteNode(name: string): Promise<void>;
  listNodes(): Promise<KubeObject[]>;
  restartApiserver(): Promise<void>;
  stopApiserver(): Promise<void>;
  startApiserver(): Promise<void>;
  /** Compacts etcd to its current revision, so a watch resuming from an older resourceVersion gets 410 Gone. */
  compact(): Promise<number>;
  stop(): Promise<void>;
}

export type KubeObject = { metadata: { name: string; resourceVersion: string; labels?: Record<string, string> } } & Record<string, unknown>;

export class KubeClient {
  private readonly url: string;
  private readonly tls: { ca: Buffer; cert: Buffer; key: Buffer };
  constructor(url: string, tls: { ca: Buffer; cert: Buffer; key: Buffer }) {
    this.url = url;
    this.tls = tls;
  }

  req<T = KubeObject>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    return httpsJson<T>(this.url + path, { method, body, contentType, ...this.tls });
  }
}

function kubeconfig(file: string, name: string, url: string, caFile: string, crt: string, key: string): void {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: url, 'certificate-authority-data': b64(caFile) } }],
    users: [{ name: `${name}-user`, user: { 'client-certificate-data': b64(crt), 'client-key-data': b64(key) } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-user` } }],
    'current-context': name,
  };
  writeFileSync(file, JSON.stringify(cfg, null, 2), { mode: 0o600 });
}

export async function startKube(name = 'test'): Promise<KubeCluster> {
  const bins = requireTools(['kube-apiserver', 'etcd', 'openssl']);
  const dir = workDir(`kube-${name}`);
  mkdirSync(join(dir, 'pki'), { recursive: true });
  const pki = await makeCa(join(dir, 'pki'), `${name}-ca`);
  const serving = await issue(pki, 'apiserver', '/CN=kube-apiserver', { sans: ['IP:127.0.0.1', 'DNS:localhost'] });
  const admin = await issue(pki, 'admin', '/O=system:masters/CN=ksb-admin', { client: true });
  const bridge = await issue(pki, 'bridge', '/CN=kube-salt-bridge', { client: true });
  const nobody = await issue(pki, 'nobody', '/CN=nobody', { client: true });
  const sa = await rsaKeyPair(pki.dir, 'sa');

  const etcdPort = await freePort();
  const peerPort = await freePort();
  const apiPort = await freePort();
  const url = `https://127.0.0.1:${apiPort}`;
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;

  const etcd = startDaemon(
    `etcd-${name}`,
    bins.etcd!,
    [
      '--name',
      'default',
      '--data-dir',
      join(dir, 'etcd-data'),
      '--listen-client-urls',
      etcdUrl,
      '--advertise-client-urls',
      etcdUrl,
      '--listen-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peerPort}`,
      '--log-level',
      'warn',
      '--quota-backend-bytes',
      String(1 << 30),
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  await waitFor('etcd health', async () => (await fetch(`${etcdUrl}/health`)).ok, 30_000).catch((e: Error) => {
    throw new Error(`${e.message}\netcd log:\n${tail(etcd.logFile)}`);
  });

  const apiArgs = [
    '--etcd-servers',
    etcdUrl,
    '--bind-address',
    '127.0.0.1',
    '--advertise-address',
    '127.0.0.1',
    '--secure-port',
    String(apiPort),
    '--tls-cert-file',
    serving.crt,
    '--tls-private-key-file',
    serving.key,
    '--client-ca-file',
    pki.caCrt,
    '--authorization-mode',
    'RBAC',
    '--service-account-issuer',
    'https://kubernetes.default.svc.cluster.local',
    '--service-account-key-file',
    sa.pub,
    '--service-account-signing-key-file',
    sa.key,
    '--service-cluster-ip-range',
    '10.0.0.0/24',
    '--endpoint-reconciler-type',
    'none',
    '--cert-dir',
    join(dir, 'apiserver-certs'),
    '--profiling=false',
    '--v',
    '1',
  ];
  const tlsAdmin = { ca: readFileSync(pki.caCrt), cert: readFileSync(admin.crt), key: readFileSync(admin.key) };
  const client = new KubeClient(url, tlsAdmin);
  let api: Daemon | undefined;
  const startApiserver = async () => {
    api = startDaemon(`kube-apiserver-${name}`, bins['kube-apiserver']!, apiArgs, { logFile: join(dir, 'apiserver.log') });
    const started = api;
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        if (started.exited()) throw new Error(`kube-apiserver exited\n${tail(started.logFile)}`);
        return await client.req<unknown>('GET', '/readyz').then(
          () => true,
          () => false,
        );
      },
      90_000,
      300,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\napiserver log:\n${tail(started.logFile)}`);
    });
  };
  const stopApiserver = async () => {
    // kube-apiserver drains for a long time on SIGTERM; tests only need it gone (etcd keeps the data).
    await api?.stop(3_000);
    api = undefined;
  };
  await startApiserver();

  // The bridge's RBAC: nodes read-only, leases for leader election.
  await client.req('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    metadata: { name: 'kube-salt-bridge' },
    rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }],
  });
  await client.req('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    metadata: { name: 'kube-salt-bridge' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kube-salt-bridge' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'kube-salt-bridge' }],
  });
  await client.req('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles', {
    metadata: { name: 'kube-salt-bridge-leader', namespace: 'kube-system' },
    rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }],
  });
  await client.req('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings', {
    metadata: { name: 'kube-salt-bridge-leader', namespace: 'kube-system' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kube-salt-bridge-leader' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'kube-salt-bridge' }],
  });

  const adminKubeconfig = join(dir, 'admin.kubeconfig');
  const bridgeKubeconfig = join(dir, 'bridge.kubeconfig');
  const nobodyKubeconfig = join(dir, 'nobody.kubeconfig');
  kubeconfig(adminKubeconfig, name, url, pki.caCrt, admin.crt, admin.key);
  kubeconfig(bridgeKubeconfig, name, url, pki.caCrt, bridge.crt, bridge.key);
  kubeconfig(nobodyKubeconfig, name, url, pki.caCrt, nobody.crt, nobody.key);

  const nodePath = (n: string) => `/api/v1/nodes/${encodeURIComponent(n)}`;
  const mergePatch = 'application/merge-patch+json';
  const conditions = () => [
    {
      type: 'Ready',
      status: 'True',
      reason: 'KubeletReady',
      message: 'kubelet is posting ready status',
      lastHeartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      lastTransitionTime: '2026-01-01T00:00:00Z',
    },
  ];

  return {
    name,
    url,
    caFile: pki.caCrt,
    adminKubeconfig,
    bridgeKubeconfig,
    nobodyKubeconfig,
    admin: client,
    async createNode(n, addresses, opts = {}) {
      await client.req('POST', '/api/v1/nodes', {
        metadata: { name: n, labels: opts.labels ?? {} },
        spec: opts.podCIDRs ? { podCIDR: opts.podCIDRs[0], podCIDRs: opts.podCIDRs } : {},
      });
      return client.req('PATCH', `${nodePath(n)}/status`, { status: { addresses, conditions: conditions() } }, mergePatch);
    },
    setAddresses(n, addresses) {
      return client.req('PATCH', `${nodePath(n)}/status`, { status: { addresses } }, mergePatch);
    },
    setLabels(n, labels) {
      return client.req('PATCH', nodePath(n), { metadata: { labels } }, mergePatch);
    },
    heartbeat(n) {
      return client.req('PATCH', `${nodePath(n)}/status`, { status: { conditions: conditions() } }, 'application/strategic-merge-patch+json');
    },
    async deleteNode(n) {
      await client.req('DELETE', nodePath(n));
    },
    async listNodes() {
      return (await client.req<{ items: KubeObject[] }>('GET', '/api/v1/nodes')).items;
    },
    async restartApiserver() {
      await stopApiserver();
      await startApiserver();
    },
    stopApiserver,
    startApiserver,
    async compact() {
      const status = (await (await fetch(`${etcdUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' })).json()) as { header: { revision: string } };
      const revision = Number(status.header.revision);
      const r = await fetch(`${etcdUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision, physical: true }) });
      if (!r.ok) throw new Error(`etcd compaction failed: ${r.status} ${await r.text()}`);
      return revision;
    },
    async stop() {
      await stopApiserver();
      await etcd.stop();
    },
  };
}

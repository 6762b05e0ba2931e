// Synthetic but realistic cluster data for the in-process benchmarks: dual-stack Node objects
// shaped like what a kubelet writes (labels, annotations, managedFields, conditions, images...),
// and a fake NodeApi (src/kube/nodeApi.ts) that lists them and lets the benchmark push watch events.
import type { NodeInfo } from '../src/seams.ts';
import type { KubeNode, ListOptions, ListPage, NodeApi, WatchEvent, WatchHandle } from '../src/kube/nodeApi.ts';

export const POD_CIDRS = 50;

/**
 * Worst-case-length addresses, so that the 1 MiB check is conservative: IPv4 always 15 characters
 * (100.1xx.1xx.1xx, inside 100.64.0.0/10), IPv6 always 39 (eight 4-digit groups, nothing to
 * compress), like the global unicast addresses a cloud hands out. Unique for i < 27 * 155 * 155.
 */
export function nodeIp4(i: number): string {
  return `100.${100 + Math.floor(i / 155 / 155)}.${100 + (Math.floor(i / 155) % 155)}.${100 + (i % 155)}`;
}
export function nodeIp6(i: number): string {
  const g = (k: number) => (0x1000 + ((i * 7919 + k * 104_729) % 0xe000)).toString(16);
  return `2a05:d018:${g(1)}:${g(2)}:${g(3)}:${g(4)}:${(0x1000 + (i >>> 12)).toString(16)}:${(0x1000 + (i & 0xfff)).toString(16)}`;
}
export function nodeName(i: number): string {
  return `ip-${nodeIp4(i).replaceAll('.', '-')}.eu-west-1.compute.internal`;
}
/** The first POD_CIDRS nodes carry a pod CIDR (10.244.<i>.0/24). */
export function podCidrs(i: number): string[] {
  return i < POD_CIDRS ? [`10.244.${i}.0/24`] : [];
}

/** What the source keeps per node (src/kube toNodeInfo) — the input of projectNodes. */
export function nodeInfos(count: number): Map<string, NodeInfo> {
  const m = new Map<string, NodeInfo>();
  for (let i = 0; i < count; i++) {
    const name = nodeName(i);
    m.set(name, {
      name,
      addresses: [
        { type: 'InternalIP', address: nodeIp4(i) },
        { type: 'InternalIP', address: nodeIp6(i) },
        { type: 'Hostname', address: name },
        { type: 'InternalDNS', address: name },
      ],
      podCIDRs: podCidrs(i),
    });
  }
  return m;
}

/** Images a kubelet reports (it reports at most 50); kubeNode takes the first `images` of these. */
export const MAX_IMAGES = 50;
const IMAGES = Array.from({ length: MAX_IMAGES }, (_, k) => ({
  names: [
    `registry.example.com/team-${k}/service-${k}@sha256:${k.toString(16).padStart(2, '0').repeat(32)}`,
    `registry.example.com/team-${k}/service-${k}:v1.${k}.0`,
  ],
  sizeBytes: 20_000_000 + k * 1_234_567,
}));

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * A v1 Node as the apiserver returns it (about 8 KB of JSON). `rv` is its resourceVersion,
 * `beat` the heartbeat time; fresh objects each call (nothing shared with other calls) unless
 * `share` is given, whose heavy parts (images, managedFields) are reused. `images` is how many
 * images its status lists (25 by default; a kubelet lists up to 50).
 */
export function kubeNode(i: number, rv: number, beat: number, share?: Record<string, unknown>, images = 25): KubeNode & Record<string, unknown> {
  const name = nodeName(i);
  const zone = `eu-west-1${'abc'[i % 3]}`;
  const conditions = ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable', 'Ready'].map((type) => ({
    type,
    status: type === 'Ready' ? 'True' : 'False',
    lastHeartbeatTime: iso(beat),
    lastTransitionTime: '2026-01-01T00:00:00Z',
    reason: type === 'Ready' ? 'KubeletReady' : `KubeletHasNo${type}`,
    message: type === 'Ready' ? 'kubelet is posting ready status' : `kubelet has no ${type.toLowerCase()}`,
  }));
  const managedFields = (share?.managedFields as unknown[]) ?? [
    {
      manager: 'kubelet',
      operation: 'Update',
      apiVersion: 'v1',
      time: iso(beat),
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:annotations': { '.': {}, 'f:node.alpha.kubernetes.io/ttl': {} }, 'f:labels': { '.': {}, 'f:kubernetes.io/hostname': {} } },
        'f:spec': { 'f:providerID': {} },
      },
    },
    {
      manager: 'kubelet',
      operation: 'Update',
      apiVersion: 'v1',
      time: iso(beat),
      fieldsType: 'FieldsV1',
      subresource: 'status',
      fieldsV1: {
        'f:status': {
          'f:conditions': { 'k:{"type":"Ready"}': { 'f:lastHeartbeatTime': {}, 'f:status': {} } },
          'f:images': {},
          'f:nodeInfo': { 'f:bootID': {} },
        },
      },
    },
  ];
  const node = {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: {
      name,
      uid: `0000${i.toString(16).padStart(8, '0')}-1111-2222-3333-444455556666`,
      resourceVersion: String(rv),
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'm6i.xlarge',
        'topology.kubernetes.io/region': 'eu-west-1',
        'topology.kubernetes.io/zone': zone,
        'eks.amazonaws.com/nodegroup': `pool-${i % 7}`,
        'eks.amazonaws.com/capacityType': 'ON_DEMAND',
      },
      annotations: {
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        'alpha.kubernetes.io/provided-node-ip': `${nodeIp4(i)},${nodeIp6(i)}`,
      },
      managedFields,
    },
    spec: {
      providerID: `aws:///${zone}/i-0${i.toString(16).padStart(16, '0')}`,
      ...(podCidrs(i).length ? { podCIDR: podCidrs(i)[0], podCIDRs: podCidrs(i) } : {}),
    },
    status: {
      capacity: { cpu: '4', 'ephemeral-storage': '83873772Ki', 'hugepages-1Gi': '0', 'hugepages-2Mi': '0', memory: '16082844Ki', pods: '58' },
      allocatable: { cpu: '3920m', 'ephemeral-storage': '76224326324', 'hugepages-1Gi': '0', 'hugepages-2Mi': '0', memory: '15065116Ki', pods: '58' },
      conditions,
      addresses: [
        { type: 'InternalIP', address: nodeIp4(i) },
        { type: 'InternalIP', address: nodeIp6(i) },
        { type: 'Hostname', address: name },
        { type: 'InternalDNS', address: name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: `ec2${i.toString(16).padStart(29, '0')}`,
        systemUUID: `ec2${i.toString(16).padStart(29, '0')}`,
        bootID: `b00t${i.toString(16).padStart(28, '0')}`,
        kernelVersion: '6.1.102-111.182.amzn2023.x86_64',
        osImage: 'Amazon Linux 2023.5.20240819',
        containerRuntimeVersion: 'containerd://1.7.20',
        kubeletVersion: 'v1.35.4-eks-a737599',
        kubeProxyVersion: 'v1.35.4-eks-a737599',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
      images: (share?.images as unknown[]) ?? IMAGES.slice(0, images).map((x) => ({ names: [...x.names], sizeBytes: x.sizeBytes })),
    },
  };
  return node;
}

/**
 * A NodeApi whose list serves `count` fresh Node objects page by page (built per page, so the
 * benchmark does not keep them alive), and whose watch hands the benchmark the event callback.
 */
export class FakeNodeApi implements NodeApi {
  readonly count: number;
  private readonly rv: number;
  emit: ((e: WatchEvent) => void) | null = null;

  constructor(count: number, rv = 1000) {
    this.count = count;
    this.rv = rv;
  }

  list(o: ListOptions): Promise<ListPage> {
    const start = o.continue ? Number(o.continue) : 0;
    const end = Math.min(this.count, start + (o.limit ?? this.count));
    const items: KubeNode[] = [];
    for (let i = start; i < end; i++) items.push(kubeNode(i, this.rv, Date.UTC(2026, 0, 1)));
    return Promise.resolve({ items, resourceVersion: String(this.rv), ...(end < this.count ? { continue: String(end) } : {}) });
  }

  watch(_o: unknown, onEvent: (e: WatchEvent) => void): Promise<WatchHandle> {
    this.emit = onEvent;
    return Promise.resolve({
      abort: () => {
        this.emit = null;
      },
    });
  }
}

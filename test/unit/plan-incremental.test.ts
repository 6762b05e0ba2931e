// The incremental planner equals planCluster from scratch, step after step, over random sequences
// of joins, leaves, address changes, rejections, option sets, sync flips and publishes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterPlanner, planCluster, type ClusterPlanInput, type ProjectionOptions, type SafetyOptions } from '../../src/plan/index.ts';
import type { ClusterView, NodeInfo } from '../../src/seams.ts';

/** mulberry32: a small seeded generator, so that a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Small pools, so that nodes share entries (an entry stays while any node carries it) and hit
// every rule: invalid values, networks as host addresses, multicast, a /32 pod CIDR equal to a
// host address, pod CIDRs too broad or outside allowedNetworks, more addresses than the cap.
const ADDRESSES = [
  ...Array.from({ length: 12 }, (_, i) => `10.0.0.${i + 1}`),
  ...Array.from({ length: 8 }, (_, i) => `fd00::${(i + 1).toString(16)}`),
  '10.244.1.5',
  '192.168.7.7',
  '2001:db8::7',
  'FD00:0::1',
  'not-an-ip',
  '224.0.0.1',
  '10.0.0.0/24',
  '0.0.0.0',
];
const TYPES = ['InternalIP', 'InternalIP', 'InternalIP', 'ExternalIP', 'Hostname'];
const POD_CIDRS = ['10.244.1.0/24', '10.244.2.0/24', '10.244.1.5/32', '10.0.0.0/8', 'fd00:1::/64', '192.168.0.0/24', 'bogus'];

const OPTIONS: ProjectionOptions[] = [
  { addressTypes: ['InternalIP'], families: ['ipv4', 'ipv6'], podCIDRs: true, extraEntries: [] },
  { addressTypes: ['InternalIP'], families: ['ipv4'], podCIDRs: false, extraEntries: ['10.9.0.0/16'] },
  { addressTypes: ['InternalIP', 'ExternalIP'], families: ['ipv6', 'ipv4'], podCIDRs: true, extraEntries: ['10.0.0.1', 'nope'], maxAddressesPerNode: 2 },
  { addressTypes: ['InternalIP'], families: ['ipv4', 'ipv6'], podCIDRs: true, extraEntries: [], allowedNetworks: ['10.0.0.0/16', 'fd00::/16'] },
];
const SAFETY: SafetyOptions[] = [
  { allowEmpty: false, maxShrinkFraction: 0.3, minNodes: 2 },
  { allowEmpty: true, maxShrinkFraction: 1, minNodes: 0 },
];

function randomInfo(r: () => number, name: string): NodeInfo {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const n = Math.floor(r() * 5);
  const addresses = Array.from({ length: n }, () => Object.freeze({ type: pick(TYPES), address: pick(ADDRESSES) }));
  const podCIDRs = Array.from({ length: Math.floor(r() * 3) }, () => pick(POD_CIDRS));
  return Object.freeze({ name, addresses: Object.freeze(addresses), podCIDRs: Object.freeze(podCIDRs) });
}

function run(seed: number, steps: number): void {
  const r = rng(seed);
  const planner = new ClusterPlanner();
  let nodes = new Map<string, NodeInfo>();
  let synced = true;
  let options = OPTIONS[0]!;
  let safety = SAFETY[0]!;
  let published: ClusterPlanInput['published'];
  const earlier: Array<NonNullable<ClusterPlanInput['published']>> = [];
  let next = 0;
  for (let step = 0; step < steps; step++) {
    const x = r();
    const names = [...nodes.keys()];
    const some = () => names[Math.floor(r() * names.length)]!;
    if (x < 0.25 || names.length === 0) {
      const name = `n${next++}`;
      nodes.set(name, randomInfo(r, name));
    } else if (x < 0.45) nodes.delete(some());
    else if (x < 0.7) {
      const name = some();
      nodes.set(name, randomInfo(r, name));
    } else if (x < 0.75) {
      // The same content in a new object (the source's reorder): projected again, same result.
      const name = some();
      const old = nodes.get(name)!;
      nodes.set(name, Object.freeze({ ...old, addresses: Object.freeze([...old.addresses].reverse()) }));
    } else if (x < 0.78) {
      // A relist: every NodeInfo new, the map in another order.
      nodes = new Map(names.reverse().map((n) => [n, Object.freeze({ ...nodes.get(n)! })]));
    } else if (x < 0.81) options = r() < 0.5 ? OPTIONS[Math.floor(r() * OPTIONS.length)]! : { ...options };
    else if (x < 0.83) safety = SAFETY[Math.floor(r() * SAFETY.length)]!;
    else if (x < 0.86) synced = !synced;
    else if (x < 0.88) published = earlier.length && r() < 0.7 ? earlier[Math.floor(r() * earlier.length)] : undefined;
    // A view as the source gives it: a frozen copy of the map.
    const view: ClusterView = { cluster: 'c', synced, nodes: new Map(nodes) };
    const input: ClusterPlanInput = { view, projection: options, safety, published };
    const got = planner.plan(input);
    const want = planCluster(input);
    assert.deepEqual(got, want, `seed ${seed}, step ${step}`);
    // Publish what a 'publish' says, most of the time (a failed publish keeps the old one).
    if (got.verdict.kind === 'publish' && r() < 0.8) {
      published = { ipv4: got.projection.ipv4, ipv6: got.projection.ipv6, digest: got.digest };
      earlier.push(published);
    }
  }
}

describe('ClusterPlanner', () => {
  it('equals planCluster from scratch over random sequences of changes (seeded)', () => {
    for (let seed = 1; seed <= 40; seed++) run(seed, 400);
  });

  it('equals planCluster over one long sequence', () => {
    run(20261201, 6000);
  });

  it('does not project again the nodes whose NodeInfo is the same object', () => {
    const planner = new ClusterPlanner();
    const options = OPTIONS[0]!;
    const a: NodeInfo = { name: 'a', addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], podCIDRs: [] };
    let reads = 0;
    const b: NodeInfo = {
      name: 'b',
      get addresses() {
        reads += 1;
        return [{ type: 'InternalIP', address: '10.0.0.2' }];
      },
      podCIDRs: [],
    };
    const input = (nodes: NodeInfo[]): ClusterPlanInput => ({
      view: { cluster: 'c', synced: true, nodes: new Map(nodes.map((n) => [n.name, n])) },
      projection: options,
      safety: SAFETY[1]!,
      published: undefined,
    });
    planner.plan(input([a, b]));
    assert.equal(reads, 1);
    const p = planner.plan(input([a, b, { name: 'c', addresses: [{ type: 'InternalIP', address: '10.0.0.3' }], podCIDRs: [] }]));
    assert.equal(reads, 1, 'b was not projected again');
    assert.deepEqual(p.projection.ipv4, ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });
});

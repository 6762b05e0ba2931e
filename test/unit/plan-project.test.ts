import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { projectNodes, type ProjectionOptions } from '../../src/plan/index.ts';
import type { NodeInfo } from '../../src/seams.ts';

const node = (name: string, addresses: Array<[string, string]>, podCIDRs: string[] = []): NodeInfo => ({
  name,
  addresses: addresses.map(([type, address]) => ({ type, address })),
  podCIDRs,
});

const base: ProjectionOptions = {
  addressTypes: ['InternalIP'],
  families: ['ipv4', 'ipv6'],
  podCIDRs: false,
  extraEntries: [],
};

interface Case {
  name: string;
  nodes: NodeInfo[];
  options?: Partial<ProjectionOptions>;
  ipv4: string[];
  ipv6: string[];
  count: number;
  pending?: string[];
  rejected?: string[];
}

const cases: Case[] = [
  { name: 'no nodes', nodes: [], ipv4: [], ipv6: [], count: 0 },
  {
    name: 'dual-stack nodes, hostnames and external IPs ignored',
    nodes: [
      node('a', [['InternalIP', '10.0.0.2'], ['InternalIP', 'FD00::2'], ['Hostname', 'a'], ['ExternalIP', '203.0.113.1']]),
      node('b', [['InternalIP', '10.0.0.10'], ['InternalIP', 'fd00:0::a']]),
    ],
    ipv4: ['10.0.0.10', '10.0.0.2'],
    ipv6: ['fd00::2', 'fd00::a'],
    count: 2,
  },
  {
    name: 'ExternalIP selected',
    nodes: [node('a', [['InternalIP', '10.0.0.2'], ['ExternalIP', '203.0.113.1']])],
    options: { addressTypes: ['ExternalIP'] },
    ipv4: ['203.0.113.1'],
    ipv6: [],
    count: 1,
  },
  {
    name: 'ipv4 only: an IPv6-only node is pending',
    nodes: [node('a', [['InternalIP', '10.0.0.2'], ['InternalIP', 'fd00::2']]), node('v6', [['InternalIP', 'fd00::3']])],
    options: { families: ['ipv4'] },
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
    pending: ['v6'],
  },
  {
    name: 'node without addresses yet is pending, its pod CIDR held back',
    nodes: [node('new', [], ['10.244.9.0/24']), node('a', [['InternalIP', '10.0.0.2']], ['10.244.1.0/24'])],
    options: { podCIDRs: true },
    ipv4: ['10.0.0.2', '10.244.1.0/24'],
    ipv6: [],
    count: 1,
    pending: ['new'],
  },
  {
    name: 'pod CIDRs off by default',
    nodes: [node('a', [['InternalIP', '10.0.0.2']], ['10.244.1.0/24', 'fd00:10:244:1::/64'])],
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
  },
  {
    name: 'duplicates across nodes and extras collapse; extras sorted in',
    nodes: [node('a', [['InternalIP', '10.0.0.2']]), node('b', [['InternalIP', '10.0.0.2']])],
    options: { extraEntries: ['192.0.2.0/24', '10.0.0.2', '2001:db8::1'] },
    ipv4: ['10.0.0.2', '192.0.2.0/24'],
    ipv6: ['2001:db8::1'],
    count: 2,
  },
  {
    name: 'invalid addresses are reported, a node with only invalid ones is pending',
    nodes: [
      node('bad', [['InternalIP', '::ffff:10.0.0.9'], ['InternalIP', 'not-an-ip']]),
      node('ok', [['InternalIP', '10.0.0.3'], ['InternalIP', '10.0.0.300']]),
    ],
    ipv4: ['10.0.0.3'],
    ipv6: [],
    count: 1,
    pending: ['bad'],
    rejected: ['::ffff:10.0.0.9', 'not-an-ip', '10.0.0.300'],
  },
];

describe('projectNodes decision table', () => {
  for (const c of cases) {
    it(c.name, () => {
      const p = projectNodes(c.nodes, { ...base, ...c.options });
      assert.deepEqual(p.ipv4, c.ipv4);
      assert.deepEqual(p.ipv6, c.ipv6);
      assert.equal(p.nodes, c.count);
      assert.deepEqual(p.pending, c.pending ?? []);
      assert.deepEqual(p.rejected.map((r) => r.value), c.rejected ?? []);
    });
  }

  it('rejections name the node and the source', () => {
    const p = projectNodes([node('n1', [['InternalIP', 'x']], ['10.1.2.3/8'])], { ...base, podCIDRs: true, extraEntries: ['y'] });
    assert.deepEqual(
      p.rejected.map((r) => [r.node, r.source, r.value]),
      [['n1', 'address', 'x'], [undefined, 'extra', 'y']],
    );
  });

  it('is independent of node order (sorted code-point output)', () => {
    const nodes = cases[1]!.nodes;
    assert.deepEqual(projectNodes([...nodes].reverse(), base), projectNodes(nodes, base));
    const p = projectNodes([node('a', [['InternalIP', '10.0.0.9']]), node('b', [['InternalIP', '10.0.0.10']])], base);
    assert.deepEqual(p.ipv4, ['10.0.0.10', '10.0.0.9']);
  });

  it('accepts a ClusterView nodes map directly', () => {
    const map = new Map([['a', node('a', [['InternalIP', '10.0.0.2']])]]);
    assert.deepEqual(projectNodes(map.values(), base).ipv4, ['10.0.0.2']);
  });
});

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
      node('a', [
        ['InternalIP', '10.0.0.2'],
        ['InternalIP', 'FD00::2'],
        ['Hostname', 'a'],
        ['ExternalIP', '203.0.113.1'],
      ]),
      node('b', [
        ['InternalIP', '10.0.0.10'],
        ['InternalIP', 'fd00:0::a'],
      ]),
    ],
    ipv4: ['10.0.0.10', '10.0.0.2'],
    ipv6: ['fd00::2', 'fd00::a'],
    count: 2,
  },
  {
    name: 'ExternalIP selected',
    nodes: [
      node('a', [
        ['InternalIP', '10.0.0.2'],
        ['ExternalIP', '203.0.113.1'],
      ]),
    ],
    options: { addressTypes: ['ExternalIP'] },
    ipv4: ['203.0.113.1'],
    ipv6: [],
    count: 1,
  },
  {
    name: 'ipv4 only: an IPv6-only node is pending',
    nodes: [
      node('a', [
        ['InternalIP', '10.0.0.2'],
        ['InternalIP', 'fd00::2'],
      ]),
      node('v6', [['InternalIP', 'fd00::3']]),
    ],
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
      node('bad', [
        ['InternalIP', '::ffff:10.0.0.9'],
        ['InternalIP', 'not-an-ip'],
      ]),
      node('ok', [
        ['InternalIP', '10.0.0.3'],
        ['InternalIP', '10.0.0.300'],
      ]),
    ],
    ipv4: ['10.0.0.3'],
    ipv6: [],
    count: 1,
    pending: ['bad'],
    rejected: ['::ffff:10.0.0.9 invalid', 'not-an-ip invalid', '10.0.0.300 invalid'],
  },
  {
    name: 'a network as a node address is not-host, even /32 and /128; the node keeps its hosts',
    nodes: [
      node('a', [
        ['InternalIP', '198.51.0.0/16'],
        ['InternalIP', '10.0.0.2/32'],
        ['InternalIP', 'fd00::2/128'],
        ['InternalIP', '10.0.0.2'],
      ]),
      node('net-only', [['InternalIP', '10.1.0.0/24']]),
    ],
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
    pending: ['net-only'],
    rejected: ['198.51.0.0/16 not-host', '10.0.0.2/32 not-host', 'fd00::2/128 not-host', '10.1.0.0/24 not-host'],
  },
  {
    name: 'a slash after something that is no address is invalid, not not-host',
    nodes: [
      node('a', [
        ['InternalIP', 'x/16'],
        ['InternalIP', '10.0.0.2'],
      ]),
    ],
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
    rejected: ['x/16 invalid'],
  },
  {
    name: 'a 5,000-character value is invalid (too long)',
    nodes: [
      node('a', [
        ['InternalIP', '1'.repeat(5000)],
        ['InternalIP', '10.0.0.2'],
      ]),
    ],
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
    rejected: [`${'1'.repeat(5000)} invalid`],
  },
  {
    name: 'at the per-family cap (4 + 4) a node is published',
    nodes: [
      node(
        'a',
        [1, 2, 3, 4].flatMap(
          (i) =>
            [
              ['InternalIP', `10.0.0.${i}`],
              ['InternalIP', `fd00::${i}`],
            ] as Array<[string, string]>,
        ),
      ),
    ],
    ipv4: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'],
    ipv6: ['fd00::1', 'fd00::2', 'fd00::3', 'fd00::4'],
    count: 1,
  },
  {
    name: 'one over the cap in one family: the whole node is left out (too-many), the others are published',
    nodes: [
      node(
        'big',
        [1, 2, 3, 4, 5].map((i) => ['InternalIP', `10.0.1.${i}`] as [string, string]),
        ['10.244.1.0/24'],
      ),
      node('ok', [['InternalIP', '10.0.0.2']], ['10.244.2.0/24']),
    ],
    options: { podCIDRs: true },
    ipv4: ['10.0.0.2', '10.244.2.0/24'],
    ipv6: [],
    count: 1,
    pending: ['big'],
    rejected: ['5 ipv4 addresses too-many'],
  },
  {
    name: '300 addresses on one node: one rejection, not 300',
    nodes: [
      node(
        'flood',
        Array.from({ length: 300 }, (_, i) => ['InternalIP', `10.9.${i >> 8}.${i & 255}`] as [string, string]),
      ),
      node('ok', [['InternalIP', '10.0.0.2']]),
    ],
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
    pending: ['flood'],
    rejected: ['300 ipv4 addresses too-many'],
  },
  {
    name: 'the cap counts distinct addresses: the same one twice (InternalIP and ExternalIP) is one',
    nodes: [
      node('a', [
        ['InternalIP', '10.0.0.2'],
        ['ExternalIP', '10.0.0.2'],
      ]),
    ],
    options: { addressTypes: ['InternalIP', 'ExternalIP'], maxAddressesPerNode: 1 },
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
  },
  {
    name: 'addresses of an unpublished family do not count against the cap',
    nodes: [
      node('a', [
        ['InternalIP', '10.0.0.2'],
        ['InternalIP', 'fd00::1'],
        ['InternalIP', 'fd00::2'],
      ]),
    ],
    options: { families: ['ipv4'], maxAddressesPerNode: 1 },
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
  },
  {
    name: 'more unusable values than the cap: the node is left out with one rejection',
    nodes: [node('junk', [['InternalIP', '10.0.0.2'], ...Array.from({ length: 5 }, (_, i) => ['InternalIP', `junk-${i}`] as [string, string])])],
    ipv4: [],
    ipv6: [],
    count: 0,
    pending: ['junk'],
    rejected: ['5 unusable values too-many'],
  },
  {
    name: 'maxAddressesPerNode is configurable',
    nodes: [
      node('a', [
        ['InternalIP', '10.0.0.2'],
        ['InternalIP', '10.0.0.3'],
      ]),
      node('b', [['InternalIP', '10.0.0.4']]),
    ],
    options: { maxAddressesPerNode: 1 },
    ipv4: ['10.0.0.4'],
    ipv6: [],
    count: 1,
    pending: ['a'],
    rejected: ['2 ipv4 addresses too-many'],
  },
  {
    name: 'allowedNetworks: an address outside is rejected, the node keeps the ones inside',
    nodes: [
      node('a', [
        ['InternalIP', '10.0.0.2'],
        ['InternalIP', '192.0.2.7'],
      ]),
      node('outside', [['InternalIP', '203.0.113.9']]),
      node('v6', [
        ['InternalIP', 'fd00::5'],
        ['InternalIP', '2001:db8::5'],
      ]),
    ],
    options: { allowedNetworks: ['10.0.0.0/8', 'fd00::/8'] },
    ipv4: ['10.0.0.2'],
    ipv6: ['fd00::5'],
    count: 2,
    pending: ['outside'],
    rejected: ['192.0.2.7 outside-allowed', '203.0.113.9 outside-allowed', '2001:db8::5 outside-allowed'],
  },
  {
    name: 'allowedNetworks: pod CIDRs must lie inside too (a broader one is outside)',
    nodes: [node('a', [['InternalIP', '10.0.0.2']], ['10.244.1.0/24', '10.0.0.0/16', '172.16.0.0/16'])],
    options: { podCIDRs: true, allowedNetworks: ['10.0.0.0/16', '10.244.0.0/16'] },
    ipv4: ['10.0.0.0/16', '10.0.0.2', '10.244.1.0/24'],
    ipv6: [],
    count: 1,
    rejected: ['172.16.0.0/16 outside-allowed'],
  },
  {
    name: "allowedNetworks does not filter extraEntries (the operator's own)",
    nodes: [node('a', [['InternalIP', '10.0.0.2']])],
    options: { allowedNetworks: ['10.0.0.0/8'], extraEntries: ['192.0.2.0/24'] },
    ipv4: ['10.0.0.2', '192.0.2.0/24'],
    ipv6: [],
    count: 1,
  },
  {
    name: 'allowedNetworks 0.0.0.0/0 and a host network (/32) work',
    nodes: [node('a', [['InternalIP', '10.0.0.2']]), node('b', [['InternalIP', 'fd00::9']]), node('c', [['InternalIP', 'fd00::8']])],
    options: { allowedNetworks: ['0.0.0.0/0', 'fd00::9'] },
    ipv4: ['10.0.0.2'],
    ipv6: ['fd00::9'],
    count: 2,
    pending: ['c'],
    rejected: ['fd00::8 outside-allowed'],
  },
  {
    name: 'too many pod CIDRs: the pod CIDRs are left out, the node address stays',
    nodes: [node('a', [['InternalIP', '10.0.0.2']], ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'])],
    options: { podCIDRs: true, maxAddressesPerNode: 2 },
    ipv4: ['10.0.0.2'],
    ipv6: [],
    count: 1,
    rejected: ['3 ipv4 pod CIDRs too-many'],
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
      assert.deepEqual(
        p.rejected.map((r) => `${r.value} ${r.reason}`),
        c.rejected ?? [],
      );
    });
  }

  it('rejections name the node and the source', () => {
    const p = projectNodes([node('n1', [['InternalIP', 'x']], ['10.1.2.3/8'])], { ...base, podCIDRs: true, extraEntries: ['y'] });
    assert.deepEqual(
      p.rejected.map((r) => [r.node, r.source, r.value]),
      [
        ['n1', 'address', 'x'],
        [undefined, 'extra', 'y'],
      ],
    );
  });

  it('rejections carry a reason code and a readable detail', () => {
    const p = projectNodes(
      [
        node('n1', [
          ['InternalIP', '224.0.0.1'],
          ['InternalIP', '10.0.0.2'],
        ]),
      ],
      base,
    );
    assert.deepEqual(p.rejected, [{ node: 'n1', source: 'address', value: '224.0.0.1', reason: 'invalid', detail: 'multicast address' }]);
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

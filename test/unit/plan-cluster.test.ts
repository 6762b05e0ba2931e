import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPayload, nextGeneration, planCluster, verifyPayload, type ClusterPlanInput } from '../../src/plan/index.ts';
import type { NodeInfo } from '../../src/seams.ts';
import { testKeys } from '../harness/keys.ts';

const { signer } = testKeys();

const node = (name: string, ...ips: string[]): NodeInfo => ({
  name,
  addresses: ips.map((address) => ({ type: 'InternalIP', address })),
  podCIDRs: [],
});
const view = (synced: boolean, ...nodes: NodeInfo[]) => ({ cluster: 'prod', synced, nodes: new Map(nodes.map((n) => [n.name, n])) });
const input = (v: ReturnType<typeof view>, published?: ClusterPlanInput['published']): ClusterPlanInput => ({
  view: v,
  projection: { addressTypes: ['InternalIP'], families: ['ipv4', 'ipv6'], podCIDRs: false, extraEntries: [] },
  safety: { allowEmpty: false, maxShrinkFraction: 0.5, minNodes: 1 },
  published,
});

describe('planCluster', () => {
  it('unsynced view: hold, never "zero nodes"', () => {
    const p = planCluster(input(view(false, node('a', '10.0.0.1'))));
    assert.equal(p.verdict.kind, 'hold');
    assert.equal(p.projection.nodes, 0);
  });

  it('publish, then the same state is a noop (idempotency)', () => {
    const v = view(true, node('a', '10.0.0.1', 'fd00::1'), node('b', '10.0.0.2'));
    const first = planCluster(input(v));
    assert.equal(first.verdict.kind, 'publish');
    assert.deepEqual(first.diff.added, ['10.0.0.1', '10.0.0.2', 'fd00::1']);
    const payload = buildPayload(
      { cluster: 'prod', generation: nextGeneration(0, 1000), list: first.projection, diff: first.diff, nodes: first.projection.nodes, issuedAtMs: 1000 },
      signer,
    );
    assert.ok(verifyPayload(payload, signer));
    assert.equal(payload.digest, first.digest);
    const again = planCluster(input(v, { ipv4: payload.ipv4, ipv6: payload.ipv6, digest: payload.digest }));
    assert.equal(again.verdict.kind, 'noop');
    assert.deepEqual([again.diff.added, again.diff.removed], [[], []]);
  });
});

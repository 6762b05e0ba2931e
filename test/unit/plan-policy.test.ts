import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  allowListDigest,
  evaluate,
  listChange,
  safetyPolicies,
  sortedCodePoint,
  type EntryLists,
  type PolicyInput,
  type SafetyOptions,
} from '../../src/plan/index.ts';

const list = (n: number, offset = 0): string[] => Array.from({ length: n }, (_, i) => `10.0.${(i + offset) >> 8}.${(i + offset) & 255}`).sort();
const desired = (ipv4: string[], nodes = ipv4.length) => ({ ipv4, ipv6: [], nodes, digest: allowListDigest({ ipv4, ipv6: [] }) });
const published = (ipv4: string[]) => ({ ipv4, ipv6: [], digest: allowListDigest({ ipv4, ipv6: [] }) });

const defaults: SafetyOptions = { allowEmpty: false, maxShrinkFraction: 0.5, minNodes: 1 };

interface Case {
  name: string;
  input: PolicyInput;
  safety?: Partial<SafetyOptions>;
  /** The digest the operator releases; 'held-digest' stands for the desired list's own. */
  override?: string;
  expected: 'publish' | 'noop' | 'hold';
  reasons?: string[];
}

const cases: Case[] = [
  { name: 'first publish', input: { synced: true, desired: desired(list(3)), published: undefined }, expected: 'publish' },
  { name: 'unchanged → noop', input: { synced: true, desired: desired(list(3)), published: published(list(3)) }, expected: 'noop' },
  {
    name: 'unsynced always holds, even unchanged',
    input: { synced: false, desired: desired(list(3)), published: published(list(3)) },
    expected: 'hold',
    reasons: ['unsynced'],
  },
  {
    name: 'unsynced cannot be overridden',
    input: { synced: false, desired: desired(list(3)), published: undefined },
    override: 'held-digest',
    expected: 'hold',
    reasons: ['unsynced'],
  },
  { name: 'grow', input: { synced: true, desired: desired(list(10)), published: published(list(3)) }, expected: 'publish' },
  { name: 'shrink of exactly half is allowed', input: { synced: true, desired: desired(list(5)), published: published(list(10)) }, expected: 'publish' },
  {
    name: 'shrink above half holds',
    input: { synced: true, desired: desired(list(4)), published: published(list(10)) },
    expected: 'hold',
    reasons: ['shrink'],
  },
  {
    name: 'replacing every node (same count) is no shrink',
    input: { synced: true, desired: desired(list(10, 100)), published: published(list(10)) },
    expected: 'publish',
  },
  {
    name: 'replacing nodes while shrinking beyond the limit holds',
    input: { synced: true, desired: desired(list(4, 100)), published: published(list(10)) },
    expected: 'hold',
    reasons: ['shrink'],
  },
  {
    name: 'maxShrinkFraction 1 disables the shrink check',
    input: { synced: true, desired: desired(list(1)), published: published(list(10)) },
    safety: { maxShrinkFraction: 1 },
    expected: 'publish',
  },
  {
    name: 'empty holds (and is a shrink and below minNodes)',
    input: { synced: true, desired: desired([]), published: published(list(2)) },
    expected: 'hold',
    reasons: ['empty', 'shrink', 'min-nodes'],
  },
  { name: 'empty first publish holds', input: { synced: true, desired: desired([]), published: undefined }, expected: 'hold', reasons: ['empty', 'min-nodes'] },
  {
    name: 'empty allowed with minNodes 0 and shrink disabled',
    input: { synced: true, desired: desired([]), published: published(list(2)) },
    safety: { allowEmpty: true, minNodes: 0, maxShrinkFraction: 1 },
    expected: 'publish',
  },
  {
    name: 'below minNodes holds',
    input: { synced: true, desired: desired(list(2)), published: undefined },
    safety: { minNodes: 3 },
    expected: 'hold',
    reasons: ['min-nodes'],
  },
  {
    name: 'override with the held digest releases',
    input: { synced: true, desired: desired(list(4)), published: published(list(10)) },
    override: 'held-digest',
    expected: 'publish',
  },
  {
    name: 'override for another digest does not release',
    input: { synced: true, desired: desired(list(4)), published: published(list(10)) },
    override: allowListDigest({ ipv4: list(3), ipv6: [] }),
    expected: 'hold',
    reasons: ['shrink'],
  },
];

describe('evaluate decision table', () => {
  for (const c of cases) {
    it(c.name, () => {
      const override = c.override === 'held-digest' ? c.input.desired.digest : c.override;
      const v = evaluate(c.input, safetyPolicies({ ...defaults, ...c.safety }), override);
      assert.equal(v.kind, c.expected);
      assert.equal(v.digest, c.input.desired.digest);
      if (v.kind === 'hold') {
        assert.deepEqual(
          v.holds.map((h) => h.reason),
          c.reasons,
        );
        for (const h of v.holds) assert.ok(h.message.length > 0);
      }
      if (v.kind === 'publish') assert.equal(v.overridden.length, c.override === 'held-digest' ? 1 : 0);
    });
  }

  it('current == desired gives noop for every safe setting (idempotency)', () => {
    for (const n of [0, 1, 50]) {
      const input = { synced: true, desired: desired(list(n)), published: published(list(n)) };
      for (const safety of [defaults, { allowEmpty: true, maxShrinkFraction: 0, minNodes: 0 }, { ...defaults, minNodes: 100 }]) {
        assert.equal(evaluate(input, safetyPolicies(safety)).kind, 'noop');
      }
    }
  });

  it('hold messages name the setting', () => {
    const v = evaluate({ synced: true, desired: desired(list(1)), published: published(list(10)) }, safetyPolicies(defaults));
    assert.equal(v.kind, 'hold');
    if (v.kind === 'hold') assert.match(v.holds[0]!.message, /remove 9 of 10 entries \(90% > safety.maxShrinkFraction 50%\)/);
    const mixed = evaluate({ synced: true, desired: desired(list(3, 100)), published: published(list(10)) }, safetyPolicies(defaults));
    assert.equal(mixed.kind, 'hold');
    if (mixed.kind === 'hold') assert.match(mixed.holds[0]!.message, /remove 10 of 10 entries and add 3, 7 fewer \(70% > safety.maxShrinkFraction 50%\)/);
  });
});

describe('listChange (the net shrink)', () => {
  it('counts removed, added and the net loss over both families', () => {
    const held = { ipv4: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], ipv6: ['fd00::1'] };
    assert.deepEqual(listChange(held, { ipv4: ['10.0.0.1', '10.0.0.9'], ipv6: [] }), { held: 4, given: 2, removed: 3, added: 1, lost: 2, fraction: 0.5 });
    assert.deepEqual(listChange(held, { ipv4: ['10.0.0.7', '10.0.0.8', '10.0.0.9'], ipv6: ['fd00::2', 'fd00::3'] }), {
      held: 4,
      given: 5,
      removed: 4,
      added: 5,
      lost: 0,
      fraction: 0,
    });
    assert.deepEqual(listChange(undefined, { ipv4: [], ipv6: [] }), { held: 0, given: 0, removed: 0, added: 0, lost: 0, fraction: 0 });
  });
});

// test/vectors/shrink-v1.json: the decision table the minions reproduce too (test/salt/test_config_policy.py).
type VectorItem = string | { range: string; count: number };
interface VectorLists {
  ipv4: VectorItem[];
  ipv6: VectorItem[];
}
interface VectorCase {
  name: string;
  held: VectorLists | null;
  maxShrinkFraction: number;
  allowEmpty: boolean;
  steps: Array<{ given: VectorLists; verdict: 'accept' | 'refuse'; reasons: string[]; lost: number }>;
}

const vectors = JSON.parse(readFileSync(new URL('../vectors/shrink-v1.json', import.meta.url), 'utf8')) as { version: number; cases: VectorCase[] };

function expand(l: VectorLists): EntryLists {
  const items = (xs: VectorItem[]): string[] =>
    xs.flatMap((x) => {
      if (typeof x === 'string') return [x];
      const start = x.range.split('.').reduce((n, o) => n * 256 + Number(o), 0);
      return Array.from({ length: x.count }, (_, i) => {
        const v = start + i;
        return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
      });
    });
  return { ipv4: sortedCodePoint(items(l.ipv4)), ipv6: sortedCodePoint(items(l.ipv6)) };
}

describe('shrink vectors (shared with the minions)', () => {
  it('the vector file is version 1 and covers the documented cases', () => {
    assert.equal(vectors.version, 1);
    assert.ok(vectors.cases.length >= 20);
    assert.ok(
      vectors.cases.some((c) => c.steps.length > 1),
      'multi-step cases',
    );
  });
  for (const c of vectors.cases) {
    it(c.name, () => {
      const policies = safetyPolicies({ allowEmpty: c.allowEmpty, maxShrinkFraction: c.maxShrinkFraction, minNodes: 0 });
      let held = c.held === null ? undefined : expand(c.held);
      c.steps.forEach((step, n) => {
        const given = expand(step.given);
        const at = `step ${n + 1}`;
        assert.equal(listChange(held, given).lost, step.lost, `${at}: lost`);
        const v = evaluate(
          {
            synced: true,
            desired: { ...given, nodes: given.ipv4.length + given.ipv6.length, digest: allowListDigest(given) },
            published: held && { ...held, digest: allowListDigest(held) },
          },
          policies,
        );
        assert.equal(v.kind === 'hold' ? 'refuse' : 'accept', step.verdict, `${at}: verdict`);
        assert.deepEqual(v.kind === 'hold' ? v.holds.map((h) => h.reason) : [], step.reasons, `${at}: reasons`);
        if (v.kind !== 'hold') held = given; // a held list changes nothing: the next step is judged against the same list
      });
    });
  }
});

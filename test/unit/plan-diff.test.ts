import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffLists, sameEntries, type EntryLists } from '../../src/plan/index.ts';

const L = (ipv4: string[], ipv6: string[] = []): EntryLists => ({ ipv4, ipv6 });

describe('diffLists decision table', () => {
  const cases: Array<{ name: string; previous: EntryLists | undefined; desired: EntryLists; added: string[]; removed: string[] }> = [
    { name: 'first publish: everything added', previous: undefined, desired: L(['10.0.0.2'], ['fd00::a']), added: ['10.0.0.2', 'fd00::a'], removed: [] },
    { name: 'first publish of nothing', previous: undefined, desired: L([]), added: [], removed: [] },
    { name: 'node replaced', previous: L(['10.0.0.1', '10.0.0.2']), desired: L(['10.0.0.2', '10.0.0.3']), added: ['10.0.0.3'], removed: ['10.0.0.1'] },
    { name: 'all gone', previous: L(['10.1.1.1']), desired: L([]), added: [], removed: ['10.1.1.1'] },
    {
      name: 'mixed families sorted together by code point',
      previous: L([], ['2001:db8::1']),
      desired: L(['203.0.113.1'], []),
      added: ['203.0.113.1'],
      removed: ['2001:db8::1'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = diffLists(c.previous, c.desired);
      assert.deepEqual(d.added, c.added);
      assert.deepEqual(d.removed, c.removed);
      assert.equal(d.added_truncated, false);
      assert.equal(d.removed_truncated, false);
    });
  }

  it('current == desired gives no changes (idempotency)', () => {
    for (const c of cases) {
      const d = diffLists(c.desired, c.desired);
      assert.deepEqual([d.added, d.removed, d.addedCount, d.removedCount], [[], [], 0, 0]);
      assert.ok(sameEntries(c.desired, c.desired));
    }
  });

  it('caps at 1000 entries each and says so', () => {
    const many = Array.from({ length: 1500 }, (_, i) => `10.${i >> 8}.${i & 255}.1`);
    const d = diffLists(L(many.slice(0, 1200)), L(many.slice(1200)));
    assert.equal(d.added.length, 300);
    assert.equal(d.removed.length, 1000);
    assert.equal(d.removed_truncated, true);
    assert.equal(d.added_truncated, false);
    assert.equal(d.removedCount, 1200);
    const sorted = [...d.removed].sort();
    assert.deepEqual(d.removed, sorted);
  });

  it('sameEntries sees a change', () => {
    assert.equal(sameEntries(L(['10.0.0.1']), L(['10.0.0.2'])), false);
  });
});

// Error codes are a contract (CONTRIBUTING.md habit 4): every code the code can produce is in
// README.md's table, and every code in the table is still produced somewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('README error-code table and the code agree', () => {
  const inCode = new Set<string>();
  const produced = /(?:super|KsbError)\(\s*'(KSB_[A-Z_]+)'|err\.code : '(KSB_[A-Z_]+)'/g;
  for (const f of sources(join(root, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(produced)) inCode.add((m[1] ?? m[2])!);
  }
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const inDocs = new Set([...readme.matchAll(/^\| `(KSB_[A-Z_]+)` \|/gm)].map((m) => m[1]!));
  assert.ok(inCode.size >= 10, `found only ${inCode.size} codes in src`);
  assert.deepEqual([...inCode].filter((c) => !inDocs.has(c)).sort(), [], 'codes missing from README.md');
  assert.deepEqual([...inDocs].filter((c) => !inCode.has(c)).sort(), [], 'README.md lists codes nothing produces');
});

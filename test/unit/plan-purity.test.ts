// src/plan is the pure core (CONTRIBUTING.md habit 1): it may import only itself, src/seams.ts,
// src/errors.ts and these computation-only Node modules.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';

const ALLOWED = new Set(['node:crypto', 'node:net']);
const dir = new URL('../../src/plan/', import.meta.url);

it('src/plan imports no client, HTTP, logger, filesystem or clock', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(new URL(file, dir), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      const ok = spec.startsWith('./') || spec === '../seams.ts' || spec === '../errors.ts' || ALLOWED.has(spec);
      assert.ok(ok, `${file} imports ${spec}`);
    }
    assert.doesNotMatch(text, /Date\.now\(|new Date\(\)|Math\.random\(|setTimeout\(|process\./, `${file} reads the clock or the process`);
  }
});

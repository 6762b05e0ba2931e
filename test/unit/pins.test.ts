// The Node.js version is pinned once, in .nvmrc; what ships a default of its own must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const PIN = read('.nvmrc').trim();

test('.nvmrc pins an exact Node.js >= 22.19', () => {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(PIN);
  assert.ok(m, `.nvmrc: ${PIN}`);
  assert.ok(Number(m[1]) > 22 || (Number(m[1]) === 22 && Number(m[2]) >= 19));
});

test('the kube_salt_bridge formula installs the pinned Node.js by default, and its pillar example says so', () => {
  const defaults = parse(read('salt/file_roots/kube_salt_bridge/defaults.yaml')) as { kube_salt_bridge: { node: { version: string } } };
  assert.equal(defaults.kube_salt_bridge.node.version, PIN);
  const example = parse(read('salt/kube_salt_bridge.pillar.example')) as { kube_salt_bridge: { node: { version: string } } };
  assert.equal(example.kube_salt_bridge.node.version, PIN);
});

// What of @kubernetes/client-node the bridge loads: its KubeConfig and request pieces, not the
// generated API (every model and API class, about 50 MiB of RSS), until the lease lock needs it.
// Each case runs in a fresh node that records every module it resolves.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const GENERATED = /\/@kubernetes\/client-node\/dist\/gen\/(models|apis|types)\//;

/** Runs `code` after a resolve hook that records each module URL; returns the URLs and what the code printed. */
function loaded(code: string): { urls: string[]; out: string } {
  const script = `
    import { registerHooks } from 'node:module';
    const urls = [];
    registerHooks({ resolve(s, c, next) { const r = next(s, c); urls.push(r.url); return r; } });
    const out = await (async () => { ${code} })();
    console.log(JSON.stringify({ urls, out: String(out) }));`;
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { urls: string[]; out: string };
}

const src = (p: string) => JSON.stringify(pathToFileURL(join(ROOT, 'src', p)).href);

test('the bridge with a kubeconfig loads client-node without its generated API', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ksb-cn-load-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig.yaml');
  // Nothing listens at the server: the API object is only built.
  writeFileSync(
    kubeconfig,
    'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]\n' +
      'contexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: not-a-secret}}]\ncurrent-context: x\n',
  );
  const { urls, out } = loaded(`
    const { loadKubeConfig, createClientNodeApi } = await import(${src('kube/index.ts')});
    await import(${src('cli.ts')});
    return typeof createClientNodeApi(loadKubeConfig({ kubeconfig: ${JSON.stringify(kubeconfig)} })).list;`);
  assert.equal(out, 'function');
  assert.ok(
    urls.some((u) => u.endsWith('/@kubernetes/client-node/dist/config.js')),
    'client-node is loaded',
  );
  assert.deepEqual(
    urls.filter((u) => GENERATED.test(u)),
    [],
  );
});

test("the lease lock loads client-node's index on first use, and its KubeConfig is the bridge's", () => {
  const { urls, out } = loaded(`
    const { KubeConfig } = await import(${src('kube/clientNode.ts')});
    const { createLeaseLock } = await import(${src('leader/leaseLock.ts')});
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'http://127.0.0.1:9', skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const lock = createLeaseLock(kc, { namespace: 'ns', name: 'l' });
    const before = urls.filter((u) => /client-node\\/dist\\/gen\\/apis\\//.test(u)).length;
    const err = await lock.get().then(() => 'no error', (e) => e.name);
    const index = await import('@kubernetes/client-node');
    return [before, err, kc instanceof index.KubeConfig].join(' ');`);
  const [before, err, same] = out.split(' ');
  assert.equal(before, '0', 'nothing of the generated API before the first call');
  assert.ok(
    urls.some((u) => /\/@kubernetes\/client-node\/dist\/gen\/apis\/CoordinationV1Api\.js$/.test(u)),
    'the first call loads the API class',
  );
  assert.match(err!, /Kube\w*Error/, 'the call went out (nothing listens) and failed as a KubeError');
  assert.equal(same, 'true', "client-node's index exports the same KubeConfig class");
});

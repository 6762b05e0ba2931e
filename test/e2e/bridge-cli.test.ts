// The command line as an operator uses it, against a real kube-apiserver and a real salt-api:
// exit codes, what `once`, `check`, `status`, `release` and `--dry-run` print, what they put on
// the master bus (and what they must not), and that secrets never reach the output.
// Absence of an event is proved with a barrier: after the command, the test fires its own event
// through the master and waits for it; the bus is ordered, so anything the bridge fired earlier
// would already have been read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack } from '../harness/salt.ts';
import { busBarrier, payloadsOf, waitForAllowList } from '../harness/bus.ts';
import { runBridgeCli, startBridge, writeBridgeConfig, type BridgeProc, type BridgeSetup } from '../harness/bridge.ts';
import { freePort } from '../harness/tools.ts';
import { stopInOrder, sleep, waitFor } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';
import { canonicalForm, verifyPayload, DRY_RUN_SIGNATURE } from '../../src/plan/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';
import type { StatusDoc } from '../../src/commands/status.ts';

const KEYS = testKeys();
const tagOf = (cluster: string) => `kube-salt-bridge/cluster/${cluster}/nodes`;
const ALPHA = tagOf('alpha');

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let alpha: BridgeSetup;
let alphaConfig: string;
const running: BridgeProc[] = [];

const payloads = (tag: string, since = 0) => payloadsOf(salt, tag, since);

const barrier = () => busBarrier(salt);
const waitForList = (tag: string, ipv4: string[], since = 0, timeoutMs = 20_000) => waitForAllowList(salt, tag, ipv4, { since, timeoutMs });

/** Everything a command printed must be free of the salt-api password and the private signing key. */
function assertNoSecrets(text: string, extra: string[] = []): void {
  for (const s of [salt.bridge.password, KEYS.privateText, KEYS.privateHex, ...extra])
    assert.ok(!text.includes(s), `output must not contain the secret ${s.slice(0, 6)}…`);
}

/** JSON log lines from a command's stdout. */
const jsonLines = (out: string) =>
  out.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
/** The event a dry run's "would fire" log line carries. */
const eventOf = (line: Record<string, unknown>) => line.event as { tag: string; data: AllowListPayload };
/** What the state dir holds for a cluster (the fields these tests read). */
const stateOf = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { ipv4: string[]; generation: number };

async function config(over: Partial<BridgeSetup> = {}): Promise<string> {
  return (await writeBridgeConfig({ ...alpha, ...over })).file;
}

async function stopAll(): Promise<void> {
  for (const b of running.splice(0)) await b.stop();
}

before(
  async () => {
    kube = await startKube('cli');
    lab = await startLab();
    salt = await startSalt(lab, { minions: 0 });
    await kube.createNode('c1', [{ type: 'InternalIP', address: '10.30.0.1' }], { labels: { pool: 'main' } });
    await kube.createNode('c2', [{ type: 'InternalIP', address: '10.30.0.2' }], { labels: { pool: 'main' } });
    for (let i = 1; i <= 5; i++) await kube.createNode(`s${i}`, [{ type: 'InternalIP', address: `10.31.0.${i}` }], { labels: { pool: 'shrink' } });
    alpha = { clusters: [{ name: 'alpha', kube, families: ['ipv4'], labelSelector: 'pool=main' }], salt, privateKey: KEYS.privateText };
    alphaConfig = await config();
  },
  { timeout: 300_000 },
);

after(async () => {
  await stopAll();
  await stopInOrder(salt, lab, kube);
});

test('usage and configuration errors exit 2 and name the option or field', async () => {
  const unknownCmd = await runBridgeCli(['frobnicate'], {}, { timeoutMs: 20_000 });
  assert.equal(unknownCmd.code, 2, unknownCmd.stderr);
  assert.match(unknownCmd.stderr, /unknown command 'frobnicate'/);

  const unknownOpt = await runBridgeCli(['once', '--config', alphaConfig, '--frob'], {}, { timeoutMs: 20_000 });
  assert.equal(unknownOpt.code, 2, unknownOpt.stderr);
  assert.match(unknownOpt.stderr, /unknown option '--frob'/);

  const badTimeout = await runBridgeCli(['once', '--config', alphaConfig, '--timeout', 'soon'], {}, { timeoutMs: 20_000 });
  assert.equal(badTimeout.code, 2, badTimeout.stderr);
  assert.match(badTimeout.stderr, /--timeout/);

  const missingKubeconfig = await config({ clusters: [{ name: 'alpha', kube, kubeconfig: '/nonexistent/kubeconfig.yaml' }] });
  for (const cmd of ['run', 'once', 'check']) {
    const r = await runBridgeCli([cmd, '--config', missingKubeconfig], {}, { timeoutMs: 20_000 });
    assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
    assert.match(r.stderr, /clusters\[0\]\.kubeconfig/, `${cmd} names the field`);
    assert.match(r.stderr, /nonexistent\/kubeconfig\.yaml/, `${cmd} names the file`);
  }

  const inline = JSON.parse(readFileSync(alphaConfig, 'utf8')) as { salt: Record<string, unknown> };
  inline.salt.password = 'inline-password-never-echoed';
  const inlineFile = join(dirname(alphaConfig), 'inline.yaml');
  writeFileSync(inlineFile, JSON.stringify(inline));
  const r = await runBridgeCli(['run', '--config', inlineFile], {}, { timeoutMs: 20_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /salt\.password/);
  assert.ok(!(r.stdout + r.stderr).includes('inline-password-never-echoed'), 'the inline value is not echoed');

  const viaEnv = await runBridgeCli(['check'], { KSB_CONFIG_FILE: missingKubeconfig }, { timeoutMs: 20_000 });
  assert.equal(viaEnv.code, 2, viaEnv.stderr);
  assert.match(viaEnv.stderr, /clusters\[0\]\.kubeconfig/, 'KSB_CONFIG_FILE selects the config');
});

test('once: publishes the current list, exits 0 and reports what it published', async () => {
  const since = salt.events.length;
  const r = await runBridgeCli(['once', '--config', alphaConfig, '--timeout', '30'], {}, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `once failed:\n${r.stderr}\n${r.stdout.slice(-3000)}`);
  assert.match(r.stderr, /^alpha: published; synced=true nodes=2 ipv4=2 ipv6=0 generation=\d+/m);
  const ev = await waitForList(ALPHA, ['10.30.0.1', '10.30.0.2'], since);
  const p = ev.data as unknown as AllowListPayload;
  assert.ok(verifyPayload(p, KEYS.signer));
  assert.equal(p.nodes, 2);
  assert.equal(String(p.generation), /generation=(\d+)/.exec(r.stderr)![1], 'the reported generation is the one fired');
  await barrier();
  assert.equal(payloads(ALPHA, since).length, 1, 'exactly one event for one once');
  assertNoSecrets(r.stdout + r.stderr);
});

test('once --dry-run: exit 0, logs the payload that would be fired without its signature, fires nothing', async () => {
  const since = salt.events.length;
  const r = await runBridgeCli(['once', '--dry-run', '--config', alphaConfig, '--timeout', '30'], {}, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `once --dry-run failed:\n${r.stderr}\n${r.stdout.slice(-3000)}`);
  assert.match(r.stderr, /^alpha: would publish \(dry run\); synced=true nodes=2/m);
  const line = jsonLines(r.stdout).find((l) => typeof l.msg === 'string' && l.msg.startsWith(`dry run: would fire ${ALPHA}`));
  assert.ok(line, `a "dry run: would fire" line:\n${r.stdout.slice(-3000)}`);
  assert.equal(eventOf(line).tag, ALPHA);
  const p = eventOf(line).data;
  assert.deepEqual(p.ipv4, ['10.30.0.1', '10.30.0.2']);
  assert.equal(p.cluster, 'alpha');
  assert.equal(p.nodes, 2);
  assert.ok(typeof p.generation === 'number' && typeof p.digest === 'string');
  assert.equal(p.signature, DRY_RUN_SIGNATURE, 'the signature is replaced by a marker');
  assert.equal(verifyPayload(p, KEYS.signer), false, 'a logged payload can never be fired');
  assert.doesNotMatch(r.stdout + r.stderr, /ed25519:/, 'no signature anywhere in the output');
  assert.ok(verifyPayload({ ...p, signature: KEYS.signer.sign(canonicalForm(p)) }, KEYS.signer), 'every other field is the complete payload');
  await sleep(1000);
  await barrier();
  assert.equal(payloads(ALPHA, since).length, 0, 'nothing was fired');
  assertNoSecrets(r.stdout + r.stderr);
});

test('once with an unreachable apiserver: exit 1 within --timeout, the reachable cluster is published, nothing for the other', async () => {
  const kc = JSON.parse(readFileSync(kube.bridgeKubeconfig, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
  kc.clusters[0]!.cluster.server = `https://127.0.0.1:${await freePort()}`; // nothing listens there
  const deadKubeconfig = join(dirname(alphaConfig), 'dead.kubeconfig');
  writeFileSync(deadKubeconfig, JSON.stringify(kc), { mode: 0o600 });
  const file = await config({ clusters: [...alpha.clusters, { name: 'dead', kube, kubeconfig: deadKubeconfig, families: ['ipv4'] }] });
  const since = salt.events.length;
  const timeoutS = 4;
  const r = await runBridgeCli(['once', '--config', file, '--timeout', String(timeoutS)], {}, { timeoutMs: 60_000 });
  assert.equal(r.code, 1, `once must fail:\n${r.stderr}`);
  // Process start-up (~1 s) + the sync wait + a prompt stop.
  assert.ok(r.ms < timeoutS * 1000 + 5000, `exited after ${r.ms} ms (timeout ${timeoutS} s)`);
  assert.ok(r.ms >= timeoutS * 1000, `waited the whole --timeout for the cluster to sync (${r.ms} ms)`);
  assert.match(r.stderr, /^dead: NOT published; synced=false/m);
  assert.match(r.stderr, /^alpha: published; synced=true/m);
  await waitForList(ALPHA, ['10.30.0.1', '10.30.0.2'], since);
  await barrier();
  assert.deepEqual(payloads(tagOf('dead'), since), [], 'an unreachable cluster is unknown, never published (not even empty)');
});

test('check: a good config passes every line', async () => {
  const r = await runBridgeCli(['check', '--config', alphaConfig], {}, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `check failed:\n${r.stdout}\n${r.stderr}`);
  const ok = (what: RegExp) => assert.match(r.stdout, new RegExp(`^\\S.*\\s+OK\\s+${what.source}`, 'm'), `an OK line for ${what}`);
  ok(/credentials: server https:\/\/127\.0\.0\.1:\d+, context cli, user cli-user/);
  ok(/list nodes: 2 node\(s\) matching pool=main/);
  ok(/watch nodes: stream opened/);
  ok(/login as kube-salt-bridge \(eauth file\)/);
  ok(/fire event kube-salt-bridge\/check .*permitted/);
  ok(/event stream open/);
  ok(new RegExp(`Ed25519 key id ${KEYS.keyId}, public key ${KEYS.publicText.replace(/[+/]/g, '\\$&')} `));
  assert.doesNotMatch(r.stdout, /\bFAIL\b/);
  assert.match(r.stdout, /all checks passed/);
  assertNoSecrets(r.stdout + r.stderr);
});

test('check: a kubeconfig without RBAC fails and names the forbidden list; no secret in the output', async () => {
  const file = await config({ clusters: [{ name: 'alpha', kube, kubeconfig: kube.nobodyKubeconfig }] });
  const r = await runBridgeCli(['check', '--config', file], {}, { timeoutMs: 60_000 });
  assert.equal(r.code, 1, `check must fail:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /cluster alpha\s+FAIL\s+.*list nodes: HTTP 403 \(Forbidden.*nodes is forbidden: User "nobody" cannot list/);
  assert.match(r.stdout, /salt-api\s+OK\s+login/, 'the rest is still checked');
  assert.match(r.stdout, /some checks FAILED/);
  const key = readFileSync(kube.nobodyKubeconfig, 'utf8');
  assertNoSecrets(r.stdout + r.stderr, [
    (JSON.parse(key) as { users: Array<{ user: Record<string, string> }> }).users[0]!.user['client-key-data']!.slice(0, 40),
  ]);
});

test('check: a wrong salt-api password fails the login and never prints a password', async () => {
  const wrong = 'wrong-password-0f9e8d7c';
  const file = await config({ saltPassword: wrong });
  const r = await runBridgeCli(['check', '--config', file], {}, { timeoutMs: 60_000 });
  assert.equal(r.code, 1, `check must fail:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /salt-api\s+FAIL\s+.*(login|auth)/i);
  assert.match(r.stdout, /cluster alpha\s+OK\s+list nodes/, 'the Kubernetes side still passes');
  assert.doesNotMatch(r.stdout, /fire event/, 'no fire attempt without a login');
  assertNoSecrets(r.stdout + r.stderr, [wrong]);
});

test('status with no bridge running exits 1 with a clear message', async () => {
  const port = await freePort();
  const r = await runBridgeCli(['status', '--url', `http://127.0.0.1:${port}`], {}, { timeoutMs: 30_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot reach the bridge at http://127\\.0\\.0\\.1:${port}.*kube-salt-bridge run`));
  const viaConfig = await runBridgeCli(['status', '--config', alphaConfig], {}, { timeoutMs: 30_000 });
  assert.equal(viaConfig.code, 1, viaConfig.stderr);
  assert.match(viaConfig.stderr, /cannot reach the bridge at http:\/\/127\.0\.0\.1:\d+/);
});

test('run --dry-run: logs "dry run: would fire" with the payload for the start and for a change, fires nothing', async () => {
  const since = salt.events.length;
  const b = await startBridge(alpha, ['--dry-run']);
  running.push(b);
  const first = await b.waitLog('dry run for the initial list', (l) => String(l.msg).startsWith(`dry run: would fire ${ALPHA}`));
  assert.deepEqual(eventOf(first).data.ipv4, ['10.30.0.1', '10.30.0.2']);
  assert.equal(eventOf(first).data.signature, DRY_RUN_SIGNATURE);
  assert.equal(verifyPayload(eventOf(first).data, KEYS.signer), false, 'the logged payload carries no valid signature');
  await kube.createNode('c3', [{ type: 'InternalIP', address: '10.30.0.3' }], { labels: { pool: 'main' } });
  const second = await b.waitLog(
    'dry run for c3',
    (l) => String(l.msg).startsWith(`dry run: would fire ${ALPHA}`) && eventOf(l).data.ipv4.includes('10.30.0.3'),
  );
  assert.deepEqual(eventOf(second).data.added, ['10.30.0.3']);
  const st = await runBridgeCli(['status', '--url', b.url, '--json'], {}, { timeoutMs: 30_000 });
  assert.equal(st.code, 0, st.stderr);
  assert.equal((JSON.parse(st.stdout) as StatusDoc).dryRun, true);
  await sleep(1500);
  await barrier();
  assert.equal(payloads(ALPHA, since).length, 0, 'a dry run fires nothing');
  assert.equal(b.logs.filter((l) => String(l.msg).startsWith('fired ')).length, 0);
  assert.doesNotMatch(b.rawOutput(), /ed25519:/, "no signature anywhere in the dry run's log");
  assert.equal(await b.stop(), 0);
  running.splice(running.indexOf(b), 1);
});

let live: BridgeProc;
let liveGeneration: number;

test('status: a running bridge shows its clusters as a table (nodes, generation) and as JSON', async () => {
  const since = salt.events.length;
  live = await startBridge(alpha);
  running.push(live);
  await live.waitReady();
  const ev = await waitForList(ALPHA, ['10.30.0.1', '10.30.0.2', '10.30.0.3'], since);
  liveGeneration = (ev.data as unknown as AllowListPayload).generation;

  const r = await runBridgeCli(['status', '--url', live.url], {}, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^bridge: publishing; ready$/);
  const header = lines.find((l) => l.startsWith('CLUSTER'))!;
  const row = lines.find((l) => l.startsWith('alpha '));
  assert.ok(header && row, r.stdout);
  const col = (name: string) => row.slice(header.indexOf(name)).split(/\s{2,}/)[0];
  assert.equal(col('SYNCED'), 'yes');
  assert.equal(col('NODES'), '3');
  assert.equal(col('IPV4'), '3');
  assert.equal(col('GENERATION'), String(liveGeneration));
  assert.equal(col('HELD'), '-');

  const j = await runBridgeCli(['status', '--url', live.url, '--json'], {}, { timeoutMs: 30_000 });
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout) as { active: boolean; clusters: Array<{ cluster: string; nodes: number; generation: number }> };
  assert.equal(doc.active, true);
  assert.deepEqual(
    doc.clusters.map((c) => [c.cluster, c.nodes, c.generation]),
    [['alpha', 3, liveGeneration]],
  );

  const viaConfig = await runBridgeCli(['status', '--config', live.configFile], {}, { timeoutMs: 30_000 });
  assert.equal(viaConfig.code, 0, `the address comes from http.listen: ${viaConfig.stderr}`);
  assert.match(viaConfig.stdout, new RegExp(`^alpha .*${liveGeneration}`, 'm'));
  assertNoSecrets(r.stdout + j.stdout + viaConfig.stdout);
});

test('SIGTERM: run stops cleanly with exit 0 within a few seconds', async (t) => {
  assert.ok(live, 'needs the running bridge of the previous test');
  const t0 = Date.now();
  const code = await live.stop('SIGTERM');
  const ms = Date.now() - t0;
  running.splice(running.indexOf(live), 1);
  assert.equal(code, 0, live.rawOutput().slice(-2000));
  assert.ok(ms < 10_000, `stopped in ${ms} ms`);
  assert.ok(
    live.logs.some((l) => l.msg === 'stopped'),
    'logs that it stopped',
  );
  t.diagnostic(`SIGTERM to exit: ${ms} ms`);
});

test('release: a shrink beyond maxShrinkFraction is held (status says why), then published by `release`', async () => {
  const TAG = tagOf('shrinky');
  const setup: BridgeSetup = {
    clusters: [{ name: 'shrinky', kube, families: ['ipv4'], labelSelector: 'pool=shrink', safety: { maxShrinkFraction: 0.1, minNodes: 1 } }],
    salt,
    privateKey: KEYS.privateText,
  };
  // 0.1, not 0.2: the nodes are deleted one by one, and a run between the deletions must not find
  // 1 of 5 (20 %) acceptable and publish it (the held list must be measured against the full one).
  const since = salt.events.length;
  const b = await startBridge(setup);
  running.push(b);
  await b.waitReady();
  const all = ['10.31.0.1', '10.31.0.2', '10.31.0.3', '10.31.0.4', '10.31.0.5'];
  const initial = (await waitForList(TAG, all, since)).data as unknown as AllowListPayload;

  for (const n of ['s1', 's2', 's3']) await kube.deleteNode(n);
  const held = await waitFor(
    'shrinky held',
    async () => {
      const c = (await b.status()).clusters[0];
      return c?.held && c.nodes === 2 ? { held: c.held, generation: c.generation } : undefined;
    },
    20_000,
  );
  assert.deepEqual(held.held.reasons, ['shrink']);
  assert.equal(held.generation, initial.generation, 'the published generation is still the full list');
  const heldSince = salt.events.length;

  const st = await runBridgeCli(['status', '--url', b.url], {}, { timeoutMs: 30_000 });
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, new RegExp(`^shrinky .*shrink ${held.held.digest.slice(0, 19).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
  assert.ok(
    b.logs.some((l) => /publish held: .*release with: kube-salt-bridge release shrinky/.test(String(l.msg))),
    'the log says how to release',
  );

  await sleep(2000);
  await barrier();
  assert.equal(payloads(TAG, since).length, 1, 'nothing published while held');

  const stale = await runBridgeCli(['release', 'shrinky', '--config', b.configFile, '--digest', 'sha256:0000'], {}, { timeoutMs: 30_000 });
  assert.equal(stale.code, 1, 'a release naming another digest is refused');
  assert.match(stale.stdout, /held digest is/);
  await barrier();
  assert.equal(payloads(TAG, since).length, 1);

  const rel = await runBridgeCli(['release', 'shrinky', '--config', b.configFile, '--digest', held.held.digest], {}, { timeoutMs: 30_000 });
  assert.equal(rel.code, 0, `${rel.stdout}${rel.stderr}`);
  assert.match(rel.stdout, /shrinky: releasing held list sha256:/);
  const shrunk = (await waitForList(TAG, ['10.31.0.4', '10.31.0.5'], heldSince)).data as unknown as AllowListPayload;
  assert.deepEqual(shrunk.removed, ['10.31.0.1', '10.31.0.2', '10.31.0.3']);
  assert.ok(shrunk.generation > initial.generation);
  assert.ok(verifyPayload(shrunk, KEYS.signer));

  const again = await runBridgeCli(['release', 'shrinky', '--config', b.configFile], {}, { timeoutMs: 30_000 });
  assert.equal(again.code, 1, 'nothing left to release');
  assert.match(again.stdout, /no held publish/);
  const final = await b.status();
  assert.equal(final.clusters[0]!.held ?? undefined, undefined);
  assert.equal(await b.stop(), 0);
  running.splice(running.indexOf(b), 1);
});

test('once --force: publishes a list the safety policy holds; plain once on the same state exits 1 and publishes nothing', async () => {
  const TAG = tagOf('forcy');
  const all = ['10.32.0.1', '10.32.0.2', '10.32.0.3', '10.32.0.4', '10.32.0.5'];
  for (let i = 1; i <= 5; i++) await kube.createNode(`f${i}`, [{ type: 'InternalIP', address: `10.32.0.${i}` }], { labels: { pool: 'force' } });
  const { file, stateDir } = await writeBridgeConfig({
    clusters: [{ name: 'forcy', kube, families: ['ipv4'], labelSelector: 'pool=force', safety: { maxShrinkFraction: 0.2, minNodes: 1 } }],
    salt,
    privateKey: KEYS.privateText,
  });
  const stateFile = join(stateDir, 'forcy.json');
  const once = (...extra: string[]) => runBridgeCli(['once', '--config', file, '--timeout', '30', ...extra], {}, { timeoutMs: 60_000 });

  // The previous, larger publish: the state dir now holds 5 entries.
  let since = salt.events.length;
  const first = await once();
  assert.equal(first.code, 0, `once failed:\n${first.stderr}\n${first.stdout.slice(-3000)}`);
  const full = (await waitForList(TAG, all, since)).data as unknown as AllowListPayload;
  assert.deepEqual(stateOf(stateFile).ipv4, all);

  for (const n of ['f1', 'f2', 'f3', 'f4']) await kube.deleteNode(n);

  // Plain once: removing 4 of 5 entries (80 % > 20 %) is held — exit 1, nothing fired, state untouched.
  since = salt.events.length;
  const held = await once();
  assert.equal(held.code, 1, `a held list must fail once:\n${held.stderr}`);
  assert.match(
    held.stderr,
    /^forcy: NOT published; synced=true nodes=1 ipv4=1 ipv6=0 generation=(\d+) held: would remove 4 of 5 entries \(80% > safety\.maxShrinkFraction 20%\)/m,
  );
  assert.equal(/generation=(\d+)/.exec(held.stderr)![1], String(full.generation), 'the published generation is still the full list');
  assert.ok(
    jsonLines(held.stdout).some((l) => /publish held: would remove 4 of 5/.test(String(l.msg))),
    'the log says it was held',
  );
  await barrier();
  assert.equal(payloads(TAG, since).length, 0, 'a held once fires nothing');
  assert.equal(stateOf(stateFile).generation, full.generation, 'the state dir still holds the full list');

  // --force on the same state: the held list goes out, once, as a new generation.
  since = salt.events.length;
  const forced = await once('--force');
  assert.equal(forced.code, 0, `once --force failed:\n${forced.stderr}\n${forced.stdout.slice(-3000)}`);
  assert.match(forced.stderr, /^forcy: published; synced=true nodes=1 ipv4=1 ipv6=0 generation=(\d+)$/m, 'published, and no longer held');
  const shrunk = (await waitForList(TAG, ['10.32.0.5'], since)).data as unknown as AllowListPayload;
  assert.ok(verifyPayload(shrunk, KEYS.signer));
  assert.deepEqual(shrunk.removed, ['10.32.0.1', '10.32.0.2', '10.32.0.3', '10.32.0.4']);
  assert.ok(shrunk.generation > full.generation, 'a new generation');
  assert.equal(String(shrunk.generation), /generation=(\d+)/.exec(forced.stderr)![1], 'the reported generation is the one fired');
  assert.ok(
    jsonLines(forced.stdout).some((l) => /publishing a held list: released by operator override/.test(String(l.msg))),
    'the override is logged',
  );
  await barrier();
  assert.equal(payloads(TAG, since).length, 1, 'exactly one event for once --force');
  const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { generation: number; ipv4: string[] };
  assert.deepEqual([saved.generation, saved.ipv4], [shrunk.generation, ['10.32.0.5']], 'the forced list is now the published state');
  assertNoSecrets(first.stdout + first.stderr + held.stdout + held.stderr + forced.stdout + forced.stderr);
});

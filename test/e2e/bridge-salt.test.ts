// The bridge against a real salt-master + salt-api (rest_cherrypy over TLS, eauth `file`, the
// bridge user holding exactly the ACL shipped in salt/conf/master.d/eauth.conf) and one real minion:
// the documented tag reaches the bus; the bridge survives a salt-api restart (token loss: it logs
// in again; event stream: it reconnects and keeps reacting); its credentials can do nothing but
// fire our cluster events; no password, token or signing key reaches the bus or the logs; a
// restarted minion gets the current list again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join, dirname } from 'node:path';
import { pino } from 'pino';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack, type BusEvent } from '../harness/salt.ts';
import { payloadsOf, saltApi, waitForAllowList } from '../harness/bus.ts';
import { startBridge, runBridgeCli, type BridgeProc } from '../harness/bridge.ts';
import { stopInOrder, sleep, waitFor, workDir, tail } from '../harness/proc.ts';
import { ROOT } from '../harness/tools.ts';
import { testKeys } from '../harness/keys.ts';
import { verifyPayload } from '../../src/plan/index.ts';
import { SaltApiClient } from '../../src/salt/client.ts';
import type { AllowListPayload } from '../../src/seams.ts';

const KEYS = testKeys();
const CLUSTER = 'beta';
const TAG = `kube-salt-bridge/cluster/${CLUSTER}/nodes`;
/** A full publish for the whole cluster; a targeted re-send carries the unsigned `minions` hint. */
const isFull = (data: Record<string, unknown>) => data.minions === undefined;
const resendTo = (data: Record<string, unknown>, minion: string) => JSON.stringify(data.minions) === JSON.stringify([minion]);

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let bridge: BridgeProc;
let ca: Buffer;
/** The command test 3 tries (and must fail) to run on a minion with the bridge's credentials. */
let deniedCmd = '';
/**
 * Salt itself fires salt/job/[<jid>/]error with the whole publish load, the caller's eauth token
 * included, when a `local` call is refused (salt/master.py, ClearFuncs.publish). Only the
 * test's own denied cmd.run produces those; the secret scan sets them apart and says so.
 */
const isDeniedProbeError = (e: BusEvent) => /^salt\/job\/(\d+\/)?error$/.test(e.tag) && deniedCmd !== '' && JSON.stringify(e.data).includes(deniedCmd);

// ---- helpers ---------------------------------------------------------------------------------

/** One raw request to the real salt-api; never throws for an HTTP status. */
const api = (method: string, path: string, o: { body?: unknown; token?: string; headersOnly?: boolean } = {}) => saltApi(salt, ca, method, path, o);

async function login(user: { username: string; password: string }): Promise<{ token: string; perms: unknown }> {
  const a = await api('POST', '/login', { body: { username: user.username, password: user.password, eauth: 'file' } });
  assert.equal(a.status, 200, `login as ${user.username}: ${a.text.slice(0, 300)}`);
  const r = (a.json as { return: Array<{ token: string; perms: unknown }> }).return[0]!;
  return { token: r.token, perms: r.perms };
}

const ours = () => salt.events.filter((e) => e.tag === TAG);
const payloads = () => payloadsOf(salt, TAG);
const latestGeneration = () =>
  Math.max(
    ...payloads()
      .filter((p) => isFull(p as unknown as Record<string, unknown>))
      .map((p) => p.generation),
  );
const logsWith = (msg: string) => bridge.logs.filter((l) => l.msg === msg);
const gauge = (metrics: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
const counterSum = (metrics: string, name: string) =>
  [...metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);

const waitForList = (what: string, ipv4: string[], timeoutMs = 20_000) => waitForAllowList(salt, TAG, ipv4, { what, timeoutMs, match: (e) => isFull(e.data) });

/** Events seen on the bus from index `from` on. */
function since(from: number, match: (e: BusEvent) => boolean): BusEvent[] {
  return salt.events.slice(from).filter(match);
}

function waitSince(what: string, from: number, match: (e: BusEvent) => boolean, timeoutMs = 30_000): Promise<BusEvent> {
  return salt.waitForEvent(what, (e) => salt.events.indexOf(e) >= from && match(e), timeoutMs);
}

/** A SaltApiClient (the bridge's own client code) with the bridge's credentials; its log lines are kept. */
function bridgeClient(): { client: SaltApiClient; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const client = new SaltApiClient({
    url: salt.apiUrl,
    username: salt.bridge.username,
    password: () => salt.bridge.password,
    eauth: 'file',
    caPem: ca.toString('utf8'),
    timeoutMs: 10_000,
    logger: pino({ level: 'debug' }, sink),
    backoff: { initialMs: 200, maxMs: 1000 },
  });
  return { client, logs };
}

// ---- the stack -------------------------------------------------------------------------------

before(
  async () => {
    const kubeP = startKube(CLUSTER);
    lab = await startLab();
    salt = await startSalt(lab, { minions: 1 });
    kube = await kubeP;
    ca = readFileSync(salt.apiCaFile);
    // minion-1 protects something for cluster beta: the reactor's target names it, and it holds the bridge's public key.
    await salt.setPillar({ 'minion-1': { kube_allowlist: { public_keys: [KEYS.publicText], clusters: { [CLUSTER]: {} } } } });
    await kube.createNode('b1', [{ type: 'InternalIP', address: '10.30.0.1' }]);
    await kube.createNode('b2', [{ type: 'InternalIP', address: '10.30.0.2' }]);
    bridge = await startBridge({ clusters: [{ name: CLUSTER, kube, families: ['ipv4'] }], salt, privateKey: KEYS.privateText });
    await bridge.waitReady();
  },
  { timeout: 240_000 },
);

after(() => stopInOrder(bridge, salt, lab, kube));

// ---- tests -----------------------------------------------------------------------------------

test('login works and the published event reaches the master bus with the documented tag', async () => {
  const ev = await waitForList('initial list', ['10.30.0.1', '10.30.0.2']);
  const p = ev.data as unknown as AllowListPayload;
  assert.equal(p.cluster, CLUSTER);
  assert.equal(p.version, 2);
  assert.equal(p.key_id, KEYS.keyId);
  assert.ok(verifyPayload(p, KEYS.signer), "signature verifies with the bridge's public key");

  const logins = logsWith('salt-api login ok');
  assert.ok(logins.length >= 1, 'the bridge logged in');
  const session = logins[0]!.salt as Record<string, unknown>;
  assert.equal(session.user, salt.bridge.username);
  assert.equal(session.eauth, 'file');

  // It was fired by the bridge's restricted user through the runner client, not by anyone else.
  const run = salt.events.find(
    (e) => /^salt\/run\/\d+\/new$/.test(e.tag) && e.data.fun === 'runner.event.send' && JSON.stringify(e.data).includes(p.signature),
  );
  assert.ok(run, 'a salt/run/<jid>/new event for runner.event.send carries the payload');
  assert.equal(run.data.user, salt.bridge.username);

  // The shipped reactor turned it into kube_allowlist.apply on minion-1 (pillar matches the target), and it applied.
  const ret = await salt.waitForEvent(
    'minion-1 applies the published generation',
    (e) =>
      e.tag.startsWith('salt/job/') &&
      e.tag.endsWith('/ret/minion-1') &&
      e.data.fun === 'kube_allowlist.apply' &&
      (e.data.return as Record<string, unknown> | undefined)?.generation === p.generation,
    30_000,
  );
  assert.equal(ret.data.retcode, 0, `apply return: ${JSON.stringify(ret.data.return)}`);
});

test('least privilege: the bridge user can fire our cluster events and nothing else (shipped ACL, real salt-api)', async (t) => {
  if (existsSync(`${ROOT}/salt/conf/master.d/eauth.conf`)) {
    assert.match(salt.bridgeAclSource, /^salt\/conf\/master\.d\/eauth\.conf/, 'the harness uses the shipped ACL');
  }
  const b = await login(salt.bridge);
  assert.deepEqual(b.perms, salt.bridgeAcl, 'salt-api reports exactly the shipped ACL for the bridge user');
  const admin = await login(salt.admin);
  const marker = `${workDir('least-privilege')}/cmd-run-marker`;
  rmSync(marker, { force: true });
  deniedCmd = `touch ${marker}`;
  const from = salt.events.length;

  // Execution modules on minions: refused, and nothing ran.
  for (const client of ['local', 'local_async']) {
    const r = await api('POST', '/', { token: b.token, body: { client, tgt: 'minion-1', fun: 'cmd.run', arg: [deniedCmd] } });
    assert.ok(r.status === 401 || r.status === 403, `${client} cmd.run must be refused, got ${r.status}: ${r.text.slice(0, 200)}`);
  }
  // Runners other than event.send (salt.cmd runs execution modules on the master) and wheel: refused.
  const refused: Array<[string, Record<string, unknown>]> = [
    ['runner salt.cmd', { client: 'runner', fun: 'salt.cmd', arg: ['cmd.run', `touch ${marker}`] }],
    ['runner manage.up', { client: 'runner', fun: 'manage.up' }],
    ['wheel key.list_all', { client: 'wheel', fun: 'key.list_all' }],
    ['wheel key.list', { client: 'wheel', fun: 'key.list', match: 'all' }],
  ];
  // event.send with any other tag, in every form salt-api accepts: refused.
  const evilTags = [
    'salt/minion/x/start',
    'kube-salt-bridge-evil/x',
    'kube-salt-bridge/cluster/x/nodes/extra',
    'xkube-salt-bridge/cluster/x/nodes',
    'kube-salt-bridge/cluster/X_/nodes',
    'salt/auth',
  ];
  for (const tag of evilTags) {
    refused.push([`event.send ${tag}`, { client: 'runner', fun: 'event.send', tag, data: { target: 'L@no-such-minion', ksbProbe: 'evil' } }]);
    refused.push([`event.send ${tag} (async)`, { client: 'runner_async', fun: 'event.send', tag, data: { ksbProbe: 'evil' } }]);
    refused.push([`event.send ${tag} (positional)`, { client: 'runner', fun: 'event.send', arg: [tag] }]);
  }
  for (const [what, body] of refused) {
    const r = await api('POST', '/', { token: b.token, body });
    assert.ok(r.status === 401 || r.status === 403, `${what} must be refused, got ${r.status}: ${r.text.slice(0, 200)}`);
  }
  // Smuggling: an allowed positional tag plus another tag as keyword passes the ACL, but fires nothing.
  const smuggle = await api('POST', '/', {
    token: b.token,
    body: { client: 'runner', fun: 'event.send', arg: ['kube-salt-bridge/cluster/x/nodes'], tag: 'salt/minion/x/start' },
  });
  assert.notDeepEqual(smuggle.json, { return: [true] }, `smuggled tag must not be fired: ${smuggle.status} ${smuggle.text.slice(0, 200)}`);

  // Allowed: a cluster event of ours (to a target that matches nobody).
  const ok = await api('POST', '/', {
    token: b.token,
    body: { client: 'runner', fun: 'event.send', tag: 'kube-salt-bridge/cluster/x/nodes', data: { target: 'L@no-such-minion', probe: 'least-privilege' } },
  });
  assert.equal(ok.status, 200, ok.text.slice(0, 200));
  assert.deepEqual(ok.json, { return: [true] });
  await waitSince('the allowed probe event', from, (e) => e.tag === 'kube-salt-bridge/cluster/x/nodes' && e.data.probe === 'least-privilege');

  // Positive controls: the same refused calls work for the admin user, so the refusals are the ACL's doing.
  const adminRun = await api('POST', '/', { token: admin.token, body: { client: 'local', tgt: 'minion-1', fun: 'cmd.run', arg: [`echo admin-can`] } });
  assert.equal(adminRun.status, 200);
  assert.deepEqual(adminRun.json, { return: [{ 'minion-1': 'admin-can' }] });
  const adminWheel = await api('POST', '/', { token: admin.token, body: { client: 'wheel', fun: 'key.list_all' } });
  assert.equal(adminWheel.status, 200);
  assert.match(adminWheel.text, /minion-1/);
  const adminEvil = await api('POST', '/', {
    token: admin.token,
    body: { client: 'runner', fun: 'event.send', tag: 'kube-salt-bridge-evil/x', data: { control: true } },
  });
  assert.deepEqual(adminEvil.json, { return: [true] });
  await waitSince('the admin control event', from, (e) => e.tag === 'kube-salt-bridge-evil/x' && e.data.control === true);

  await sleep(1000); // let anything the refused calls might have fired arrive
  assert.equal(existsSync(marker), false, 'cmd.run never ran');
  const leaked = since(from, (e) => e.data.ksbProbe === 'evil' || (evilTags.includes(e.tag) && e.tag !== 'salt/auth' && e.data.control !== true));
  assert.deepEqual(
    leaked.map((e) => e.tag),
    [],
    'no refused tag reached the bus',
  );
  const fromBridgeUser = since(from, (e) => /^salt\/(run|wheel)\/\d+\/new$/.test(e.tag) && e.data.user === salt.bridge.username);
  assert.deepEqual([...new Set(fromBridgeUser.map((e) => e.data.fun))].sort(), ['runner.event.send'], 'the bridge user only ever ran event.send');
  const errors = since(from, isDeniedProbeError);
  const leakedTokens = salt.tokens().filter(({ token }) => errors.some((e) => JSON.stringify(e.data).includes(token)));
  t.diagnostic(
    `Salt fired ${errors.length} salt/job/[<jid>/]error event(s) for the refused cmd.run, carrying ${leakedTokens.length} eauth token(s) of this probe's own session`,
  );
  await api('POST', '/logout', { token: b.token });
  await api('POST', '/logout', { token: admin.token });
});

test('a restarted minion gets the current list again: same generation, target narrowed to it', async () => {
  await waitForList('initial list', ['10.30.0.1', '10.30.0.2']);
  await sleep(500);
  const generation = latestGeneration();
  const m = salt.minions[0]!;
  const from = salt.events.length;
  await m.stop();
  await m.start();
  await waitSince('minion-1 start event', from, (e) => e.tag === 'salt/minion/minion-1/start', 60_000).catch((e: Error) => {
    throw new Error(
      `${e.message}\nminion output:\n${tail(m.daemon.logFile, 20)}\nminion log:\n${tail(join(dirname(m.daemon.logFile), 'root', dirname(m.daemon.logFile), 'minion.log'), 40)}`,
    );
  });
  const ev = await waitSince('the targeted re-send', from, (e) => e.tag === TAG && resendTo(e.data, 'minion-1'), 20_000);
  const p = ev.data as unknown as AllowListPayload;
  assert.equal(p.generation, generation, 'the re-send carries the generation already published');
  assert.deepEqual(p.ipv4, ['10.30.0.1', '10.30.0.2']);
  assert.ok(verifyPayload(p, KEYS.signer), 're-send is signed');
  assert.ok(logsWith('minion started; re-sending current lists').some((l) => l.minion === 'minion-1'));
  // The narrowed target reaches the restarted minion, which finds the list already current.
  const ret = await waitSince(
    'minion-1 answers the re-send',
    from,
    (e) =>
      e.tag.endsWith('/ret/minion-1') &&
      e.data.fun === 'kube_allowlist.apply' &&
      (e.data.return as Record<string, unknown> | undefined)?.generation === generation,
    30_000,
  );
  assert.equal(ret.data.retcode, 0, JSON.stringify(ret.data.return));
  // Nothing new was published for the cluster as a whole.
  assert.deepEqual(since(from, (e) => e.tag === TAG && isFull(e.data) && (e.data.generation as number) > generation).length, 0);
});

test('token loss after a salt-api restart: the bridge logs in again and the next publish succeeds', async (t) => {
  const loginsBefore = logsWith('salt-api login ok').length;
  const errorsBefore = counterSum(await bridge.metrics(), 'ksb_publish_errors_total');
  const generation = latestGeneration();
  // The bridge's client code with a token from before the restart, to see the POST path's own re-login.
  const probe = bridgeClient();
  await probe.client.login();

  const tokensBefore = salt.tokens().map(({ token }) => token);
  await salt.restartApi();
  const restartedAt = bridge.logs.length;
  // What the restart loses is salt-api's session (CherryPy keeps sessions in memory, and the token
  // salt-api hands out is the session id), not the master's eauth tokens: every one is still in the
  // master's store (one file per token up to Salt 3007, salt.cache's `<token>.p` from 3008 on).
  const tokensAfter = new Set(salt.tokens().map(({ token }) => token));
  assert.ok(tokensBefore.length >= 2, `tokens before the restart: ${tokensBefore.length}`);
  assert.deepEqual(
    tokensBefore.filter((tok) => !tokensAfter.has(tok)),
    [],
    `the master kept its eauth tokens (Salt ${salt.version.text})`,
  );

  await kube.createNode('b3', [{ type: 'InternalIP', address: '10.30.0.3' }]);
  const ev = await waitForList('b3 after the salt-api restart', ['10.30.0.1', '10.30.0.2', '10.30.0.3'], 45_000);
  const p = ev.data as unknown as AllowListPayload;
  assert.ok(p.generation > generation);
  assert.deepEqual(p.added, ['10.30.0.3']);
  assert.ok(verifyPayload(p, KEYS.signer));

  assert.ok(logsWith('salt-api login ok').length > loginsBefore, 'the bridge logged in again after the restart');
  const fired = await bridge.waitLog(
    'fired after restart',
    (l) =>
      bridge.logs.indexOf(l) >= restartedAt &&
      typeof l.msg === 'string' &&
      l.msg.startsWith(`fired ${TAG}`) &&
      (l.event as Record<string, unknown> | undefined)?.generation === p.generation,
  );
  assert.ok(fired);
  assert.equal(counterSum(await bridge.metrics(), 'ksb_publish_errors_total'), errorsBefore, 'no publish failed');
  const refusedLog = bridge.logs.slice(restartedAt).some((l) => l.msg === 'salt-api refused the token, logging in again');
  t.diagnostic(`bridge re-login path after restart: ${refusedLog ? 'POST / got 401, logged in again' : 'event stream reconnect logged in first'}`);

  // The client code's POST path: the old token is refused (401), it logs in once more and the fire succeeds.
  const from = salt.events.length;
  await probe.client.fireEvent('kube-salt-bridge/cluster/probe/nodes', { target: 'L@no-such-minion', probe: 'token-loss' });
  await waitSince('probe event after token loss', from, (e) => e.tag === 'kube-salt-bridge/cluster/probe/nodes' && e.data.probe === 'token-loss');
  assert.ok(
    probe.logs.some((l) => l.msg === 'salt-api refused the token, logging in again'),
    'the stale token was refused',
  );
  assert.equal(probe.logs.filter((l) => l.msg === 'salt-api login ok').length, 2, 'one login before, one after the restart');
  await probe.client.logout();
});

test('event stream: reconnects after a salt-api restart and still reacts to bus events', async (t) => {
  const t0 = Date.now();
  await waitFor('stream connected before this test', async () => gauge(await bridge.metrics(), 'ksb_event_stream_connected') === 1, 60_000, 200);
  t.diagnostic(`stream connected after ${Date.now() - t0} ms of waiting at the start`);
  const opensBefore = logsWith('salt event stream open').length;
  assert.equal(gauge(await bridge.metrics(), 'ksb_event_stream_connected'), 1, 'connected before the restart');
  const seen: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const v = await bridge.metrics().then(
        (m) => gauge(m, 'ksb_event_stream_connected'),
        () => NaN,
      );
      if (seen.at(-1) !== v) seen.push(v);
      await sleep(100);
    }
  })();
  try {
    await salt.restartApi();
    await waitFor(
      'stream reconnected',
      async () => logsWith('salt event stream open').length > opensBefore && gauge(await bridge.metrics(), 'ksb_event_stream_connected') === 1,
      45_000,
      200,
    );
  } finally {
    polling = false;
    await poller;
  }
  assert.ok(seen.includes(0), `the gauge showed the drop (values seen: ${seen.join(' → ')})`);
  // The poller's last sample may predate the reconnect (it stops between samples), so read once more.
  assert.equal(gauge(await bridge.metrics(), 'ksb_event_stream_connected'), 1, 'connected after the restart');
  await bridge.waitReady(30_000);

  // A minion start on the bus after the reconnect is still acted upon: a targeted re-send.
  const generation = latestGeneration();
  const from = salt.events.length;
  const r = await salt.cli('salt-run', ['event.send', 'salt/minion/ghost-7/start', '{"id": "ghost-7", "cmd": "_minion_event"}']);
  assert.equal(r.code, 0, r.stderr);
  const ev = await waitSince('re-send for ghost-7', from, (e) => e.tag === TAG && resendTo(e.data, 'ghost-7'), 20_000);
  assert.equal(ev.data.generation, generation);
});

test('no password, token or signing key on the bus or in the logs (after publishes, re-logins and `check`)', async (t) => {
  // More publishes and a `check` run (its own login).
  await kube.setAddresses('b1', [{ type: 'InternalIP', address: '10.30.0.11' }]);
  await waitForList('b1 re-addressed', ['10.30.0.11', '10.30.0.2', '10.30.0.3']);
  const check = await runBridgeCli(['check', '--config', bridge.configFile, '--timeout', '15']);
  t.diagnostic(`check exit ${check.code}:\n${check.stdout}`);
  assert.match(check.stdout, /login as kube-salt-bridge/, 'check logged in');
  await kube.deleteNode('b2');
  await waitForList('b2 deleted', ['10.30.0.11', '10.30.0.3']);
  assert.ok(ours().filter((e) => isFull(e.data)).length >= 4, 'several events were published');
  await sleep(1000); // the bus reader catches up

  // Every eauth token the master issued (one file each), and at least the bridge's run + check logins among them.
  const tokens = salt.tokens();
  const bridgeTokens = tokens.filter(({ file }) => readFileSync(file).includes(salt.bridge.username));
  assert.ok(bridgeTokens.length >= 3, `tokens of the bridge user: ${bridgeTokens.length} of ${tokens.length} (run, re-login, check)`);
  for (const { token } of tokens) assert.match(token, /^[0-9a-f]{32,}$/, `token file name ${token}`);

  const secrets: Array<[string, string]> = [
    ['salt-api password', salt.bridge.password],
    ['private signing key', KEYS.privateText],
    ['private signing key (hex)', KEYS.privateHex],
    ...tokens.map(({ token }): [string, string] => [`eauth token ${token.slice(0, 8)}…`, token]),
  ];
  const excluded = salt.events.filter(isDeniedProbeError);
  t.diagnostic(`bus: ${salt.events.length} events scanned; set apart: ${excluded.length} salt/job/[<jid>/]error event(s) of the test's own refused cmd.run`);
  const bus = salt.events
    .filter((e) => !isDeniedProbeError(e))
    .map((e) => `${e.tag}\t${JSON.stringify(e.data)}`)
    .join('\n');
  assert.ok(bus.length > 5_000 && salt.events.length > 50, `the scan sees a real bus (${salt.events.length} events)`);
  const outputs: Array<[string, string]> = [
    ['master bus', bus],
    ['bridge logs', bridge.rawOutput()],
    ['check output', check.stdout + check.stderr],
  ];
  const found: string[] = [];
  for (const [where, text] of outputs) {
    for (const [what, secret] of secrets) {
      if (!text.includes(secret)) continue;
      const tags = where === 'master bus' ? salt.events.filter((e) => JSON.stringify(e).includes(secret)).map((e) => e.tag) : [];
      found.push(`${what} in the ${where}${tags.length ? ` (events: ${[...new Set(tags)].join(', ')})` : ''}`);
    }
  }
  assert.deepEqual(found, [], 'no secret anywhere');

  // salt-api session ids (X-Auth-Token) are not files: try every long hex string on the bus as a
  // token. A live one would open /events. Control: a fresh admin session does.
  const admin = await login(salt.admin);
  assert.equal((await api('GET', '/events', { token: admin.token, headersOnly: true })).status, 200, 'control: a live session opens /events');
  const candidates = new Set([...bus.matchAll(/[0-9a-f]{32,}/g)].map((m) => m[0]));
  const live: string[] = [];
  for (const c of candidates) {
    const r = await api('GET', '/events', { token: c, headersOnly: true });
    if (r.status === 200) live.push(c.slice(0, 8));
  }
  assert.deepEqual(live, [], `no hex string on the bus is a live salt-api token (${candidates.size} tried)`);
  await api('POST', '/logout', { token: admin.token });
});

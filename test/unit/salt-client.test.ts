import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { SaltApiClient, SaltError, type SaltApiClientOptions } from '../../src/salt/index.ts';
import type { AllowListPayload } from '../../src/seams.ts';
import { captureLogger, loginBody, sendCherryPyError, sendJson, startFakeSaltApi, type FakeHandler, type FakeServer } from './salt-fakes.ts';

const PASSWORD = 'pw-SECRET-4711-password';
const TOKEN = 'tok0SECRET0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const TAG = 'kube-salt-bridge/cluster/prod/nodes';
const payload = { version: 1, cluster: 'prod', generation: 3 } as unknown as AllowListPayload;
const silent = pino({ level: 'silent' });

const servers: FakeServer[] = [];
async function serve(handler: FakeHandler, tls?: { key: string; cert: string }): Promise<FakeServer> {
  const s = await startFakeSaltApi(handler, tls);
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.close();
});

function client(url: string, extra: Partial<SaltApiClientOptions> = {}): SaltApiClient {
  return new SaltApiClient({
    url,
    username: 'ksb',
    password: () => PASSWORD,
    eauth: 'sharedsecret',
    timeoutMs: 2000,
    logger: silent,
    backoff: { initialMs: 10, maxMs: 40 },
    sleep: () => Promise.resolve(),
    random: () => 0.5,
    ...extra,
  });
}

/** A salt-api that accepts our password and a fixed token; `onRun` answers POST /. */
function saltApi(onRun: FakeHandler = (_q, res) => sendJson(res, 200, { return: [true] }), tokens: string[] = [TOKEN]): FakeHandler {
  let n = 0;
  return (req, res, raw) => {
    if (req.path === '/login' && req.method === 'POST') {
      const b = req.body as Record<string, unknown>;
      if (b['password'] !== PASSWORD) return sendCherryPyError(res, 401, 'Could not authenticate using provided credentials');
      const t = tokens[Math.min(n++, tokens.length - 1)] ?? TOKEN;
      res.setHeader('X-Auth-Token', t);
      return sendJson(res, 200, loginBody(t));
    }
    return onRun(req, res, raw);
  };
}

const logins = (s: FakeServer) => s.requests.filter((r) => r.path === '/login').length;
const runs = (s: FakeServer) => s.requests.filter((r) => r.path === '/' && r.method === 'POST');

async function rejectsWith(p: Promise<unknown>, code: string, retryable?: boolean): Promise<SaltError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SaltError, `expected a SaltError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (retryable !== undefined) assert.equal(err.retryable, retryable, `retryable of ${err.code}`);
    return err;
  }
  assert.fail(`expected ${code}`);
}

test('fireEvent: logs in with a JSON body, posts the runner low-state with X-Auth-Token, reuses the token', async () => {
  const s = await serve(saltApi());
  const c = client(s.url);
  await c.fireEvent(TAG, payload);
  await c.fire(TAG, payload);
  assert.equal(logins(s), 1);
  assert.deepEqual(s.requests[0]?.body, { username: 'ksb', password: PASSWORD, eauth: 'sharedsecret' });
  assert.equal(s.requests[0]?.headers['content-type'], 'application/json');
  const r = runs(s);
  assert.equal(r.length, 2);
  assert.deepEqual(r[0]?.body, { client: 'runner', fun: 'event.send', tag: TAG, data: payload });
  assert.equal(r[0]?.headers['x-auth-token'], TOKEN);
  assert.equal(r[0]?.headers['accept'], 'application/json');
});

test('concurrent calls share one login', async () => {
  const s = await serve(saltApi());
  const c = client(s.url);
  await Promise.all([c.fireEvent(TAG, payload), c.fireEvent(TAG, payload), c.fireEvent(TAG, payload)]);
  assert.equal(logins(s), 1);
});

test('a 401 on POST / (salt-api restarted, session gone) logs in again and repeats once', async () => {
  const s = await serve(
    saltApi(
      (req, res) =>
        req.headers['x-auth-token'] === 'old'
          ? sendCherryPyError(res, 401, 'No permission -- see authorization schemes')
          : sendJson(res, 200, { return: [true] }),
      ['old', TOKEN],
    ),
  );
  const c = client(s.url);
  await c.fireEvent(TAG, payload);
  assert.equal(logins(s), 2);
  assert.deepEqual(
    runs(s).map((r) => r.headers['x-auth-token']),
    ['old', TOKEN],
  );
});

test('a 401 with a fresh token is a denial (ACL), not retried further', async () => {
  const s = await serve(saltApi((_q, res) => sendCherryPyError(res, 401, 'Authentication failure of type &quot;token&quot; occurred for user ksb.')));
  const err = await rejectsWith(client(s.url).fireEvent('other/tag', {}), 'KSB_SALT_DENIED', false);
  assert.match(err.message, /occurred for user ksb/);
  assert.equal(runs(s).length, 2);
});

test('403 is a denial straight away', async () => {
  const s = await serve(saltApi((_q, res) => sendCherryPyError(res, 403, 'Forbidden')));
  await rejectsWith(client(s.url).fireEvent(TAG, payload), 'KSB_SALT_DENIED', false);
});

test('login refused: KSB_SALT_AUTH, not retryable, one try', async () => {
  const s = await serve(saltApi());
  const c = client(s.url, { password: () => 'wrong-password' });
  await rejectsWith(c.fireEvent(TAG, payload), 'KSB_SALT_AUTH', false);
  assert.equal(logins(s), 1);
});

test('renews the session before it expires (lifetime = expire - start, capped at 10 h)', async () => {
  let now = 1_000_000;
  const lifetimes = [600, 43200];
  let i = 0;
  const s = await serve((req, res) => {
    if (req.path === '/login') return sendJson(res, 200, loginBody(`t${i}`, lifetimes[Math.min(i++, 1)]));
    return sendJson(res, 200, { return: [true] });
  });
  const c = client(s.url, { now: () => now, refreshMarginMs: 60_000 });
  await c.fireEvent(TAG, payload);
  assert.equal(c.sessionInfo()?.expiresAt, 1_000_000 + 600_000);
  now += 500_000; // 100 s left: more than the 60 s margin
  await c.fireEvent(TAG, payload);
  assert.equal(logins(s), 1);
  now += 50_000; // 50 s left: renew first
  await c.fireEvent(TAG, payload);
  assert.equal(logins(s), 2);
  assert.equal(c.sessionInfo()?.expiresAt, now + 10 * 3600 * 1000, '12 h token capped at the 10 h session');
  assert.deepEqual(
    runs(s).map((r) => r.headers['x-auth-token']),
    ['t0', 't0', 't1'],
  );
});

test('5xx is retried with backoff + jitter, bounded by maxAttempts', async () => {
  let fails = 2;
  const s = await serve(saltApi((_q, res) => (fails-- > 0 ? sendCherryPyError(res, 503, 'busy') : sendJson(res, 200, { return: [true] }))));
  const delays: number[] = [];
  const c = client(s.url, {
    sleep: (ms) => {
      delays.push(ms);
      return Promise.resolve();
    },
    backoff: { initialMs: 100, maxMs: 1000 },
    random: () => 1,
  });
  await c.fireEvent(TAG, payload);
  assert.deepEqual(delays, [100, 200]);
  assert.equal(runs(s).length, 3);

  const always = await serve(saltApi((_q, res) => sendCherryPyError(res, 500, 'boom')));
  const err = await rejectsWith(client(always.url, { maxAttempts: 3 }).fireEvent(TAG, payload), 'KSB_SALT_HTTP', true);
  assert.equal(err.info.status, 500);
  assert.equal(runs(always).length, 3);
});

test('4xx other than 401/403/413 is not retried; the server text is in the message', async () => {
  const s = await serve(
    saltApi((_q, res) => sendCherryPyError(res, 400, "Client disabled: 'runner'. Add to 'netapi_enable_clients' master config option to enable.")),
  );
  const err = await rejectsWith(client(s.url).fireEvent(TAG, payload), 'KSB_SALT_HTTP', false);
  assert.match(err.message, /Client disabled: 'runner'/);
  assert.equal(runs(s).length, 1);
});

test('no answer within timeoutMs: KSB_SALT_TIMEOUT (retryable)', async () => {
  const s = await serve(saltApi(() => undefined /* never answers */));
  const started = Date.now();
  await rejectsWith(client(s.url, { timeoutMs: 150, maxAttempts: 2 }).fireEvent(TAG, payload), 'KSB_SALT_TIMEOUT', true);
  assert.ok(Date.now() - started < 1500);
  assert.equal(runs(s).length, 2);
});

test('connection refused: KSB_SALT_UNREACHABLE (retryable)', async () => {
  const s = await serve(saltApi());
  const url = s.url;
  await s.close();
  const err = await rejectsWith(client(url, { maxAttempts: 2 }).ping(), 'KSB_SALT_UNREACHABLE', true);
  assert.equal(err.info.code, 'ECONNREFUSED');
});

test('event.send not returning true (runner failure is HTTP 200 in salt-api): KSB_SALT_RUNNER_FAILED', async () => {
  const s = await serve(
    saltApi((_q, res) => sendJson(res, 200, { return: ["\nPassed invalid arguments: send() got multiple values for argument 'tag'\n\nUsage: ..."] })),
  );
  const err = await rejectsWith(client(s.url).fireEvent(TAG, payload), 'KSB_SALT_RUNNER_FAILED', false);
  assert.match(err.message, /Passed invalid arguments/);
  const empty = await serve(saltApi((_q, res) => sendJson(res, 200, { return: [] })));
  await rejectsWith(client(empty.url).fireEvent(TAG, payload), 'KSB_SALT_PROTOCOL', false);
});

test('payload too large: refused before sending; a 413 from the server too', async () => {
  const s = await serve(saltApi((_q, res) => sendCherryPyError(res, 413, 'Request Entity Too Large')));
  const big = { ...payload, ipv4: Array.from({ length: 200 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) } as AllowListPayload;
  const err = await rejectsWith(client(s.url, { maxBodyBytes: 1000 }).fireEvent(TAG, big), 'KSB_SALT_PAYLOAD_TOO_LARGE', false);
  assert.equal(s.requests.length, 0);
  assert.match(err.message, /over the limit of 1000/);
  await rejectsWith(client(s.url).fireEvent(TAG, payload), 'KSB_SALT_PAYLOAD_TOO_LARGE', false);
});

test('runRunner refuses low-state keys as arguments', async () => {
  const c = client('http://127.0.0.1:9');
  await assert.rejects(c.runRunner('event.send', { token: 'x' }), TypeError);
  await assert.rejects(c.runRunner('event.send', { client: 'local' }), TypeError);
});

test('ping: GET / then login; reports the session without the token', async () => {
  const s = await serve(
    saltApi((req, res) => (req.method === 'GET' ? sendJson(res, 200, { return: 'Welcome', clients: ['runner'] }) : sendJson(res, 404, {}))),
  );
  const p = await client(s.url).ping();
  assert.equal(p.user, 'ksb');
  assert.equal(p.eauth, 'sharedsecret');
  assert.ok(p.sessionExpiresAt > 0);
  assert.ok(!JSON.stringify(p).includes(TOKEN));
  assert.deepEqual(
    s.requests.map((r) => `${r.method} ${r.path}`),
    ['GET /', 'POST /login'],
  );
});

test('logout: POST /logout with the token, then forgets it', async () => {
  const s = await serve(saltApi((_q, res) => sendJson(res, 200, { return: 'Your token has been cleared' })));
  const c = client(s.url);
  await c.login();
  await c.logout();
  assert.equal(c.sessionInfo(), undefined);
  assert.equal(s.requests.at(-1)?.path, '/logout');
  assert.equal(s.requests.at(-1)?.headers['x-auth-token'], TOKEN);
});

// ---- TLS ---------------------------------------------------------------------------------------

let tlsDir = '';
let tls: { key: string; cert: string } | undefined;
before(() => {
  // openssl is installed by scripts/setup.sh; without it this fails (never skips).
  tlsDir = mkdtempSync(join(tmpdir(), 'ksb-salt-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=salt-api-test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(tlsDir, 'key.pem'),
      '-out',
      join(tlsDir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  tls = { key: readFileSync(join(tlsDir, 'key.pem'), 'utf8'), cert: readFileSync(join(tlsDir, 'cert.pem'), 'utf8') };
});
after(() => rmSync(tlsDir, { recursive: true, force: true }));

test('TLS: verified against the configured CA; refused without it; insecureSkipVerify skips', async () => {
  assert.ok(tls, 'test certificate was created');
  const s = await serve(saltApi(), tls);
  await client(s.url, { caPem: tls.cert }).fireEvent(TAG, payload);
  const err = await rejectsWith(client(s.url).fireEvent(TAG, payload), 'KSB_SALT_TLS', false);
  assert.equal(err.info.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  const { logger, lines } = captureLogger();
  await client(s.url, { insecureSkipVerify: true, logger }).fireEvent(TAG, payload);
  assert.ok(lines.some((l) => l.includes('verification is disabled')));
});

// ---- secrets -----------------------------------------------------------------------------------

test('the password and the token appear in no error message, cause, or log line', async () => {
  const { logger, lines } = captureLogger();
  const errors: unknown[] = [];
  const echo = `${PASSWORD} ${TOKEN}`;
  // A hostile/buggy server that echoes the secrets back in every error page.
  const s = await serve((req, res) => {
    if (req.path === '/login') {
      const b = req.body as Record<string, unknown>;
      if (b['username'] === 'bad') return sendCherryPyError(res, 401, echo);
      return sendJson(res, 200, loginBody(TOKEN));
    }
    const mode = (req.body as Record<string, unknown> | undefined)?.['tag'];
    if (mode === 'denied') return sendCherryPyError(res, 401, `denied ${echo}`);
    if (mode === 'e500') return sendCherryPyError(res, 500, `oops ${echo}`);
    if (mode === 'e400') return sendJson(res, 400, { return: `bad ${echo}` });
    if (mode === 'runner') return sendJson(res, 200, { return: [`Usage ${echo}`] });
    if (mode === 'hang') return undefined;
    return sendJson(res, 200, { return: [true] });
  });
  const c = client(s.url, { logger, timeoutMs: 150, maxAttempts: 2 });
  for (const tag of ['denied', 'e500', 'e400', 'runner', 'hang']) {
    await c.fireEvent(tag, {}).catch((e: unknown) => errors.push(e));
  }
  await client(s.url, { logger, username: 'bad' })
    .fireEvent(TAG, payload)
    .catch((e: unknown) => errors.push(e));
  const down = s.url;
  await s.close();
  await client(down, { logger, maxAttempts: 2 })
    .fireEvent(TAG, payload)
    .catch((e: unknown) => errors.push(e));

  assert.equal(errors.length, 7);
  for (const e of errors) {
    assert.ok(e instanceof SaltError);
    const texts = [e.message, String(e.stack), JSON.stringify(e), JSON.stringify(e.cause), JSON.stringify(e.info)];
    for (const t of texts) {
      assert.ok(!t.includes(PASSWORD), `password leaked in ${e.code}: ${t}`);
      assert.ok(!t.includes(TOKEN), `token leaked in ${e.code}: ${t}`);
    }
  }
  // log the errors the way callers will (pino err serializer) and check every line
  for (const e of errors) logger.error({ err: e }, 'failed');
  assert.ok(lines.length > 5);
  for (const l of lines) {
    assert.ok(!l.includes(PASSWORD), `password leaked in log: ${l}`);
    assert.ok(!l.includes(TOKEN), `token leaked in log: ${l}`);
  }
  // and the options object the client was built from prints no password
  assert.ok(!JSON.stringify({ password: () => PASSWORD }).includes(PASSWORD));
});

import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, test } from 'node:test';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { SaltApiClient, SaltEventStream, type SaltEventStreamOptions } from '../../src/salt/index.ts';
import type { BusEvent } from '../../src/seams.ts';
import { captureLogger, loginBody, sendCherryPyError, sendJson, startFakeSaltApi, type FakeHandler, type FakeServer } from './salt-fakes.ts';
import { rawSse, saltFixtures as f } from './salt-fixtures.ts';

const PASSWORD = 'pw-SECRET-stream-0815';
const WS_TOKEN = 'a'.repeat(60) + 'beef'; // rest_tornado tokens are 64 hex
const silent = pino({ level: 'silent' });

const servers: FakeServer[] = [];
const streams: SaltEventStream[] = [];
after(async () => {
  for (const s of streams) await s.stop();
  for (const s of servers) await s.close();
});

function client(url: string, logger = silent): SaltApiClient {
  return new SaltApiClient({ url, username: 'ksb', password: () => PASSWORD, eauth: 'sharedsecret', timeoutMs: 2000, logger, sleep: () => Promise.resolve() });
}

function stream(o: Omit<SaltEventStreamOptions, 'logger' | 'backoff'> & { logger?: SaltEventStreamOptions['logger'] }): SaltEventStream {
  const s = new SaltEventStream({ logger: silent, backoff: { initialMs: 10, maxMs: 40 }, ...o });
  streams.push(s);
  return s;
}

function sseLine(e: BusEvent): string {
  return `tag: ${e.tag}\ndata: ${JSON.stringify({ data: e.data, tag: e.tag })}\n\n`;
}

/** Waits until cond() holds (polling), failing after ms. */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** salt-api with /login and a scripted /events: each connection gets the next script. */
async function sseServer(scripts: Array<(res: http.ServerResponse) => void>, tokens = ['t1', 't2', 't3']): Promise<FakeServer> {
  let conn = 0;
  let login = 0;
  const handler: FakeHandler = (req, res) => {
    if (req.path === '/login') return sendJson(res, 200, loginBody(tokens[Math.min(login++, tokens.length - 1)] ?? 't'));
    if (req.path === '/events') {
      const script = scripts[Math.min(conn++, scripts.length - 1)];
      if (script === undefined) return sendCherryPyError(res, 500, 'no script');
      return script(res);
    }
    return sendCherryPyError(res, 404, 'not found');
  };
  const s = await startFakeSaltApi(handler);
  servers.push(s);
  return s;
}

function open(res: http.ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream;charset=utf-8', 'Cache-Control': 'no-cache' });
}

test('SSE: parses salt-api output (real capture, split at awkward places) into bus events', async () => {
  const server = await sseServer([
    (res) => {
      open(res);
      const text = rawSse + sseLine(f.applyRetOk);
      // dribble the bytes in odd-sized chunks
      let i = 0;
      const step = () => {
        if (i >= text.length) return;
        res.write(text.slice(i, i + 37));
        i += 37;
        setImmediate(step);
      };
      step();
    },
  ]);
  const s = stream({ client: client(server.url), mode: 'sse' });
  const got: BusEvent[] = [];
  s.onEvent((e) => got.push(e));
  await s.start();
  assert.equal(await s.waitForOpen(2000), true);
  await until(() => got.length === 4);
  assert.deepEqual(
    got.map((e) => e.tag),
    ['salt/run/20261122001130211201/new', f.published.tag, 'salt/run/20261122001130211201/ret', f.applyRetOk.tag],
  );
  assert.deepEqual(got[1]?.data, f.published.data);
  assert.equal(server.requests.find((r) => r.path === '/events')?.headers['x-auth-token'], 't1');
  assert.equal(server.requests.find((r) => r.path === '/events')?.headers['accept'], 'text/event-stream');
  assert.equal(s.transport, 'sse');
  await s.stop();
});

test('SSE: reconnects after the server ends the stream; emits closed then open; stop() stops', async () => {
  const server = await sseServer([
    (res) => {
      open(res);
      res.end(`retry: 20\n${sseLine(f.minionStart)}`);
    },
    (res) => {
      open(res);
      res.write(sseLine(f.published));
    },
  ]);
  const s = stream({ client: client(server.url), mode: 'sse' });
  const states: string[] = [];
  const got: string[] = [];
  s.onState((st) => states.push(st));
  s.onEvent((e) => got.push(e.tag));
  await s.start();
  await until(() => got.length === 2);
  assert.deepEqual(got, [f.minionStart.tag, f.published.tag]);
  assert.deepEqual(states, ['open', 'closed', 'open']);
  await s.stop();
  assert.deepEqual(states, ['open', 'closed', 'open', 'closed']);
  const n = server.requests.length;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(server.requests.length, n, 'no reconnect after stop');
});

test('SSE: a refused token (salt-api restarted / expired) is renewed and the stream connects', async () => {
  const server = await sseServer([
    (res) => sendCherryPyError(res, 401, 'No permission -- see authorization schemes'),
    (res) => {
      open(res);
      res.write(sseLine(f.minionStart));
    },
  ]);
  const s = stream({ client: client(server.url), mode: 'sse' });
  const got: string[] = [];
  s.onEvent((e) => got.push(e.tag));
  await s.start();
  await until(() => got.length === 1);
  const ev = server.requests.filter((r) => r.path === '/events').map((r) => r.headers['x-auth-token']);
  assert.deepEqual(ev, ['t1', 't2']);
  await s.stop();
});

test('SSE: unreachable server is retried with backoff; a throwing listener does not break the stream', async () => {
  const server = await sseServer([
    (res) => sendCherryPyError(res, 503, 'busy'),
    (res) => {
      open(res);
      res.write(sseLine(f.minionStart) + sseLine(f.published));
    },
  ]);
  const { logger, lines } = captureLogger();
  const s = stream({ client: client(server.url), mode: 'sse', logger });
  const got: string[] = [];
  s.onEvent(() => {
    throw new Error('listener bug');
  });
  s.onEvent((e) => got.push(e.tag));
  await s.start();
  await until(() => got.length === 2);
  assert.ok(lines.some((l) => l.includes('connect failed')));
  assert.ok(lines.some((l) => l.includes('event listener threw')));
  await s.stop();
});

// ---- websocket (rest_tornado /all_events/<token>) ----------------------------------------------

async function tornadoLike(opts: { ws: boolean }): Promise<{ server: FakeServer; wss: WebSocketServer; ready: string[] }> {
  const server = await startFakeSaltApi((req, res) => {
    if (req.path === '/login') return sendJson(res, 200, loginBody(WS_TOKEN));
    return sendCherryPyError(res, 404, `The path '${req.path}' was not found.`);
  });
  servers.push(server);
  const wss = new WebSocketServer({ noServer: true });
  const ready: string[] = [];
  server.server.on('upgrade', (req, socket, head) => {
    const m = /^\/all_events\/([0-9a-f]{64})$/.exec(req.url ?? '');
    if (!opts.ws || m === null || m[1] !== WS_TOKEN) {
      socket.end(`HTTP/1.1 ${opts.ws ? 401 : 404} No\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (msg) => {
        const text = (Array.isArray(msg) ? Buffer.concat(msg) : msg instanceof ArrayBuffer ? Buffer.from(msg) : msg).toString('utf8');
        ready.push(text);
        if (text === 'websocket client ready') {
          ws.send(JSON.stringify({ data: f.applyNewFromReactor.data, tag: f.applyNewFromReactor.tag }));
          ws.send(JSON.stringify({ data: f.applyRetOk.data, tag: f.applyRetOk.tag }));
        }
      });
    });
  });
  after(() => wss.close());
  return { server, wss, ready };
}

test('ws: auto mode prefers SSE even with a rest_tornado client (its websocket drops events that arrive back to back)', async () => {
  const t = await tornadoLike({ ws: true });
  const sse = await sseServer([
    (res) => {
      open(res);
      res.write(sseLine(f.applyNewFromReactor) + sseLine(f.applyRetOk));
    },
  ]);
  const s = stream({ client: client(sse.url), wsClient: client(t.server.url), mode: 'auto', pingIntervalMs: 0 });
  const got: string[] = [];
  s.onEvent((e) => got.push(e.tag));
  await s.start();
  await until(() => got.length === 2);
  assert.equal(s.transport, 'sse');
  assert.deepEqual(got, [f.applyNewFromReactor.tag, f.applyRetOk.tag]);
  assert.deepEqual(t.ready, [], 'the websocket was not opened');
  await s.stop();
});

test('ws: auto falls back to the websocket when SSE cannot be opened; says it is ready, reads events', async () => {
  const t = await tornadoLike({ ws: true });
  const sse = await sseServer([(res) => sendCherryPyError(res, 503, 'busy')]);
  const s = stream({ client: client(sse.url), wsClient: client(t.server.url), mode: 'auto', pingIntervalMs: 0 });
  const got: string[] = [];
  s.onEvent((e) => got.push(e.tag));
  await s.start();
  await until(() => got.length === 2);
  assert.equal(s.transport, 'ws');
  assert.deepEqual(t.ready, ['websocket client ready']);
  assert.deepEqual(got, [f.applyNewFromReactor.tag, f.applyRetOk.tag]);
  await s.stop();
});

test('ws: in auto a missing websocket endpoint (404) is not tried again; SSE once it answers; no token in logs', async () => {
  const t = await tornadoLike({ ws: false });
  const sse = await sseServer([
    (res) => sendCherryPyError(res, 503, 'busy'),
    (res) => {
      open(res);
      res.end(`retry: 5\n${sseLine(f.minionStart)}`);
    },
    (res) => {
      open(res);
      res.write(sseLine(f.published));
    },
  ]);
  const { logger, lines } = captureLogger();
  const s = stream({ client: client(sse.url, logger), wsClient: client(t.server.url, logger), mode: 'auto', logger });
  const got: string[] = [];
  s.onEvent((e) => got.push(e.tag));
  await s.start();
  await until(() => got.length === 2);
  assert.equal(s.transport, 'sse');
  assert.equal(lines.filter((l) => l.includes('websocket endpoint not available')).length, 1, 'tried once, in the round where SSE failed');
  for (const l of lines) {
    assert.ok(!l.includes(WS_TOKEN), `token in log: ${l}`);
    assert.ok(!l.includes(PASSWORD), `password in log: ${l}`);
  }
  await s.stop();
});

test('ws mode: a refused token is renewed on the next attempt', async () => {
  let logins = 0;
  const server = await startFakeSaltApi((req, res) => {
    if (req.path === '/login') return sendJson(res, 200, loginBody(logins++ === 0 ? 'b'.repeat(64) : WS_TOKEN));
    return sendCherryPyError(res, 404, 'nope');
  });
  servers.push(server);
  const wss = new WebSocketServer({ noServer: true });
  after(() => wss.close());
  server.server.on('upgrade', (req, socket, head) => {
    if (req.url !== `/all_events/${WS_TOKEN}`) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', () => ws.send(JSON.stringify({ tag: f.minionStart.tag, data: f.minionStart.data }))));
  });
  const s = stream({ client: client(server.url), mode: 'ws', pingIntervalMs: 0 });
  const got: string[] = [];
  s.onEvent((e) => got.push(e.tag));
  await s.start();
  await until(() => got.length === 1);
  assert.equal(logins, 2);
  await s.stop();
});

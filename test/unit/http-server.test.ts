// The bridge's HTTP server (src/http/server.ts) on a real socket: every guard in place, the
// bounds configured, a held publish released only with the token.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { HTTP_LIMITS, startHttp } from '../../src/http/server.ts';

const TOKEN = 'unit-test-token-0123456789';
let server: Server;
let port: number;
const releases: Array<[string, string | undefined]> = [];

before(async () => {
  server = await startHttp(
    { listen: '127.0.0.1:0', token: { reveal: () => TOKEN }, allowedHosts: ['bridge.example'] },
    {
      registry: new Registry(),
      notReady: () => [],
      status: () => ({ clusters: [] }),
      release: (cluster, digest) => {
        releases.push([cluster, digest]);
        return { released: cluster === 'held', message: cluster === 'held' ? `${cluster}: releasing held list` : `${cluster} has no held publish` };
      },
    },
  );
  port = (server.address() as { port: number }).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

interface Reply {
  status: number;
  body: string;
  headers: Record<string, unknown>;
}

function send(method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers }, setHost: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const json = { 'content-type': 'application/json' };
const auth = { authorization: `Bearer ${TOKEN}` };

describe('HTTP server guards', () => {
  it('GET endpoints answer with an IP literal, localhost or an allowed name in Host', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `bridge.example:${port}`, 'BRIDGE.example']) {
      const r = await send('GET', '/healthz', { host });
      assert.equal(r.status, 200, host);
    }
  });

  it('a foreign Host (DNS rebinding) is refused on every endpoint, before anything else', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/status', '/nope']) {
      const r = await send('GET', path, { host: `evil.example:${port}` });
      assert.equal(r.status, 421, path);
      assert.match(r.body, /host not allowed/);
    }
    const r = await send('POST', '/release?cluster=held', { host: 'rebind.evil.example', ...json, ...auth }, '{}');
    assert.equal(r.status, 421);
    assert.deepEqual(releases, [], 'nothing was released');
  });

  it('a POST with an Origin is refused (403), whatever it carries', async () => {
    const r = await send('POST', '/release?cluster=held', { origin: 'https://evil.example', ...json, ...auth }, '{}');
    assert.equal(r.status, 403);
    assert.match(r.body, /cross-origin/);
    assert.deepEqual(releases, []);
  });

  it('/release needs application/json (no simple CORS request reaches it)', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await send('POST', '/release?cluster=held', { 'content-type': type, ...auth }, 'cluster=held');
      assert.equal(r.status, 415, type);
    }
    assert.equal((await send('POST', '/release?cluster=held', auth)).status, 415, 'no content type');
    assert.deepEqual(releases, []);
  });

  it('/release needs the bearer token: none or a wrong one → 401 with WWW-Authenticate', async () => {
    const none = await send('POST', '/release?cluster=held', json, '{}');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const wrong = await send('POST', '/release?cluster=held', { ...json, authorization: 'Bearer not-the-token-at-all' }, '{}');
    assert.equal(wrong.status, 401);
    assert.doesNotMatch(wrong.body, /not-the-token|unit-test-token/);
    assert.deepEqual(releases, []);
  });

  it('with the token: released (200) or refused by the controller (409); parameters from the query or a JSON body', async () => {
    const ok = await send('POST', '/release?cluster=held&digest=sha256%3Aabc', { ...json, ...auth }, '{}');
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { released: true, message: 'held: releasing held list' });
    const viaBody = await send('POST', '/release', { ...json, ...auth }, JSON.stringify({ cluster: 'other' }));
    assert.equal(viaBody.status, 409);
    assert.deepEqual(releases, [
      ['held', 'sha256:abc'],
      ['other', undefined],
    ]);
    const missing = await send('POST', '/release', { ...json, ...auth }, '{}');
    assert.equal(missing.status, 400);
    const notJson = await send('POST', '/release?cluster=held', { ...json, ...auth }, 'cluster=held');
    assert.equal(notJson.status, 400);
    releases.length = 0;
  });

  it('a body over 4 KiB → 413, with Content-Length or chunked', async () => {
    const big = JSON.stringify({ cluster: 'held', pad: 'x'.repeat(HTTP_LIMITS.maxBodyBytes) });
    const declared = await send('POST', '/release', { ...json, ...auth, 'content-length': String(Buffer.byteLength(big)) }, big);
    assert.equal(declared.status, 413);
    const chunked = await send('POST', '/release', { ...json, ...auth, 'transfer-encoding': 'chunked' }, big);
    assert.equal(chunked.status, 413);
    const onGet = await send('GET', '/status', { 'content-length': String(big.length) }, big);
    assert.equal(onGet.status, 413);
    assert.deepEqual(releases, []);
  });

  it('GET /release and other methods elsewhere → 405', async () => {
    assert.equal((await send('GET', '/release?cluster=held')).status, 405);
    assert.equal((await send('DELETE', '/status')).status, 405);
  });

  it('HTTP/1.1 without Host is refused', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'));
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('utf8')));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
  });

  it('is bounded: connections, header count, header and request timeouts', () => {
    assert.equal(server.maxConnections, HTTP_LIMITS.maxConnections);
    assert.equal(server.maxHeadersCount, HTTP_LIMITS.maxHeadersCount);
    assert.equal(server.headersTimeout, HTTP_LIMITS.headersTimeoutMs);
    assert.equal(server.requestTimeout, HTTP_LIMITS.requestTimeoutMs);
    assert.ok(HTTP_LIMITS.maxConnections <= 64 && HTTP_LIMITS.headersTimeoutMs <= HTTP_LIMITS.requestTimeoutMs);
  });
});

describe('HTTP server without a token', () => {
  it('/release is disabled (403) and says how to enable it', async () => {
    const s = await startHttp('127.0.0.1:0', {
      registry: new Registry(),
      notReady: () => [],
      status: () => ({}),
      release: () => ({ released: true, message: 'x' }),
    });
    const p = (s.address() as { port: number }).port;
    try {
      const res = await fetch(`http://127.0.0.1:${p}/release?cluster=held`, {
        method: 'POST',
        headers: { ...json, authorization: 'Bearer anything-at-all-1234' },
        body: '{}',
      });
      assert.equal(res.status, 403);
      assert.match(await res.text(), /disabled: configure http\.tokenFile/);
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});

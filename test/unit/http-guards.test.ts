// Decision tables of the HTTP guards (src/http/guards.ts): Host, Origin, Content-Type, bearer token,
// Content-Length.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBearer, checkContentLength, checkHost, checkJsonContentType, checkOrigin, MAX_BODY_BYTES, type Verdict } from '../../src/http/guards.ts';

const code = (v: Verdict): number => (v.ok ? 200 : v.status);

describe('checkHost', () => {
  const allowed = new Set(['bridge.example', 'metrics.internal']);
  const table: Array<[string | undefined, number]> = [
    ['127.0.0.1:9540', 200],
    ['127.0.0.1', 200],
    ['10.1.2.3:80', 200],
    ['[::1]:9540', 200],
    ['[::1]', 200],
    ['[fd00::7]:9540', 200],
    ['localhost:9540', 200],
    ['LOCALHOST', 200],
    ['localhost.:9540', 200],
    ['bridge.example:9540', 200],
    ['Bridge.Example', 200],
    ['metrics.internal.', 200],
    ['evil.example', 421],
    ['evil.example:9540', 421],
    ['127.0.0.1.evil.example', 421],
    ['localhost.evil.example', 421],
    ['bridge.example.evil', 421],
    ['1.2.3', 421], // a name to a resolver, not an IPv4 literal
    ['0x7f.0.0.1', 421],
    ['2130706433', 421],
    ['::1', 400], // IPv6 without brackets is no valid Host
    ['[::1', 400],
    ['[evil.example]', 400],
    ['[127.0.0.1]', 400],
    ['127.0.0.1:99999', 400],
    ['127.0.0.1:', 400],
    ['bridge.example:9540:1', 400],
    ['user@127.0.0.1', 400],
    ['', 400],
    [undefined, 400],
  ];
  for (const [host, want] of table) it(`${JSON.stringify(host)} → ${want}`, () => assert.equal(code(checkHost(host, allowed)), want));
  it('no allowed names: only IP literals and localhost', () => {
    assert.equal(code(checkHost('bridge.example', new Set())), 421);
    assert.equal(code(checkHost('localhost', new Set())), 200);
  });
});

describe('checkOrigin', () => {
  const table: Array<[string, string | undefined, number]> = [
    ['POST', undefined, 200],
    ['POST', 'https://evil.example', 403],
    ['POST', 'null', 403],
    ['POST', 'http://127.0.0.1:9540', 403], // even "same origin": the CLI and curl send none
    ['PUT', 'https://evil.example', 403],
    ['DELETE', 'https://evil.example', 403],
    ['GET', 'https://evil.example', 200],
    ['HEAD', 'https://evil.example', 200],
  ];
  for (const [method, origin, want] of table) it(`${method} Origin ${origin} → ${want}`, () => assert.equal(code(checkOrigin(method, origin)), want));
});

describe('checkJsonContentType', () => {
  const table: Array<[string | undefined, number]> = [
    ['application/json', 200],
    ['application/json; charset=utf-8', 200],
    ['Application/JSON', 200],
    ['text/plain', 415],
    ['text/plain; charset=utf-8', 415],
    ['application/x-www-form-urlencoded', 415],
    ['multipart/form-data; boundary=x', 415],
    ['application/json-patch+json', 415],
    ['', 415],
    [undefined, 415],
  ];
  for (const [type, want] of table) it(`${JSON.stringify(type)} → ${want}`, () => assert.equal(code(checkJsonContentType(type)), want));
});

describe('checkBearer', () => {
  const token = 'tok-0123456789abcdef';
  const table: Array<[string | undefined, string | undefined, number]> = [
    [`Bearer ${token}`, token, 200],
    [`bearer ${token}`, token, 200],
    [`Bearer  ${token} `, token, 200],
    [`Bearer ${token}x`, token, 401],
    [`Bearer ${token.slice(0, -1)}`, token, 401],
    ['Bearer ', token, 401],
    [`Basic ${Buffer.from(`u:${token}`).toString('base64')}`, token, 401],
    [token, token, 401],
    [undefined, token, 401],
    [`Bearer ${token}`, undefined, 403],
    [undefined, undefined, 403],
  ];
  for (const [header, configured, want] of table) {
    it(`${JSON.stringify(header)} with ${configured ? 'a' : 'no'} token → ${want}`, () => assert.equal(code(checkBearer(header, configured)), want));
  }
  it('without a configured token the message says it is disabled and how to enable it', () => {
    const v = checkBearer(undefined, undefined);
    assert.ok(!v.ok && /disabled: configure http\.tokenFile/.test(v.message));
  });
  it('the refusal never repeats the token', () => {
    const v = checkBearer('Bearer wrong-token-value', token);
    assert.ok(!v.ok && !v.message.includes('wrong-token-value') && !v.message.includes(token));
  });
});

describe('checkContentLength', () => {
  const table: Array<[string | undefined, number]> = [
    [undefined, 200],
    ['0', 200],
    [String(MAX_BODY_BYTES), 200],
    [String(MAX_BODY_BYTES + 1), 413],
    ['99999999999', 413],
    ['-1', 400],
    ['1e3', 400],
  ];
  for (const [len, want] of table) it(`${JSON.stringify(len)} → ${want}`, () => assert.equal(code(checkContentLength(len)), want));
});

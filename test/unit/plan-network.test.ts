// Networks for clusters[].allowedNetworks: parsing (any prefix, no host bits) and containment.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalHost, formatNetwork, networkContains, parseNetwork, type IpNetwork } from '../../src/plan/index.ts';

const net = (text: string): IpNetwork => {
  const r = parseNetwork(text);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.reason}`);
  return r.network;
};

describe('parseNetwork', () => {
  const good: Array<[string, string]> = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.0.0.7', '10.0.0.7'],
    ['10.0.0.7/32', '10.0.0.7'],
    ['FD00::/8', 'fd00::/8'],
    ['::/0', '::/0'],
    ['2001:db8::1/128', '2001:db8::1'],
  ];
  for (const [text, canonical] of good) it(`accepts ${text}`, () => assert.equal(formatNetwork(net(text)), canonical));
  const bad: Array<[string, RegExp]> = [
    ['10.0.0.1/8', /host bits/],
    ['10.0.0.0/33', /prefix/],
    ['10.0.0.0/08', /prefix/],
    ['10.0.0.0/', /prefix/],
    ['fd00::/129', /prefix/],
    ['example.com/8', /not an IP/],
    ['', /not an IP/],
  ];
  for (const [text, why] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      const r = parseNetwork(text);
      assert.ok(!r.ok);
      assert.match(r.reason, why);
    });
  }
});

describe('networkContains', () => {
  const table: Array<[string, string, boolean]> = [
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.0.0.0/8', '10.244.0.0/16', true],
    ['10.244.0.0/16', '10.0.0.0/8', false],
    ['10.0.0.0/8', '10.0.0.0/8', true],
    ['10.0.0.0/31', '10.0.0.1', true],
    ['10.0.0.0/31', '10.0.0.2', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['10.0.0.0/8', 'fd00::1', false],
    ['fd00::/8', 'fdff:ffff::1', true],
    ['fd00::/8', 'fe00::1', false],
    ['2001:db8:1::/48', '2001:db8:1:ffff::1', true],
    ['2001:db8:1::/48', '2001:db8:2::1', false],
    ['fd00::9', 'fd00::9', true],
    ['fd00::9', 'fd00::8', false],
    ['10.128.0.0/9', '10.127.255.255', false],
    ['10.128.0.0/9', '10.128.0.0', true],
  ];
  for (const [outer, inner, want] of table) {
    it(`${inner} in ${outer}: ${want}`, () => assert.equal(networkContains(net(outer), net(inner)), want));
  }
});

describe('canonicalHost (node addresses)', () => {
  const table: Array<[string, string]> = [
    ['10.0.0.7', 'ok 10.0.0.7'],
    ['FD00::7', 'ok fd00::7'],
    ['10.0.0.7/32', 'not-host'],
    ['fd00::7/128', 'not-host'],
    ['198.51.0.0/16', 'not-host'],
    ['0.0.0.0/0', 'not-host'],
    ['10.0.0.0/99', 'not-host'],
    ['host.example/16', 'invalid'],
    ['10.0.0.256', 'invalid'],
    ['fe80::1%eth0', 'invalid'],
    ['', 'invalid'],
    ['x'.repeat(5000), 'invalid'],
    [`10.0.0.1/${'1'.repeat(5000)}`, 'invalid'],
  ];
  for (const [text, want] of table) {
    it(`${text.slice(0, 40)} → ${want}`, () => {
      const r = canonicalHost(text);
      assert.equal(r.ok ? `ok ${r.value}` : r.reason, want);
    });
  }
});

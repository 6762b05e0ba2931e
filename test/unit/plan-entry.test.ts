import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalEntry, formatIp, parseIp } from '../../src/plan/index.ts';

// Expected values printed by Python 3.11's ipaddress (str(ip_address(x))), the minions' reference.
const PYTHON_IPV6: ReadonlyArray<readonly [string, string]> = [
  ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
  ['2001:DB8::1', '2001:db8::1'],
  ['fd00:0:0:0:0:0:0:a', 'fd00::a'],
  ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ['1:0:2:0:3:0:4:0', '1:0:2:0:3:0:4:0'],
  ['0:0:1:0:0:0:0:0', '0:0:1::'],
  ['1::2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
  ['::1', '::1'],
  ['fe80::0001', 'fe80::1'],
  ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
  ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
  ['0:1:2:3:4:5:6:7', '0:1:2:3:4:5:6:7'],
  ['0:0:2:3:4:5:6:7', '::2:3:4:5:6:7'],
  ['1:2:3:4:5:6:0:0', '1:2:3:4:5:6::'],
  ['::1.2.3.4', '::102:304'],
  ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ['1:0:0:0:2:0:0:0', '1::2:0:0:0'],
  ['FFFF:ffff:ffff:ffff:ffff:ffff:ffff:fffe', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'],
  ['2001:db8:a::123', '2001:db8:a::123'],
  ['2001:db8::0:1', '2001:db8::1'],
];

describe('formatIp matches Python ipaddress', () => {
  for (const [input, expected] of PYTHON_IPV6) {
    it(`${input} → ${expected}`, () => {
      const ip = parseIp(input);
      assert.ok(ip);
      assert.equal(formatIp(ip), expected);
      // idempotent: the canonical form formats to itself
      assert.equal(formatIp(parseIp(expected)!), expected);
    });
  }
});

describe('canonicalEntry', () => {
  const accepted: ReadonlyArray<readonly [string, string, 'ipv4' | 'ipv6', string]> = [
    ['plain IPv4', '10.0.0.7', 'ipv4', '10.0.0.7'],
    ['IPv4 /32 is a host', '10.0.0.7/32', 'ipv4', '10.0.0.7'],
    ['IPv4 network', '10.244.0.0/16', 'ipv4', '10.244.0.0/16'],
    ['IPv4 /16 is the broadest', '10.244.0.0/16', 'ipv4', '10.244.0.0/16'],
    ['IPv6 /48 is the broadest', '2001:db8:1::/48', 'ipv6', '2001:db8:1::/48'],
    ['IPv6 upper case compressed', 'FD00:0:0::A', 'ipv6', 'fd00::a'],
    ['IPv6 /128 is a host', '2001:db8::1/128', 'ipv6', '2001:db8::1'],
    ['IPv6 network', '2001:DB8:0:0::/64', 'ipv6', '2001:db8::/64'],
    ['IPv6 loopback', '::1', 'ipv6', '::1'],
    ['IPv4 loopback', '127.0.0.1', 'ipv4', '127.0.0.1'],
  ];
  for (const [name, input, family, value] of accepted) {
    it(`accepts ${name}`, () => {
      assert.deepEqual(canonicalEntry(input), { ok: true, family, value });
      assert.deepEqual(canonicalEntry(value), { ok: true, family, value }, 'canonical form is a fixed point');
    });
  }

  const refused: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['empty', '', /empty/],
    ['hostname', 'node-1.example', /not an IP/],
    ['leading zeros (ambiguous octal)', '010.0.0.1', /not an IP/],
    ['short IPv4', '10.0.1', /not an IP/],
    ['octet > 255', '10.0.0.256', /not an IP/],
    ['IPv4-mapped IPv6', '::ffff:10.0.0.1', /IPv4-mapped/],
    ['IPv4-mapped IPv6, hex', '::ffff:a00:1', /IPv4-mapped/],
    ['zone index', 'fe80::1%eth0', /zone/],
    ['host bits set', '10.244.1.0/16', /host bits/],
    ['IPv4 wider than /16', '10.0.0.0/8', /too broad/],
    ['IPv6 wider than /48', '2001:db8::/32', /too broad/],
    ['IPv6 host bits set', '2001:db8::1/64', /host bits/],
    ['prefix too long', '10.0.0.0/33', /above \/32/],
    ['prefix too broad', '0.0.0.0/0', /too broad/],
    ['IPv6 prefix too broad', '::/0', /too broad/],
    ['prefix with leading zero', '10.0.0.0/08', /bad prefix/],
    ['two slashes', '10.0.0.0/8/8', /bad prefix/],
    ['unspecified IPv4', '0.0.0.0', /unspecified/],
    ['unspecified IPv6', '::', /unspecified/],
    ['multicast', '224.0.0.1', /multicast/],
    ['IPv6 multicast', 'ff02::1', /multicast/],
    ['broadcast', '255.255.255.255', /broadcast/],
    ['whitespace', ' 10.0.0.1', /not an IP/],
  ];
  for (const [name, input, reason] of refused) {
    it(`refuses ${name}`, () => {
      const r = canonicalEntry(input);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, reason);
    });
  }
});

// Label selector parser (src/config/selector.ts): what the kube-apiserver accepts is accepted,
// what it refuses is refused at config load with a reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLabelSelector, type Requirement } from '../../src/config/selector.ts';

const req = (key: string, operator: Requirement['operator'], ...values: string[]): Requirement => ({ key, operator, values });

const GOOD: Array<[string, Requirement[]]> = [
  ['', []],
  ['   ', []],
  ['app=web', [req('app', '=', 'web')]],
  ['app==web', [req('app', '==', 'web')]],
  ['app!=web', [req('app', '!=', 'web')]],
  ['app = web , tier != db', [req('app', '=', 'web'), req('tier', '!=', 'db')]],
  ['x=', [req('x', '=', '')]],
  ['x= ,z= ', [req('x', '=', ''), req('z', '=', '')]],
  ['app', [req('app', 'exists')]],
  ['!app', [req('app', '!exists')]],
  ['! app', [req('app', '!exists')]],
  ['node-role.kubernetes.io/worker', [req('node-role.kubernetes.io/worker', 'exists')]],
  ['example.com/Pool_1.a-b=Blue.2', [req('example.com/Pool_1.a-b', '=', 'Blue.2')]],
  ['env in (prod,staging)', [req('env', 'in', 'prod', 'staging')]],
  ['env in (staging, prod, prod)', [req('env', 'in', 'prod', 'staging')]],
  ['env notin (dev)', [req('env', 'notin', 'dev')]],
  ['env in ()', [req('env', 'in', '')]],
  ['env in (a,)', [req('env', 'in', '', 'a')]],
  ['env in (in,notin)', [req('env', 'in', 'in', 'notin')]],
  ['in=notin', [req('in', '=', 'notin')]],
  ['x>1,z<5', [req('x', '>', '1'), req('z', '<', '5')]],
  ['a,!b,c in (d),e!=f', [req('a', 'exists'), req('b', '!exists'), req('c', 'in', 'd'), req('e', '!=', 'f')]],
  [`k=${'v'.repeat(63)}`, [req('k', '=', 'v'.repeat(63))]],
  [`${'p'.repeat(253)}/${'n'.repeat(63)}`, [req(`${'p'.repeat(253)}/${'n'.repeat(63)}`, 'exists')]],
];

const BAD: Array<[string, RegExp]> = [
  ['app in (a,b', /missing '\)'/],
  ['=web', /found '=', expected: identifier/],
  ['app notin', /found '' after 'notin', expected: '\('/],
  ['a b c', /found 'b' after "a", expected: =, ==, !=/],
  ['x=a||y=b', /invalid value "a\|\|y" for "x"/],
  ['x==a==b', /found '==', expected: ',' or end of string/],
  ['!x=a', /expected: ',' or end of string after '!x'/],
  ['x<a', /must be an integer/],
  ['app,', /expected: identifier after ','/],
  [',app', /found ',', expected: identifier/],
  ['app in (a b)', /found 'b', expected: ',' or '\)'/],
  ['app in a', /expected: '\('/],
  ['app=(a)', /found '\(', expected: identifier/],
  ['-app=x', /invalid label key "-app"/],
  ['app-=x', /invalid label key "app-"/],
  ['a/b/c', /at most one "\/"/],
  ['/name', /prefix before "\/" must not be empty/],
  ['Example.com/name', /prefix must be a DNS subdomain/],
  [`${'n'.repeat(64)}`, /at most 63/],
  [`${'p'.repeat(254)}/n`, /at most 253/],
  ['app=-web', /invalid value "-web" for "app"/],
  [`app=${'v'.repeat(64)}`, /at most 63/],
  ['app=we$b', /invalid value "we\$b"/],
  ['app in (ok,-bad)', /invalid value "-bad"/],
  ['app=a b', /found 'b', expected: ',' or end of string/],
  ['app!', /found '!'/],
];

describe('parseLabelSelector: accepted like the apiserver', () => {
  for (const [text, want] of GOOD) {
    it(JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text), () => {
      const r = parseLabelSelector(text);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.deepEqual(r.requirements, want);
    });
  }
});

describe('parseLabelSelector: refused with a reason', () => {
  for (const [text, why] of BAD) {
    it(JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text), () => {
      const r = parseLabelSelector(text);
      assert.ok(!r.ok, `accepted: ${JSON.stringify(r)}`);
      assert.match(r.reason, why);
    });
  }
});

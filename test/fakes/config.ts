// Configuration for unit tests: a validated Config whose one kubeconfig names an unreachable
// server (the controller tests drive a fake node source), and the check that a load is refused.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigIssuesError, validate, type Config } from '../../src/config/index.ts';

/**
 * Writes `dir`/kc.yaml and validates `doc(<that path>)` as if read from `dir`/config.yaml, with the
 * salt-api password and `signingKey` from the environment.
 */
export function unitConfig(dir: string, signingKey: string, doc: (kubeconfig: string) => Record<string, unknown>): Config {
  const kc = join(dir, 'kc.yaml');
  writeFileSync(
    kc,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'c',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'u', user: { token: 'x' } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
    }),
  );
  return validate(doc(kc), { source: join(dir, 'config.yaml'), env: { KSB_SALT_API_PASSWORD: 'pw', KSB_SIGNING_KEY: signingKey }, hostname: 'h' });
}

/** A config file's document before validation: the tests set fields to values of any type, valid or not. */
export type ConfigFields = Record<string, unknown>;
export interface ConfigDoc {
  salt: ConfigFields;
  signing: ConfigFields;
  clusters: [ConfigFields, ...ConfigFields[]];
  [section: string]: unknown;
}

/** The ConfigIssuesError `fn` throws; fails when it throws anything else or nothing. */
export function issuesOf(fn: () => unknown): ConfigIssuesError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigIssuesError, `expected ConfigIssuesError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

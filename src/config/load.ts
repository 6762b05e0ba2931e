// loadConfig: the one place configuration is read and validated (CONTRIBUTING.md habit 5).
// YAML file → environment overrides → zod (shape, defaults, per-field checks) → cross-field checks
// and secrets → one deeply frozen Config. Every problem is reported at once in one ConfigError.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.ts';
import { assemble } from './checks.ts';
import { expandCredentialPaths } from './credentials.ts';
import { applyEnv, type Env } from './env.ts';
import { deepFreeze } from './freeze.ts';
import { ConfigIssuesError, fromZod, type Issue } from './issues.ts';
import { configSchema } from './schema.ts';
import type { Config } from './types.ts';

/** Fields that must never hold a secret inline; the value is the field to use instead. */
const INLINE_SECRETS: ReadonlyArray<readonly [string, string, string]> = [
  ['salt', 'password', 'salt.passwordFile (or KSB_SALT_API_PASSWORD)'],
  ['salt', 'token', 'salt.passwordFile (or KSB_SALT_API_PASSWORD)'],
  ['signing', 'key', 'signing.keyFile (or KSB_SIGNING_KEY)'],
  ['http', 'token', 'http.tokenFile (or KSB_HTTP_TOKEN_FILE)'],
];

export interface LoadOptions {
  /** Defaults to os.hostname(); the default leader-election identity. */
  readonly hostname?: string;
}

/** Reads and validates the config; throws ConfigError (main.ts exits 2) naming every bad field. */
export function loadConfig(path: string, env: Env = process.env, options: LoadOptions = {}): Config {
  const source = resolve(path);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${source}: ${(err as Error).message}`, { cause: err });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigIssuesError(doc.errors.map((e) => ({ path: 'config', message: `${source}: ${e.message}` })));
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || raw === undefined) throw new ConfigError('config', `${source} is empty`);
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('config', `${source} must hold a mapping`);
  return validate(raw as Record<string, unknown>, { source, env, hostname: options.hostname ?? hostname() });
}

/** Validates an already parsed document (exported for tests and `check`). */
export function validate(raw: Record<string, unknown>, ctx: { readonly source: string; readonly env: Env; readonly hostname: string }): Config {
  raw = structuredClone(raw);
  const credentials = expandCredentialPaths(raw, ctx.env);
  // A credential that could not be resolved is reported once, not again as a missing file.
  const unresolved = new Set(credentials.map((i) => i.path));
  const fresh = (list: Issue[]): Issue[] => list.filter((i) => !unresolved.has(i.path));
  const issues: Issue[] = [...refuseInlineSecrets(raw), ...refuseRemovedFields(raw), ...credentials];
  const envSources = applyEnv(raw, ctx.env);
  const parsed = configSchema(dirname(ctx.source)).safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigIssuesError([...issues, ...fresh(fromZod(parsed.error.issues, envSources))]);
  const { config, issues: more } = assemble(parsed.data, {
    source: ctx.source,
    baseDir: dirname(ctx.source),
    env: ctx.env,
    envSources,
    hostname: ctx.hostname,
  });
  issues.push(...fresh(more));
  if (issues.length > 0) throw new ConfigIssuesError(issues);
  return deepFreeze(config);
}

/**
 * Fields an older version accepted whose meaning is gone: refused with what to do instead (and
 * removed, so that the schema does not also call them unknown).
 */
function refuseRemovedFields(raw: Record<string, unknown>): Issue[] {
  const issues: Issue[] = [];
  const clusters = raw.clusters;
  if (!Array.isArray(clusters)) return issues;
  clusters.forEach((c: unknown, i) => {
    if (c === null || typeof c !== 'object' || !('target' in c)) return;
    const name = (c as { name?: unknown }).name;
    const example = typeof name === 'string' && name !== '' ? name : '<name>';
    issues.push({
      path: `clusters[${i}].target`,
      message:
        `no longer supported: the reactor always targets I@kube_allowlist:clusters:${example} (the minions whose pillar ` +
        `names the cluster) and never takes a target from the event; remove the field and list the cluster in the pillar ` +
        `kube_allowlist:clusters of exactly the minions that should apply it`,
    });
    delete (c as Record<string, unknown>).target;
  });
  return issues;
}

function refuseInlineSecrets(raw: Record<string, unknown>): Issue[] {
  const issues: Issue[] = [];
  for (const [section, key, instead] of INLINE_SECRETS) {
    const obj = raw[section];
    if (obj === null || typeof obj !== 'object' || !(key in obj)) continue;
    issues.push({ path: `${section}.${key}`, message: `secrets are never written in the config file; use ${instead}` });
    delete (obj as Record<string, unknown>)[key];
  }
  return issues;
}

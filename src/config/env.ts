// Environment overrides. Each variable replaces one field of the YAML file before validation, so
// it is validated exactly like the file (errors name the field and the variable). An empty
// variable counts as unset. Relative paths in variables are resolved against the working directory.

import { resolve } from 'node:path';

export type Env = Readonly<Record<string, string | undefined>>;

type Kind = 'string' | 'path' | 'bool';

/** Variable → field. Documented in examples/config.yaml and README. */
export const ENV_OVERRIDES: Readonly<Record<string, { readonly path: readonly string[]; readonly kind: Kind }>> = Object.freeze({
  KSB_SALT_API_URL: { path: ['salt', 'url'], kind: 'string' },
  KSB_SALT_API_USERNAME: { path: ['salt', 'username'], kind: 'string' },
  KSB_SALT_API_PASSWORD_FILE: { path: ['salt', 'passwordFile'], kind: 'path' },
  KSB_SALT_API_EAUTH: { path: ['salt', 'eauth'], kind: 'string' },
  KSB_SALT_API_CA_FILE: { path: ['salt', 'caFile'], kind: 'path' },
  KSB_SIGNING_KEY_FILE: { path: ['signing', 'keyFile'], kind: 'path' },
  KSB_STATE_DIR: { path: ['state', 'dir'], kind: 'path' },
  KSB_HTTP_LISTEN: { path: ['http', 'listen'], kind: 'string' },
  KSB_HTTP_TOKEN_FILE: { path: ['http', 'tokenFile'], kind: 'path' },
  KSB_LOG_LEVEL: { path: ['log', 'level'], kind: 'string' },
  KSB_LEADER_ELECTION_ENABLED: { path: ['leaderElection', 'enabled'], kind: 'bool' },
  KSB_LEADER_ELECTION_IDENTITY: { path: ['leaderElection', 'identity'], kind: 'string' },
  KSB_LEADER_ELECTION_NAMESPACE: { path: ['leaderElection', 'namespace'], kind: 'string' },
});

/** Secret values given directly in the environment (they win over the corresponding *_FILE). */
export const ENV_SALT_PASSWORD = 'KSB_SALT_API_PASSWORD';
export const ENV_SIGNING_KEY = 'KSB_SIGNING_KEY';

export function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** Writes the overrides into `raw` (a parsed YAML mapping); returns dotted field → variable name. */
export function applyEnv(raw: Record<string, unknown>, env: Env): Map<string, string> {
  const sources = new Map<string, string>();
  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    const text = envValue(env, name);
    if (text === undefined) continue;
    let node: Record<string, unknown> = raw;
    const parents = spec.path.slice(0, -1);
    let ok = true;
    for (const key of parents) {
      const child = node[key] ?? {};
      if (typeof child !== 'object' || child === null || Array.isArray(child)) {
        ok = false;
        break;
      }
      node[key] = child;
      node = child as Record<string, unknown>;
    }
    if (!ok) continue;
    node[spec.path[spec.path.length - 1] as string] = convert(text, spec.kind);
    sources.set(spec.path.join('.'), name);
  }
  return sources;
}

function convert(text: string, kind: Kind): unknown {
  switch (kind) {
    case 'path':
      return resolve(text);
    case 'bool':
      if (/^(true|1|yes)$/i.test(text)) return true;
      if (/^(false|0|no)$/i.test(text)) return false;
      return text;
    default:
      return text;
  }
}

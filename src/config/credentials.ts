// systemd credentials (LoadCredential=, LoadCredentialEncrypted=, SetCredential=): systemd puts each
// one in a private directory named by $CREDENTIALS_DIRECTORY, readable by the service only — the
// unit-file counterpart of a Kubernetes Secret volume. A file field of the YAML names one as
// `${CREDENTIALS_DIRECTORY}/<credential name>`; the directory is taken from the environment when
// the config is loaded. Nothing else is expanded: the secret itself still never sits in the YAML.

import { isAbsolute, join } from 'node:path';
import { ENV_OVERRIDES, envValue, type Env } from './env.ts';
import type { Issue } from './issues.ts';

export const CREDENTIALS_VARIABLE = 'CREDENTIALS_DIRECTORY';
const PREFIX = '${' + CREDENTIALS_VARIABLE + '}/';
/** systemd's credential names: a file name (no "/", not "." or ".."), at most 255 bytes. */
const CREDENTIAL_NAME = /^(?!\.{1,2}$)[^/\0]{1,255}$/;

/** The file fields that may name a credential (secrets, and the files that identify a peer). */
function credentialFields(raw: Record<string, unknown>): Array<{ path: string; owner: Record<string, unknown>; key: string }> {
  const fields: Array<{ path: string; owner: Record<string, unknown>; key: string }> = [];
  const section = (name: string): Record<string, unknown> | undefined => {
    const v = raw[name];
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  };
  const add = (owner: Record<string, unknown> | undefined, key: string, path: string): void => {
    if (owner !== undefined && typeof owner[key] === 'string') fields.push({ path, owner, key });
  };
  add(section('salt'), 'passwordFile', 'salt.passwordFile');
  add(section('salt'), 'caFile', 'salt.caFile');
  add(section('signing'), 'keyFile', 'signing.keyFile');
  add(section('http'), 'tokenFile', 'http.tokenFile');
  if (Array.isArray(raw.clusters)) {
    raw.clusters.forEach((c: unknown, i) => {
      if (c !== null && typeof c === 'object' && !Array.isArray(c)) add(c as Record<string, unknown>, 'kubeconfig', `clusters[${i}].kubeconfig`);
    });
  }
  return fields;
}

/**
 * Replaces `${CREDENTIALS_DIRECTORY}/<name>` in the file fields of a parsed YAML document (in
 * place) by the credential's path; environment overrides are literal paths (in a unit, systemd's
 * own `%d` names the directory: `Environment=KSB_SIGNING_KEY_FILE=%d/signing-key`). Returns an issue per field that names a credential it cannot
 * have: the variable unset or not absolute, or the reference not of that one form.
 */
export function expandCredentialPaths(raw: Record<string, unknown>, env: Env): Issue[] {
  const issues: Issue[] = [];
  const dir = envValue(env, CREDENTIALS_VARIABLE);
  // A field an environment variable replaces (KSB_SALT_API_PASSWORD_FILE, ...) is not read from the YAML.
  const overridden = new Set(
    Object.entries(ENV_OVERRIDES)
      .filter(([name]) => envValue(env, name) !== undefined)
      .map(([, o]) => o.path.join('.')),
  );
  for (const { path, owner, key } of credentialFields(raw)) {
    if (overridden.has(path)) continue;
    const value = owner[key] as string;
    if (value.startsWith('%d/')) {
      issues.push({ path, message: `"%d" is expanded in unit files only; here write ${PREFIX}${value.slice(3)}` });
      continue;
    }
    if (!value.includes(CREDENTIALS_VARIABLE)) continue;
    const name = value.startsWith(PREFIX) ? value.slice(PREFIX.length) : undefined;
    if (name === undefined || !CREDENTIAL_NAME.test(name)) {
      issues.push({ path, message: `a systemd credential is written ${PREFIX}<name>, with a credential name (no "/") after it` });
      continue;
    }
    if (dir === undefined) {
      issues.push({
        path,
        message:
          `names the systemd credential "${name}" but $${CREDENTIALS_VARIABLE} is not set: run the bridge from a unit ` +
          `with LoadCredential=${name}:<file> (deploy/systemd/kube-salt-bridge.service), or set ${CREDENTIALS_VARIABLE} to the ` +
          'directory holding the credential files',
      });
      continue;
    }
    if (!isAbsolute(dir)) {
      issues.push({ path, message: `$${CREDENTIALS_VARIABLE} must be an absolute path, not "${dir}"` });
      continue;
    }
    owner[key] = join(dir, name);
  }
  return issues;
}

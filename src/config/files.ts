// The filesystem checks of config validation: paths must exist and be readable when the bridge
// starts (no silent fallback, e.g. client-node's localhost:8080), secrets are read from files.

import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';

const MAX_SECRET_BYTES = 64 * 1024;

/** Resolves `p` against `baseDir` and returns why it cannot be read, or undefined when it can. */
export function unreadableFile(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (!st.isFile()) return `not a regular file: ${path}`;
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `file not found: ${path}`;
    if (code === 'EACCES') return `file not readable: ${path}`;
    return `cannot use ${path}: ${(err as Error).message}`;
  }
}

export function absolutePath(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

export type SecretRead = { ok: true; value: string; worldReadable: boolean } | { ok: false; reason: string };
export type SecretBytes = { ok: true; bytes: Buffer; worldReadable: boolean } | { ok: false; reason: string };

/** Reads a secret file (a mounted Kubernetes Secret): one trailing newline stripped, never empty. */
export function readSecretFile(path: string): SecretRead {
  const r = readSecretBytes(path);
  if (!r.ok) return r;
  const value = stripOneNewline(r.bytes.toString('utf8'));
  if (value.length === 0) return { ok: false, reason: `empty secret file: ${path}` };
  return { ok: true, value, worldReadable: r.worldReadable };
}

/** A secret file's bytes as they are (key files are parsed, never decoded with replacement characters). */
export function readSecretBytes(path: string): SecretBytes {
  const why = unreadableFile(path);
  if (why !== undefined) return { ok: false, reason: why };
  try {
    const st = statSync(path);
    if (st.size > MAX_SECRET_BYTES) return { ok: false, reason: `larger than ${MAX_SECRET_BYTES} bytes: ${path}` };
    return { ok: true, bytes: readFileSync(path), worldReadable: (st.mode & 0o004) !== 0 };
  } catch (err) {
    return { ok: false, reason: `cannot read ${path}: ${(err as Error).message}` };
  }
}

export function stripOneNewline(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

/**
 * Checks that a kubeconfig parses and names the context to use: `context` when given, otherwise
 * its current-context. Returns why not, or undefined.
 */
export function kubeconfigProblem(path: string, context: string | undefined): { field: 'kubeconfig' | 'context'; reason: string } | undefined {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return { field: 'kubeconfig', reason: `not a valid kubeconfig (${(err as Error).message.split('\n')[0]}): ${path}` };
  }
  if (doc === null || typeof doc !== 'object') return { field: 'kubeconfig', reason: `not a kubeconfig mapping: ${path}` };
  const kc = doc as { contexts?: unknown; 'current-context'?: unknown };
  const names = Array.isArray(kc.contexts) ? kc.contexts.map((c) => (c !== null && typeof c === 'object' ? (c as { name?: unknown }).name : undefined)) : [];
  if (context !== undefined) {
    return names.includes(context) ? undefined : { field: 'context', reason: `context "${context}" not found in ${path}` };
  }
  const current = kc['current-context'];
  if (typeof current !== 'string' || current === '') {
    return { field: 'context', reason: `${path} has no current-context; set context` };
  }
  return names.includes(current) ? undefined : { field: 'kubeconfig', reason: `current-context "${current}" not found in ${path}` };
}

// Config problems as data: a dotted field path (`clusters[1].kubeconfig`) and a reason. All of them
// are collected and thrown as one ConfigError whose message has one "field: reason" line each.

import type { z } from 'zod';
import { ConfigError } from '../errors.ts';

export interface Issue {
  readonly path: string;
  readonly message: string;
}

/** ['clusters', 1, 'kubeconfig'] → 'clusters[1].kubeconfig'. */
export function formatPath(segments: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? String(s) : `.${String(s)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Every problem found in one config, all at once. `field` is the first one's path. */
export class ConfigIssuesError extends ConfigError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[]) {
    const [first, ...rest] = issues;
    if (first === undefined) throw new TypeError('ConfigIssuesError needs at least one issue');
    const lines = [first.message, ...rest.map((i) => `${i.path}: ${i.message}`)];
    super(first.path, lines.join('\n'));
    this.issues = issues;
  }
}

/** Converts zod's issues; `envSources` maps a dotted path to the environment variable that set it. */
export function fromZod(issues: readonly z.core.$ZodIssue[], envSources: ReadonlyMap<string, string>): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({ path: formatPath([...issue.path, key]), message: 'unknown field' });
      }
      continue;
    }
    const path = formatPath(issue.path);
    out.push({ path, message: withEnv(path, describe(issue), envSources) });
  }
  return out;
}

export function withEnv(path: string, message: string, envSources: ReadonlyMap<string, string>): string {
  const env = envSources.get(path);
  return env === undefined ? message : `${message} (value from ${env})`;
}

function describe(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'required' : `expected ${issue.expected}, got ${typeName(issue.input)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `must have at least ${String(issue.minimum)} item(s)`
        : issue.origin === 'string'
          ? issue.minimum === 1
            ? 'must not be empty'
            : `must be at least ${String(issue.minimum)} characters`
          : `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return issue.origin === 'array'
        ? `must have at most ${String(issue.maximum)} item(s)`
        : issue.origin === 'string'
          ? `must be at most ${String(issue.maximum)} characters`
          : `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  return typeof v;
}

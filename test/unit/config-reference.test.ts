// README's configuration reference is checked against the schema itself: the field paths, types,
// defaults, limits and environment variables are read by walking the zod schema of
// src/config/schema.ts (no list of fields here), so a field added to the schema without a row in
// the README's table, or a row whose field or default the schema does not have, fails this test.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ConfigIssuesError, ENV_OVERRIDES, ENV_SALT_PASSWORD, ENV_SIGNING_KEY, validate } from '../../src/config/index.ts';
import { configSchema } from '../../src/config/schema.ts';

// ---- the schema, walked --------------------------------------------------------------------

/** The part of zod 4's schema definitions this walk reads. */
interface ZodNode {
  readonly _zod: { readonly def: ZodDef };
}
interface ZodDef {
  readonly type: string;
  readonly innerType?: ZodNode;
  readonly in?: ZodNode;
  readonly shape?: Readonly<Record<string, ZodNode>>;
  readonly element?: ZodNode;
  readonly entries?: Readonly<Record<string, string>>;
  readonly defaultValue?: unknown;
  readonly checks?: ReadonlyArray<{ readonly _zod: { readonly def: CheckDef } }>;
}
interface CheckDef {
  readonly check: string;
  readonly value?: number;
  readonly inclusive?: boolean;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly format?: string;
}

type Kind = 'boolean' | 'integer' | 'number' | 'enum' | 'list' | 'string' | 'other';

interface SchemaField {
  /** `salt.url`, `clusters[].safety.minNodes`. */
  readonly path: string;
  readonly kind: Kind;
  /** Enum values (of the field, or of a list's items). */
  readonly options?: readonly string[];
  readonly required: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue?: unknown;
  readonly min?: number;
  readonly max?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
}

interface Wrapping {
  readonly optional: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue?: unknown;
}

const BARE: Wrapping = { optional: false, hasDefault: false };

/** Strips optional/default/prefault/pipe (its input side) and notes what they said. */
function unwrap(node: ZodNode, w: Wrapping = BARE): { node: ZodNode; w: Wrapping } {
  const d = node._zod.def;
  switch (d.type) {
    case 'optional':
      return unwrap(d.innerType!, { ...w, optional: true });
    case 'default':
      // The outermost default is the one a missing field gets.
      return unwrap(d.innerType!, w.hasDefault ? w : { ...w, hasDefault: true, defaultValue: d.defaultValue });
    case 'prefault':
      return unwrap(d.innerType!, { ...w, optional: true });
    case 'pipe':
      return unwrap(d.in!, w);
    default:
      return { node, w };
  }
}

function checksOf(node: ZodNode): CheckDef[] {
  return (node._zod.def.checks ?? []).map((c) => c._zod.def);
}

function leaf(path: string, node: ZodNode, w: Wrapping): SchemaField {
  const d = node._zod.def;
  const checks = checksOf(node);
  let kind: Kind;
  let options: string[] | undefined;
  if (d.type === 'boolean') kind = 'boolean';
  else if (d.type === 'number') kind = checks.some((c) => c.check === 'number_format' && c.format === 'safeint') ? 'integer' : 'number';
  else if (d.type === 'enum') {
    kind = 'enum';
    options = Object.values(d.entries ?? {});
  } else if (d.type === 'array') {
    kind = 'list';
    const item = unwrap(d.element!).node._zod.def;
    if (item.type === 'enum') options = Object.values(item.entries ?? {});
  } else if (d.type === 'string') kind = 'string';
  else kind = 'other';
  const num = (name: 'greater_than' | 'less_than'): number | undefined => checks.find((c) => c.check === name && c.inclusive === true)?.value;
  return {
    path,
    kind,
    options,
    required: !w.optional && !w.hasDefault,
    hasDefault: w.hasDefault,
    defaultValue: w.defaultValue,
    min: num('greater_than'),
    max: num('less_than'),
    minLength: checks.find((c) => c.check === 'min_length')?.minimum,
    maxLength: checks.find((c) => c.check === 'max_length')?.maximum,
  };
}

/**
 * Every field of the schema: objects are sections (their members are the fields), a list of
 * objects is a field and its items' members are fields too (`clusters[].name`).
 */
function schemaFields(root: ZodNode): { fields: SchemaField[]; sections: string[] } {
  const fields: SchemaField[] = [];
  const sections: string[] = [];
  const walk = (path: string, raw: ZodNode): void => {
    const { node, w } = unwrap(raw);
    const d = node._zod.def;
    if (d.type === 'object') {
      if (path !== '') sections.push(path);
      for (const [key, child] of Object.entries(d.shape ?? {})) walk(path === '' ? key : `${path}.${key}`, child);
      return;
    }
    fields.push(leaf(path, node, w));
    if (d.type === 'array' && unwrap(d.element!).node._zod.def.type === 'object') walk(`${path}[]`, d.element!);
  };
  walk('', root);
  return { fields, sections: [...new Set(sections)] };
}

// ---- the README, read ------------------------------------------------------------------------

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The text of a `### title` section up to the next heading of level 1 to 3. */
function section(text: string, title: string): string {
  const start = text.indexOf(`\n### ${title}\n`);
  assert.ok(start >= 0, `README has a "### ${title}" section`);
  const rest = text.slice(start + 1);
  const end = rest.slice(4).search(/\n#{1,3} /);
  return end < 0 ? rest : rest.slice(0, end + 4);
}

/** The cells of a Markdown table row (`\|` inside a cell is not a separator). */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replaceAll('\\|', '|'));
}

const codeSpans = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

interface Row {
  readonly field: string;
  readonly type: string;
  readonly default: string;
  readonly notes: string;
  readonly env: string;
}

/** The reference table of the Configuration section: one row per field. */
function referenceRows(): Row[] {
  const lines = section(README, 'Configuration').split('\n');
  const head = lines.findIndex((l) => /^\|\s*field\s*\|/.test(l));
  assert.ok(head >= 0, 'the Configuration section has a table whose first column is "field"');
  const names = cells(lines[head]!);
  const col = (name: string): number => {
    const i = names.indexOf(name);
    assert.ok(i >= 0, `the reference table has a "${name}" column (has: ${names.join(', ')})`);
    return i;
  };
  const [f, t, d, n, e] = [col('field'), col('type'), col('default'), col('limits and notes'), col('env')];
  const rows: Row[] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const c = cells(line);
    const field = /^`([^`]+)`$/.exec(c[f] ?? '');
    assert.ok(field, `a reference row names its field as one code span: ${line}`);
    rows.push({ field: field[1]!, type: c[t] ?? '', default: c[d] ?? '', notes: c[n] ?? '', env: c[e] ?? '' });
  }
  return rows;
}

// ---- the comparison ---------------------------------------------------------------------------

/** Secrets given in the environment replace their file field (src/config/checks.ts). */
const DIRECT_SECRETS: Readonly<Record<string, string>> = { [ENV_SALT_PASSWORD]: 'salt.passwordFile', [ENV_SIGNING_KEY]: 'signing.keyFile' };

function expectedEnv(path: string): string[] {
  const names = Object.entries(ENV_OVERRIDES)
    .filter(([, o]) => o.path.join('.') === path)
    .map(([name]) => name);
  for (const [name, field] of Object.entries(DIRECT_SECRETS)) if (field === path) names.push(name);
  return names.sort();
}

/** What is wrong with one row, as messages naming the field (empty: it matches the schema). */
function rowProblems(s: SchemaField, r: Row): string[] {
  const problems: string[] = [];
  const say = (what: string): void => void problems.push(`${s.path}: ${what}`);

  // default
  if (s.hasDefault) {
    const span = /^`([^`]+)`/.exec(r.default);
    if (span === null) say(`the schema's default is ${JSON.stringify(s.defaultValue)}; the README's default column says "${r.default}"`);
    else {
      let documented: unknown;
      try {
        documented = parse(span[1]!);
      } catch {
        documented = span[1];
      }
      try {
        assert.deepStrictEqual(documented, s.defaultValue);
      } catch {
        say(`documented default \`${span[1]}\` (${JSON.stringify(documented)}) is not the schema's ${JSON.stringify(s.defaultValue)}`);
      }
    }
  } else if (s.required) {
    if (r.default !== '**required**') say(`required by the schema; the README's default column says "${r.default}", not **required**`);
  } else if (!r.default.startsWith('unset')) {
    say(`optional without a default in the schema; the README's default column says "${r.default}", not "unset ..."`);
  }

  // type
  const words: Record<string, Kind> = { boolean: 'boolean', integer: 'integer', number: 'number' };
  if (s.kind in words) {
    if (r.type !== s.kind) say(`the schema's type is ${s.kind}; the README says "${r.type}"`);
  } else if (words[r.type] !== undefined) {
    say(`the README says ${r.type}, the schema's type is ${s.kind}`);
  }
  if (s.kind === 'list' && !r.type.startsWith('list')) say(`the schema's type is a list; the README says "${r.type}"`);
  if (s.options !== undefined) {
    const documented = codeSpans(r.type).sort();
    if (documented.join() !== [...s.options].sort().join())
      say(`values ${s.options.join(', ')} in the schema; the README lists ${documented.join(', ') || 'none'}`);
  }

  // limits
  if (s.min !== undefined && s.max !== undefined && !r.notes.includes(`\`${s.min}..${s.max}\``)) {
    say(`the schema's range is ${s.min}..${s.max}; the notes do not say \`${s.min}..${s.max}\``);
  } else if ((s.min === undefined) !== (s.max === undefined)) {
    say('a range with one bound only: document it, and teach this test how');
  }
  if (s.maxLength !== undefined && !r.notes.includes(`at most ${s.maxLength}`))
    say(`the schema allows at most ${s.maxLength}; the notes do not say "at most ${s.maxLength}"`);
  // A non-empty string (min length 1) goes without saying; any other lower bound is documented.
  const saysMin = s.minLength !== undefined && (s.kind === 'list' || s.minLength > 1);
  if (saysMin && !r.notes.includes(`at least ${s.minLength}`)) say(`the schema needs at least ${s.minLength}; the notes do not say "at least ${s.minLength}"`);

  // environment
  const env = codeSpans(r.env)
    .filter((x) => x.startsWith('KSB_'))
    .sort();
  if (env.join() !== expectedEnv(s.path).join())
    say(`variables ${expectedEnv(s.path).join(', ') || 'none'} replace it; the README's env column has ${env.join(', ') || 'none'}`);
  return problems;
}

/** Whether the loader refuses `path` (e.g. `clusters[].target`) as a field that no longer exists. */
function refusedAsRemoved(path: string): boolean {
  const doc: Record<string, unknown> = {};
  let node: Record<string, unknown> = doc;
  let at = '';
  const keys = path.split('.');
  keys.forEach((part, i) => {
    const list = part.endsWith('[]');
    const key = list ? part.slice(0, -2) : part;
    at += `${at === '' ? '' : '.'}${key}${list ? '[0]' : ''}`;
    if (i === keys.length - 1) {
      node[key] = 'x';
      return;
    }
    const child: Record<string, unknown> = {};
    node[key] = list ? [child] : child;
    node = child;
  });
  try {
    validate(doc, { source: '/nonexistent/config.yaml', env: {}, hostname: 'h' });
  } catch (err) {
    return err instanceof ConfigIssuesError && err.issues.some((i) => i.path === at && /no longer supported/.test(i.message));
  }
  return false;
}

const { fields, sections } = schemaFields(configSchema('/'));
const byPath = new Map(fields.map((f) => [f.path, f]));

describe('README configuration reference', () => {
  it('the schema walk finds fields of every kind, nested and in lists (so a comparison with nothing cannot pass)', () => {
    assert.ok(fields.length >= 40, `${fields.length} fields`);
    assert.deepEqual(byPath.get('clusters[].safety.maxShrinkFraction'), {
      path: 'clusters[].safety.maxShrinkFraction',
      kind: 'number',
      options: undefined,
      required: false,
      hasDefault: true,
      defaultValue: 0.5,
      min: 0,
      max: 1,
      minLength: undefined,
      maxLength: undefined,
    });
    assert.equal(byPath.get('http.listen')?.defaultValue, '127.0.0.1:9540', 'a default before a transform is found');
    assert.deepEqual(byPath.get('clusters[].addressTypes')?.options, ['InternalIP', 'ExternalIP']);
    assert.equal(byPath.get('salt.url')?.required, true);
    assert.equal(byPath.get('clusters')?.minLength, 1);
    assert.ok(sections.includes('clusters[].watch') && sections.includes('publish.retry'), sections.join());
  });

  it('documents every field of the schema, and only those, once each', () => {
    const rows = referenceRows();
    const documented = rows.map((r) => r.field);
    const dup = documented.filter((f, i) => documented.indexOf(f) !== i);
    assert.deepEqual(dup, [], 'fields documented twice');
    assert.deepEqual(
      fields.map((f) => f.path).filter((p) => !documented.includes(p)),
      [],
      'schema fields missing from the README reference',
    );
    assert.deepEqual(
      documented.filter((p) => !byPath.has(p)),
      [],
      'README reference rows that are no field of the schema',
    );
  });

  it("every row's default, type, limits and variables are the schema's", () => {
    const rows = new Map(referenceRows().map((r) => [r.field, r]));
    const problems = fields.flatMap((f) => (rows.has(f.path) ? rowProblems(f, rows.get(f.path)!) : []));
    assert.deepEqual(problems, []);
  });

  it('every environment override names a field of the schema', () => {
    const paths = [...Object.values(ENV_OVERRIDES).map((o) => o.path.join('.')), ...Object.values(DIRECT_SECRETS)];
    assert.deepEqual(
      paths.filter((p) => !byPath.has(p)),
      [],
    );
  });

  it('every configuration field the README names anywhere exists in the schema, or is one the loader refuses as removed', () => {
    // `clusters[0].kubeconfig`, `clusters[i].labelSelector`, `salt.websocketUrl`, `http.allowedHosts`, …
    const tops = Object.keys((configSchema('/') as unknown as ZodNode)._zod.def.shape ?? {});
    const qualified = new RegExp(`^(${tops.join('|')})(\\[[^\\]]*\\])?(\\.[A-Za-z]+)+$`);
    const prose = README.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
    const named = [
      ...new Set(
        codeSpans(prose)
          .filter((s) => qualified.test(s))
          .map((n) => n.replace(/\[[^\]]*\]/g, '[]')),
      ),
    ];
    assert.ok(named.length >= 40, `${named.length} qualified names found: ${named.join(', ')}`);
    const known = new Set([...byPath.keys(), ...sections]);
    const unknown = named.filter((n) => !known.has(n) && !refusedAsRemoved(n));
    assert.deepEqual(unknown, [], 'README names configuration fields that the schema does not have');
  });
});

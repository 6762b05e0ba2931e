// Kubernetes label selectors (the `labelSelector` query parameter), parsed when the config is
// loaded so that a typo is a config error (exit 2) and not a watch that fails at run time.
// The grammar and error wording follow k8s.io/apimachinery/pkg/labels (Lexer, Parser):
//
//   selector    := "" | requirement ("," requirement)*
//   requirement := ["!"] key
//                | key ("=" | "==" | "!=") [value]
//                | key (">" | "<") integer
//                | key ("in" | "notin") "(" [value] ("," [value])* ")"
//   key         := [dns-subdomain "/"] name        name: 1-63 of [A-Za-z0-9._-], alphanumeric at both ends
//   value       := "" | 1-63 of [A-Za-z0-9._-], alphanumeric at both ends
//
// Whitespace separates tokens and is otherwise ignored. No npm package implements this grammar
// with the apiserver's rules, hence this small parser (decision table: test/unit/selector.test.ts).

export type SelectorOperator = 'exists' | '!exists' | '=' | '==' | '!=' | 'in' | 'notin' | '>' | '<';

export interface Requirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Sorted, unique (as the apiserver keeps them). */
  readonly values: readonly string[];
}

export type SelectorResult = { readonly ok: true; readonly requirements: readonly Requirement[] } | { readonly ok: false; readonly reason: string };

type Tok = 'end' | 'id' | '(' | ')' | ',' | '!' | '=' | '==' | '!=' | '>' | '<' | 'in' | 'notin' | 'error';

interface Item {
  readonly tok: Tok;
  readonly lit: string;
}

const SPECIAL = new Set(['=', '!', '(', ')', ',', '>', '<']);
const WHITESPACE = new Set([' ', '\t', '\r', '\n']);
const SYMBOLS: ReadonlyMap<string, Tok> = new Map<string, Tok>([
  ['(', '('],
  [')', ')'],
  [',', ','],
  ['!', '!'],
  ['=', '='],
  ['==', '=='],
  ['!=', '!='],
  ['>', '>'],
  ['<', '<'],
]);

function lex(s: string): Item[] {
  const items: Item[] = [];
  let i = 0;
  for (;;) {
    while (i < s.length && WHITESPACE.has(s[i]!)) i++;
    if (i >= s.length) {
      items.push({ tok: 'end', lit: '' });
      return items;
    }
    if (SPECIAL.has(s[i]!)) {
      // Longest special-symbol token (`!=`, `==`), like the apiserver's scanSpecialSymbol.
      let buf = '';
      let last: Item | undefined;
      while (i < s.length && SPECIAL.has(s[i]!)) {
        const tok = SYMBOLS.get(buf + s[i]!);
        if (tok === undefined && last !== undefined) break;
        buf += s[i]!;
        i++;
        if (tok !== undefined) last = { tok, lit: buf };
      }
      if (last === undefined) {
        items.push({ tok: 'error', lit: buf });
        items.push({ tok: 'end', lit: '' });
        return items;
      }
      items.push(last);
      continue;
    }
    let buf = '';
    while (i < s.length && !SPECIAL.has(s[i]!) && !WHITESPACE.has(s[i]!)) buf += s[i++]!;
    items.push({ tok: buf === 'in' ? 'in' : buf === 'notin' ? 'notin' : 'id', lit: buf });
  }
}

class ParseError extends Error {}

/** Parses a label selector; the empty string selects everything. */
export function parseLabelSelector(text: string): SelectorResult {
  const items = lex(text);
  let pos = 0;
  // In value position `in` and `notin` are plain identifiers (a label value may be "in").
  const peek = (values = true): Item => {
    const it = items[pos]!;
    return values && (it.tok === 'in' || it.tok === 'notin') ? { tok: 'id', lit: it.lit } : it;
  };
  const next = (values = true): Item => {
    const it = peek(values);
    pos = Math.min(pos + 1, items.length - 1);
    return it;
  };
  const fail = (message: string): never => {
    throw new ParseError(message);
  };
  const found = (it: Item): string => (it.tok === 'error' ? `unexpected '${it.lit}'` : `found '${it.lit}'`);

  const requirement = (): Requirement => {
    let negated = false;
    let it = next();
    if (it.tok === '!') {
      negated = true;
      it = next();
    }
    if (it.tok !== 'id') fail(`${found(it)}, expected: identifier`);
    const key = it.lit;
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) fail(`invalid label key "${key}": ${keyProblem}`);
    const after = peek();
    if (after.tok === 'end' || after.tok === ',') return { key, operator: negated ? '!exists' : 'exists', values: [] };
    if (negated) fail(`${found(after)}, expected: ',' or end of string after '!${key}'`);
    const op = next(false);
    let values: string[];
    switch (op.tok) {
      case 'in':
      case 'notin':
        values = valueList(op.tok);
        break;
      case '=':
      case '==':
      case '!=':
      case '>':
      case '<': {
        const v = peek();
        if (v.tok === 'end' || v.tok === ',') values = [''];
        else if (v.tok === 'id') values = [next().lit];
        else values = fail(`${found(v)}, expected: identifier`);
        break;
      }
      default:
        return fail(`${found(op)} after "${key}", expected: =, ==, !=, >, <, in, notin`);
    }
    for (const v of values) {
      const problem = labelValueProblem(v);
      if (problem !== undefined) fail(`invalid value "${v}" for "${key}": ${problem}`);
    }
    if ((op.tok === '>' || op.tok === '<') && !/^[+-]?[0-9]{1,18}$/.test(values[0]!)) {
      fail(`for '>' and '<' the value must be an integer, not "${values[0]}"`);
    }
    return { key, operator: op.tok, values: [...new Set(values)].sort() };
  };

  const valueList = (op: 'in' | 'notin'): string[] => {
    const open = next();
    if (open.tok !== '(') fail(`${found(open)} after '${op}', expected: '('`);
    const values: string[] = [];
    let expectValue = true;
    for (;;) {
      const it = next();
      if (it.tok === ')') {
        if (expectValue) values.push('');
        return values;
      }
      if (it.tok === ',') {
        if (expectValue) values.push('');
        expectValue = true;
        continue;
      }
      if (it.tok === 'id' && expectValue) {
        values.push(it.lit);
        expectValue = false;
        continue;
      }
      fail(it.tok === 'end' ? `missing ')' after '${op} (${values.join(',')}'` : `${found(it)}, expected: ',' or ')'`);
    }
  };

  try {
    const requirements: Requirement[] = [];
    if (peek().tok === 'end') return { ok: true, requirements };
    for (;;) {
      requirements.push(requirement());
      const sep = next();
      if (sep.tok === 'end') break;
      if (sep.tok !== ',') fail(`${found(sep)}, expected: ',' or end of string`);
      const after = peek();
      if (after.tok !== 'id' && after.tok !== '!') fail(`${found(after)}, expected: identifier after ','`);
    }
    return { ok: true, requirements };
  } catch (err) {
    if (err instanceof ParseError) return { ok: false, reason: err.message };
    throw err;
  }
}

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is no label key (an optional DNS-subdomain prefix and "/", then a name), or undefined. */
export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return 'at most one "/" (prefix/name)';
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '') return 'the prefix before "/" must not be empty';
    if (prefix.length > 253) return 'the prefix must be at most 253 characters';
    if (!DNS_SUBDOMAIN.test(prefix)) return 'the prefix must be a DNS subdomain (lower-case letters, digits, "-" and ".")';
  }
  if (name === '') return 'the name must not be empty';
  if (name.length > 63) return 'the name must be at most 63 characters';
  if (!NAME.test(name)) return "the name must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit";
  return undefined;
}

/** Why `value` is no label value (empty, or a name as above), or undefined. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63) return 'must be at most 63 characters';
  if (!NAME.test(value)) return "must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit";
  return undefined;
}

// Canonical JSON as the contract defines it: Python's
// json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Key-sorted, whitespace-free, ASCII-only JSON; byte-identical to the Python call above. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value as Json)).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(value).sort()) {
      const v = value[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`canonical JSON carries only safe integers, got ${value}`);
  }
  return value;
}

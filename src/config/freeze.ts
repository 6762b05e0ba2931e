/** Freezes plain objects and arrays recursively (class instances such as Secret are frozen shallowly). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    const proto = Object.getPrototypeOf(value) as unknown;
    if (Array.isArray(value) || proto === Object.prototype || proto === null) {
      for (const v of Object.values(value)) deepFreeze(v);
    }
  }
  return value;
}

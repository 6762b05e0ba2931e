// Generation numbers: monotonic per cluster, surviving restarts. Minions refuse a payload whose
// generation is not above the last one they applied, so going backwards would freeze them.
//
// The controller persists the last generation in state.dir, but that directory can be lost
// (emptyDir, new PVC, a standby bridge taking over the Lease with its own empty state). So the
// generation also has a clock floor: max(last + 1, nowMs). Publishes are at least minIntervalMs
// (>= 1 ms) apart, so the counter never runs ahead of the wall clock in steady state, and a bridge
// that restarts without state — or a new leader — still continues above anything published before,
// as long as its clock is not behind the previous publisher's by more than the time since that
// publish. Milliseconds since the epoch (~1.8e12) stay far inside JSON's and Python's safe
// integers. The persisted `last` still matters: it protects against a clock that steps backwards.
//
// The third term covers the clock that is behind: `floor` is the highest generation this bridge
// has seen in a *verified* event of the cluster on the bus (the other bridge of an HA pair, whose
// clock may be ahead). Only events signed with the bridge's own key may raise it, so nobody else
// can push the counter towards the minions' skew bound.

function check(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`bad ${name} generation: ${v}`);
}

/**
 * The generation of the next publish: max(last + 1, now, floor + 1). `last` is 0 when nothing was
 * ever published or state was lost; `floor` is 0 when no verified event was seen.
 */
export function nextGeneration(last: number, nowMs: number, floor = 0): number {
  check('last', last);
  check('floor', floor);
  if (!Number.isFinite(nowMs) || nowMs < 0) throw new RangeError(`bad time: ${nowMs}`);
  const next = Math.max(last + 1, Math.floor(nowMs), floor + 1);
  if (!Number.isSafeInteger(next)) throw new RangeError('generation overflow');
  return next;
}

/**
 * The floor after seeing `seen` in an event. Only the caller knows whether the event verified; an
 * unverified one must not reach this function. Nonsense (not a safe non-negative integer) never
 * moves the floor.
 */
export function raiseFloor(floor: number, seen: number | undefined): number {
  if (seen === undefined || !Number.isSafeInteger(seen) || seen < 0) return floor;
  return Math.max(floor, seen);
}

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

/** The generation of the next publish. `last` is 0 when nothing was ever published or state was lost. */
export function nextGeneration(last: number, nowMs: number): number {
  if (!Number.isSafeInteger(last) || last < 0) throw new RangeError(`bad last generation: ${last}`);
  if (!Number.isFinite(nowMs) || nowMs < 0) throw new RangeError(`bad time: ${nowMs}`);
  const next = Math.max(last + 1, Math.floor(nowMs));
  if (!Number.isSafeInteger(next)) throw new RangeError('generation overflow');
  return next;
}

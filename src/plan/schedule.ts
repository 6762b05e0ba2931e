// Coalescing schedule (habit 2; external-dns controller.ScheduleRunOnce with its starvation fix).
// Change notifications only move a "next run" time; every run recomputes from the full state.
//
// - leading edge: the first change after a quiet spell (nothing pending, the last run at least
//   minIntervalMs ago) runs at once — a lone node joining is published without waiting;
// - a first change sooner than that runs as soon as minIntervalMs have passed since the last run;
// - further changes while one is pending wait for minIntervalMs of quiet, so the rest of a burst
//   (a node pool scaling) becomes one more run:
//     next = max(lastRunAt + minInterval, min(now + minInterval, pendingSince + maxDelay))
// - but never longer than maxDelayMs after the first unpublished change: a change every 10 ms
//   cannot postpone the run forever (the starvation bug external-dns fixed);
// - runs start at least minIntervalMs apart.
// All functions are pure over plain state; the controller owns the timer.

export interface ScheduleOptions {
  readonly minIntervalMs: number;
  readonly maxDelayMs: number;
}

export interface ScheduleState {
  /** Start of the last run, or undefined before the first one. */
  readonly lastRunAt: number | undefined;
  /** Time of the first change not yet covered by a run. */
  readonly pendingSince: number | undefined;
  /** When the next run is due, or undefined when nothing is pending. */
  readonly nextRunAt: number | undefined;
}

export const initialSchedule: ScheduleState = Object.freeze({
  lastRunAt: undefined,
  pendingSince: undefined,
  nextRunAt: undefined,
});

/** A change was seen at `now`. */
export function scheduleRun(state: ScheduleState, now: number, o: ScheduleOptions): ScheduleState {
  const floor = state.lastRunAt === undefined ? -Infinity : state.lastRunAt + o.minIntervalMs;
  if (state.pendingSince === undefined) return { lastRunAt: state.lastRunAt, pendingSince: now, nextRunAt: Math.max(now, floor) };
  const pendingSince = state.pendingSince ?? now;
  const nextRunAt = Math.max(floor, Math.min(now + o.minIntervalMs, pendingSince + o.maxDelayMs));
  return { lastRunAt: state.lastRunAt, pendingSince, nextRunAt };
}

/** A run starts at `now`: it covers every change seen so far. Changes seen from now on schedule anew. */
export function runStarted(_state: ScheduleState, now: number): ScheduleState {
  return { lastRunAt: now, pendingSince: undefined, nextRunAt: undefined };
}

/** Milliseconds until the next run is due (0 when overdue), or undefined when nothing is pending. */
export function dueIn(state: ScheduleState, now: number): number | undefined {
  return state.nextRunAt === undefined ? undefined : Math.max(0, state.nextRunAt - now);
}

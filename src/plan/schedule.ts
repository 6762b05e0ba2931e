// Coalescing schedule: a pure state machine over plain data; the controller keeps one timer per
// cluster and sets it to `dueIn` whenever `dueAt` changes. Change notifications only decide when
// the next run is due; every run's result is the full state's (habit 2).
//
// Rules (minInterval = publish.minIntervalMs, maxDelay = publish.maxDelayMs, maxDelay >= minInterval):
// - leading edge: the first change after a quiet spell (nothing pending, no run in progress, the
//   last publish at least minInterval ago) is due at once — a lone node joining is published
//   without waiting;
// - spacing: otherwise the run is due minInterval after the end of the last run that published,
//   so a burst publishes at once, then at most once per minInterval;
// - a due time, once set, never moves: a further change before the run starts is covered by that
//   run (a change every 10 ms cannot postpone it);
// - ceiling: a change never waits for the spacing longer than maxDelay after it was first seen.
//   With quick runs the spacing alone keeps every wait under minInterval; the ceiling matters
//   after a run that took longer than maxDelay - minInterval (a slow salt-api), when the next run
//   follows at once;
// - a change seen while a run is in progress is not due before that run finishes (runs of one
//   cluster never overlap); runFinished then computes its due time by the same rules;
// - minInterval spaces publishes, not computations: a run that published nothing (a node that
//   appeared before its addresses, a heartbeat that slipped through, a held or failed publish)
//   does not delay the next.
//
//   dueAt = max(now, min(lastPublishAt + minInterval, pendingSince + maxDelay))

export interface ScheduleOptions {
  readonly minIntervalMs: number;
  readonly maxDelayMs: number;
}

export interface ScheduleState {
  /** End of the last run that published (fired an event), or undefined before the first one. */
  readonly lastPublishAt: number | undefined;
  /** Time of the first change not yet covered by a started run. */
  readonly pendingSince: number | undefined;
  /** When the next run is due; undefined when nothing is pending or while a run is in progress. */
  readonly dueAt: number | undefined;
  /** A run has started and not finished. */
  readonly running: boolean;
}

export const initialSchedule: ScheduleState = Object.freeze({
  lastPublishAt: undefined,
  pendingSince: undefined,
  dueAt: undefined,
  running: false,
});

function dueTime(lastPublishAt: number | undefined, pendingSince: number, now: number, o: ScheduleOptions): number {
  const spaced = lastPublishAt === undefined ? now : lastPublishAt + o.minIntervalMs;
  return Math.max(now, Math.min(spaced, pendingSince + o.maxDelayMs));
}

/** A change was seen at `now`. A due time already set stays as it is. */
export function scheduleRun(state: ScheduleState, now: number, o: ScheduleOptions): ScheduleState {
  const pendingSince = state.pendingSince ?? now;
  if (state.running || state.dueAt !== undefined) {
    return pendingSince === state.pendingSince ? state : { ...state, pendingSince };
  }
  return { ...state, pendingSince, dueAt: dueTime(state.lastPublishAt, pendingSince, now, o) };
}

/**
 * A run starts at `now`, for whatever reason (a change, a resync, a retry…): it plans from the
 * full state, so it covers every change seen so far.
 */
export function runStarted(state: ScheduleState, _now: number): ScheduleState {
  return { lastPublishAt: state.lastPublishAt, pendingSince: undefined, dueAt: undefined, running: true };
}

/** The run ends at `now`; `published` says whether it fired an event (only then it spaces the next). */
export function runFinished(state: ScheduleState, now: number, published: boolean, o: ScheduleOptions): ScheduleState {
  const lastPublishAt = published ? now : state.lastPublishAt;
  const dueAt = state.pendingSince === undefined ? undefined : dueTime(lastPublishAt, state.pendingSince, now, o);
  return { lastPublishAt, pendingSince: state.pendingSince, dueAt, running: false };
}

/** Milliseconds until the next run is due (0 when overdue), or undefined when no run is due. */
export function dueIn(state: ScheduleState, now: number): number | undefined {
  return state.dueAt === undefined ? undefined : Math.max(0, state.dueAt - now);
}

// Added/removed entries versus the last published list. In the full form they are information only
// for receivers (the list travels with them), so they are capped to keep the event small; the
// delta form (payload.ts) takes them uncapped.

import { sortedCodePoint } from './project.ts';

export const DIFF_CAP = 1000;

export interface Diff {
  readonly added: string[];
  readonly removed: string[];
  readonly added_truncated: boolean;
  readonly removed_truncated: boolean;
  /** Uncapped counts, for logs and metrics. */
  readonly addedCount: number;
  readonly removedCount: number;
}

export interface EntryLists {
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
}

/** `previous` undefined means nothing was ever published: everything is added. */
export function diffLists(previous: EntryLists | undefined, desired: EntryLists, cap: number = DIFF_CAP): Diff {
  const before = new Set([...(previous?.ipv4 ?? []), ...(previous?.ipv6 ?? [])]);
  const after = new Set([...desired.ipv4, ...desired.ipv6]);
  const added = sortedCodePoint([...after].filter((e) => !before.has(e)));
  const removed = sortedCodePoint([...before].filter((e) => !after.has(e)));
  return capDiff(added, removed, cap);
}

/** The Diff of a complete change (`added`, `removed` sorted): the lists capped at `cap`, the counts not. */
export function capDiff(added: readonly string[], removed: readonly string[], cap: number = DIFF_CAP): Diff {
  return {
    added: added.slice(0, cap),
    removed: removed.slice(0, cap),
    added_truncated: added.length > cap,
    removed_truncated: removed.length > cap,
    addedCount: added.length,
    removedCount: removed.length,
  };
}

/** true when the two lists hold the same entries. */
export function sameEntries(a: EntryLists, b: EntryLists): boolean {
  const d = diffLists(a, b, 0);
  return d.addedCount === 0 && d.removedCount === 0;
}

// Which started minions get a re-send, and when. Any minion can fire `salt/minion/<id>/start`
// for any id, as often as it likes (the unmarked batch form, docs/event-contract.md), and each
// re-send is a full payload that Salt broadcasts to every connected minion. So starts are re-sent
// in rounds: the first `coalesceMs` after a start (starts arriving together share it), later
// rounds at least `roundSpacingMs` after the previous one; a round names at most `maxPerRound`
// ids (one event per cluster under the reactor's hint limit), the rest wait for the next round
// (FIFO); an id re-sent within `perMinionMs` is not queued again; at most `maxQueued` ids wait.
// Pure bookkeeping over an injected clock; the controller sets the one timer it is told.

export interface StartOptions {
  readonly coalesceMs: number;
  readonly roundSpacingMs: number;
  readonly perMinionMs: number;
  readonly maxPerRound: number;
  readonly maxQueued: number;
}

/** The bridge's bounds: 200 ms coalescing, rounds 5 s apart, one start re-send per id per 30 s, 1,000 ids per round. */
export const START_LIMITS: StartOptions = Object.freeze({
  coalesceMs: 200,
  roundSpacingMs: 5_000,
  perMinionMs: 30_000,
  maxPerRound: 1_000,
  maxQueued: 10_000,
});

/**
 * queued: it goes out with the next round; waiting: already queued; recent: a start re-send went
 * to this id less than perMinionMs ago (nothing is queued); full: maxQueued ids already wait.
 */
export type StartVerdict = 'queued' | 'waiting' | 'recent' | 'full';

export class StartRounds {
  private readonly o: StartOptions;
  private readonly now: () => number;
  /** Ids waiting for a round, in order of arrival. */
  private readonly queue = new Set<string>();
  /** Id → time of its last start re-send, oldest first (an update moves it to the end). */
  private readonly sent = new Map<string, number>();
  private lastRoundAt: number | undefined;
  private due: number | undefined;

  constructor(o: StartOptions, now: () => number) {
    this.o = o;
    this.now = now;
  }

  /** When the next round is due (undefined: nothing waits). */
  get dueAt(): number | undefined {
    return this.due;
  }

  /** How many ids wait for a round. */
  get waiting(): number {
    return this.queue.size;
  }

  /** A start of `minion` was seen. */
  note(minion: string): StartVerdict {
    const now = this.now();
    this.forget(now);
    if (this.queue.has(minion)) return 'waiting';
    if (this.sent.has(minion)) return 'recent';
    if (this.queue.size >= this.o.maxQueued) return 'full';
    this.queue.add(minion);
    if (this.due === undefined) {
      const spaced = this.lastRoundAt === undefined ? now : this.lastRoundAt + this.o.roundSpacingMs;
      this.due = Math.max(now + this.o.coalesceMs, spaced);
    }
    return 'queued';
  }

  /** The round due now: the ids to re-send to (sorted), at most maxPerRound; the rest wait for the next. */
  take(): string[] {
    const now = this.now();
    if (this.due === undefined || this.due > now) return [];
    const ids: string[] = [];
    for (const id of this.queue) {
      if (ids.length === this.o.maxPerRound) break;
      ids.push(id);
    }
    for (const id of ids) {
      this.queue.delete(id);
      this.sent.delete(id);
      this.sent.set(id, now);
    }
    this.lastRoundAt = now;
    this.due = this.queue.size > 0 ? now + this.o.roundSpacingMs : undefined;
    return ids.sort();
  }

  /** Drops the ids whose last start re-send is perMinionMs old (the oldest are first). */
  private forget(now: number): void {
    for (const [id, at] of this.sent) {
      if (now - at < this.o.perMinionMs) break;
      this.sent.delete(id);
    }
  }
}

/**
 * Ramp-up: users that start spread over a time instead of all at once, so that a thousand users do not open a
 * thousand connections in the same instant. The only timers of user starts live here; cancel() leaves none.
 */

export class UserStarts {
  /** Users waiting for their start time, by user number. */
  private readonly waiting = new Map<number, NodeJS.Timeout>();

  constructor(private readonly begin: (user: number) => void) {}

  /**
   * Starts `users` evenly over `rampMs` from now: the i-th of n (0-based) after i * rampMs / n, so the first
   * starts at once and the last one rampMs / n before the end. With no ramp, all start now, in order. `phase`
   * (0 ≤ phase < 1) shifts every start by that fraction of one step (i + phase) × rampMs / n: threads sharing
   * a flow interleave their users' starts so.
   */
  schedule(users: readonly number[], rampMs: number, phase = 0): void {
    const n = users.length;
    this.scheduleEach(users, (_user, i) => (rampMs > 0 ? ((i + phase) * rampMs) / n : 0));
  }

  /** Starts each of `users` after its own delay (ms; 0: now, in order). */
  scheduleEach(users: readonly number[], delayOf: (user: number, i: number) => number): void {
    users.forEach((user, i) => {
      const delay = delayOf(user, i);
      if (delay === 0) {
        this.begin(user);
        return;
      }
      this.waiting.set(
        user,
        setTimeout(() => {
          this.waiting.delete(user);
          this.begin(user);
        }, delay),
      );
    });
  }

  /** Is this user waiting for its start? */
  has(user: number): boolean {
    return this.waiting.has(user);
  }

  get size(): number {
    return this.waiting.size;
  }

  /** Users above `highest` that wait start never (sim_users was lowered). */
  cancelAbove(highest: number): void {
    for (const [user, timer] of this.waiting) {
      if (user <= highest) continue;
      clearTimeout(timer);
      this.waiting.delete(user);
    }
  }

  /** No user that waits will start. */
  cancel(): void {
    this.cancelAbove(0);
  }
}

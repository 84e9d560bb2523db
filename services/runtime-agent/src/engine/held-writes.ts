/**
 * Record writes of one execution that wait until its next request is on its way. When a step that changes
 * nothing succeeds and the next one changes nothing either, the first one's outcome and the second one's
 * start are written once the second one's action has been called, in the next turn of the event loop: that
 * work then runs while the request is in flight instead of between two requests, where it delays the next
 * one by about twice its own CPU time (`npm run bench -- engine`). Every other write of the execution
 * (a state change, an event, a log line) first writes what is held, so the record, the journal and the log
 * keep their order. Held writes are cosmetic ones (a read-only step's outcome, a step's start), which the
 * store would keep waiting for company anyway; none of them is one a recovery depends on.
 */
export class HeldWrites {
  private held: Array<() => void> = [];

  /** `onError`: told of a write that failed when released in a turn of its own (where nobody else would hear). */
  constructor(private readonly onError: (err: unknown) => void) {}

  /** Keeps `write` until the next release. */
  hold(write: () => void): void {
    this.held.push(write);
  }

  /** Writes everything held, in the order it was held. */
  readonly release = (): void => {
    if (this.held.length === 0) return;
    const writes = this.held;
    this.held = [];
    for (const write of writes) write();
  };

  /** Writes what is held in the next turn, once the request an action has just started is on its way. */
  releaseSoon(): void {
    if (this.held.length > 0) setImmediate(this.releaseInTurn);
  }

  private readonly releaseInTurn = (): void => {
    try {
      this.release();
    } catch (err) {
      this.onError(err);
    }
  };
}

/** A FIFO with O(1) push and shift (Array#shift copies the whole array, and the queue may hold many thousands). */
export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Compact once the consumed prefix dominates, keeping shifts amortised O(1).
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes the first item matching `pred` (O(n): only for cancelling a queued execution). */
  remove(pred: (item: T) => boolean): T | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i] as T;
      if (pred(item)) {
        this.items.splice(i, 1);
        return item;
      }
    }
    return undefined;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** Under API load, background work gets at least one turn in this many. */
export const BACKGROUND_SHARE_TURNS = 4;

/**
 * Background work waits here between pieces, and one waiter is released per
 * turn of the event loop: every turn first serves the I/O that is ready (new
 * requests, health probes, cancels), so the API stays responsive while many
 * executions run, and a burst of submissions fills the bounded queue instead
 * of waiting behind the work it queued. While API requests keep arriving,
 * background work takes one turn in BACKGROUND_SHARE_TURNS; it never stops.
 *
 * A piece that itself waited for I/O (an HTTP step) has already let the loop
 * turn: `next` lets it go on at once, unless API requests are waiting or
 * others are queued for their turn.
 */
export class IoTurns {
  private readonly waiters = new Fifo<() => void>();
  private scheduled = false;
  private requests = 0;
  private skipped = 0;
  /** Set by a marker in the check phase: the loop has turned since the last piece was let go. */
  private turned = false;
  private markerScheduled = false;

  /** Called for every API request. */
  noteRequest(): void {
    this.requests++;
  }

  /** Undefined when the caller may go on now (the loop has turned since its last piece); else a promise for its turn. */
  next(): Promise<void> | undefined {
    if (this.turned && this.requests === 0 && this.waiters.length === 0) {
      this.letGo();
      return undefined;
    }
    return this.wait();
  }

  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.release);
  }

  /** A piece goes on: the next one may skip its wait only once the loop has turned again. */
  private letGo(): void {
    this.turned = false;
    if (this.markerScheduled) return;
    this.markerScheduled = true;
    setImmediate(this.marker);
  }

  private readonly marker = (): void => {
    this.markerScheduled = false;
    this.turned = true;
  };

  private readonly release = (): void => {
    this.scheduled = false;
    if (this.requests > 0 && this.skipped < BACKGROUND_SHARE_TURNS - 1) {
      this.requests = 0;
      this.skipped++;
      this.schedule();
      return;
    }
    this.requests = 0;
    this.skipped = 0;
    const next = this.waiters.shift();
    if (this.waiters.length > 0) this.schedule();
    if (next) this.letGo();
    next?.();
  };
}

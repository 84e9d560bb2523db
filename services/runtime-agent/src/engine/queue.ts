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
 */
export class IoTurns {
  private readonly waiters = new Fifo<() => void>();
  private scheduled = false;
  private requests = 0;
  private skipped = 0;

  /** Called for every API request. */
  noteRequest(): void {
    this.requests++;
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
    next?.();
  };
}

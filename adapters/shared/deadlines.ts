/**
 * Timeouts of many short operations on one timer: each registers its deadline, and one Node timer is
 * armed for the earliest. Registering and clearing cost a Set operation each, where a setTimeout and
 * clearTimeout per request create and drop a Node timer list every time. The timer is unref'd: what it
 * guards (a request's socket) keeps the process alive, it need not.
 */
export interface Deadline {
  readonly at: number;
  readonly fire: () => void;
}

export class Deadlines {
  private readonly pending = new Set<Deadline>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  /** Calls `fire` in `ms` milliseconds unless the deadline is cleared first. */
  add(ms: number, fire: () => void): Deadline {
    const deadline = { at: performance.now() + ms, fire };
    this.pending.add(deadline);
    if (deadline.at < this.armedFor) this.arm(deadline.at);
    return deadline;
  }

  /** The operation finished: its deadline never fires. The timer stays armed; when it fires it finds nothing due. */
  clear(deadline: Deadline): void {
    this.pending.delete(deadline);
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(this.due, Math.max(1, Math.ceil(at - performance.now())));
    this.timer.unref();
  }

  private readonly due = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    const fired: Deadline[] = [];
    for (const d of this.pending) {
      if (d.at <= now) fired.push(d);
      else if (d.at < next) next = d.at;
    }
    for (const d of fired) this.pending.delete(d);
    if (next < Infinity) this.arm(next);
    for (const d of fired) d.fire();
  };
}

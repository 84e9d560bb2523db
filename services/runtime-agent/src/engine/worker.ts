/**
 * Admission, the queue and concurrency. One map, `lives`, holds every execution this process is running or
 * rolling back, and its size is the one count of running work: /health and the `active_workflows` gauge both
 * read it. Rollbacks count: an automatic one keeps the slot of the run it undoes; a manual or recovered one
 * takes a slot at once, even past MAX_CONCURRENT_EXECUTIONS, because undoing damage must not wait behind
 * queued work, and new executions wait until the count is below the limit again.
 */
import { AgentError } from '../../../../adapters/errors.js';
import type { Live } from './live.js';
import { Interrupt } from './interrupts.js';
import { Fifo } from './queue.js';

export interface WorkerOptions {
  maxConcurrent: number;
  maxQueued: number;
}

/** A queued execution stays small: its Live (abort controller, log, scope) is made when it starts. */
export interface Queued {
  id: string;
  /** Makes the execution's Live when it starts. */
  start: () => Live;
}

export class Worker {
  private readonly queue = new Fifo<Queued>();
  private readonly queued = new Map<string, Queued>();
  private readonly lives = new Map<string, Live>();
  private readonly tasks = new Set<Promise<void>>();
  private draining = false;
  /** While recovery settles what a restart found, nothing starts from the queue. */
  private paused = false;

  constructor(
    private readonly options: WorkerOptions,
    private readonly run: (live: Live) => Promise<void>,
    private readonly onEnd: (id: string) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Executions running or rolling back in this process. */
  get active(): number {
    return this.lives.size;
  }

  get queuedCount(): number {
    return this.queued.size;
  }

  /** Executions still running past their workflow's timeout (a step that does not stop when aborted). */
  overdue(now = performance.now()): number {
    let n = 0;
    for (const live of this.lives.values())
      if (live.status === 'running' && live.deadlineMs !== undefined && live.deadlineMs < now) n++;
    return n;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** True while the execution is queued, running or rolling back in this process. */
  isLive(id: string): boolean {
    return this.lives.has(id) || this.queued.has(id);
  }

  live(id: string): Live | undefined {
    return this.lives.get(id);
  }

  isQueued(id: string): boolean {
    return this.queued.has(id);
  }

  /** Throws when a new execution cannot be accepted now (shutting down, or the queue is full). */
  admit(): void {
    if (this.draining) {
      throw new AgentError(
        'rate_limited',
        'the agent is shutting down and accepts no new executions; retry on another instance',
        { status: 503 },
      );
    }
    // Only an execution that has to wait counts against the queue: with a free slot it starts at once.
    if (this.lives.size >= this.options.maxConcurrent && this.queued.size >= this.options.maxQueued) {
      throw new AgentError(
        'rate_limited',
        `the queue is full (${this.options.maxQueued} executions waiting); retry later`,
      );
    }
  }

  /** Queues an execution; one already queued or running here is left as it is (an id never runs twice at once). */
  enqueue(q: Queued): void {
    if (this.isLive(q.id)) return;
    this.queued.set(q.id, q);
    this.queue.push(q);
    this.pump();
  }

  /** Takes a queued execution out of the queue (a cancel before it started); undefined when it is not queued. */
  unqueue(id: string): Queued | undefined {
    const q = this.queued.get(id);
    if (!q) return undefined;
    this.queued.delete(id);
    this.queue.remove((x) => x.id === id);
    return q;
  }

  /** Runs `task` for `live` outside the queue (a manual or recovered rollback), counted while it runs. */
  runNow(live: Live, task: () => Promise<void>): void {
    this.lives.set(live.id, live);
    this.track(task().finally(() => this.end(live.id)));
  }

  /** Holds the queue (while recovery works) or lets it go again. */
  pause(paused: boolean): void {
    this.paused = paused;
    this.pump();
  }

  /** Stops taking work, lets running steps finish within the grace period, then interrupts the rest. */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true; // queued executions stay queued (and cancellable) and pending in the store
    const all = Promise.allSettled([...this.tasks]);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([all, grace]);
    clearTimeout(timer);
    for (const live of this.lives.values())
      live.controller.abort(new Interrupt('shutdown', 'the agent shut down while this step ran'));
    await Promise.allSettled([...this.tasks]);
  }

  private pump(): void {
    while (!this.paused && !this.draining && this.lives.size < this.options.maxConcurrent && this.queue.length > 0) {
      const q = this.queue.shift()!;
      this.queued.delete(q.id);
      const live = q.start();
      this.lives.set(live.id, live);
      this.track(this.run(live).finally(() => this.end(live.id)));
    }
  }

  private end(id: string): void {
    this.lives.delete(id);
    this.onEnd(id);
    this.pump();
  }

  private track(task: Promise<void>): void {
    const t: Promise<void> = task.catch((err: unknown) => this.onError(err)).finally(() => this.tasks.delete(t));
    this.tasks.add(t);
  }
}

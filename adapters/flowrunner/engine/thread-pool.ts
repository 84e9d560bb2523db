/**
 * The worker threads FlowRunner flows run on, shared by every flow of the process: started when the first
 * threaded flow asks for them, reused by the flows after it (a thread hosts the shares of several flows at
 * once), and terminated once no flow has used them for THREAD_IDLE_MS and at shutdown (close), so an
 * agent that runs no flow holds no thread. Starting a thread costs 0.3–0.7 s (seconds under tsx); a flow
 * on threads that are already there starts in milliseconds.
 */
import type { Worker } from 'node:worker_threads';
import { type Envelope, type FromThread, startThread, type ToThread } from './threads.js';

/** How long threads no flow uses are kept for the next flow. */
export const THREAD_IDLE_MS = 60_000;

/** What a flow's share on one thread hears from it. */
export interface ShareHandler {
  message(m: FromThread): void;
  /** The thread died (threw, exited, was terminated): the share is gone with it. */
  failed(why: string): void;
}

/** One flow's share on one thread. */
export interface ThreadShare {
  readonly worker: Worker;
  send(m: ToThread): void;
  /** The share ended: the thread no longer carries it (idempotent). */
  release(): void;
}

interface Slot {
  worker: Worker;
  shares: Map<number, ShareHandler>;
}

export class ThreadPool {
  private readonly slots: Slot[] = [];
  private nextRun = 1;
  private idleTimer?: NodeJS.Timeout;

  constructor(private readonly idleMs = THREAD_IDLE_MS) {}

  /** Threads alive now. */
  get size(): number {
    return this.slots.length;
  }

  /**
   * `n` distinct threads for one flow, the least busy first; threads are started when fewer than `n` are
   * there. `handler(i)` hears share i.
   */
  share(n: number, handler: (i: number) => ShareHandler): ThreadShare[] {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    while (this.slots.length < n) this.slots.push(this.startSlot());
    const chosen = [...this.slots].sort((a, b) => a.shares.size - b.shares.size).slice(0, n);
    const run = this.nextRun++;
    return chosen.map((slot, i) => {
      slot.shares.set(run, handler(i));
      slot.worker.ref();
      return {
        worker: slot.worker,
        send: (m: ToThread) => slot.worker.postMessage({ run, m } satisfies Envelope<ToThread>),
        release: () => {
          if (!slot.shares.delete(run)) return;
          if (slot.shares.size === 0) slot.worker.unref();
          this.idleIfUnused();
        },
      };
    });
  }

  /** Terminates every thread (agent shutdown, after its flows stopped); a later flow starts new ones. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private startSlot(): Slot {
    const worker = startThread();
    const slot: Slot = { worker, shares: new Map() };
    worker.on('message', ({ run, m }: Envelope<FromThread>) => slot.shares.get(run)?.message(m));
    let why = '';
    worker.on('error', (err) => (why = `failed: ${err.message}`));
    worker.on('exit', (code) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const shares = [...slot.shares.values()];
      slot.shares.clear();
      for (const s of shares) s.failed(why || `exited (code ${code}) before its run ended`);
      this.idleIfUnused();
    });
    return slot;
  }

  private idleIfUnused(): void {
    if (this.idleTimer || this.slots.some((s) => s.shares.size > 0) || this.slots.length === 0) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      void this.close();
    }, this.idleMs);
    this.idleTimer.unref();
  }
}

/** The process's threads: every flow's. */
export const threadPool = new ThreadPool();

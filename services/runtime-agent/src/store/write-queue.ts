/**
 * The group-commit writer, and the only place in the store with timers. Callers say what to write and how
 * much it matters; this decides when it is committed:
 *
 * - a critical write (an accepted execution, a status, the outcome of a step that changed something, a
 *   journal event) is committed at the end of the current turn of the event loop, together with everything
 *   else deferred;
 * - a cosmetic write (a read-only step's outcome, a step's start) and buffered rows (log lines) wait up to
 *   COSMETIC_FLUSH_MS for company;
 * - everything is committed at once whenever someone must not go on without it: every read flushes first,
 *   and the engine commits all pending state before an action with side effects starts.
 *
 * A SIGKILL can therefore lose only the critical writes of the turn it interrupts (recovery reports that
 * execution as interrupted) and the last few milliseconds of the rest.
 */
import type Database from 'better-sqlite3';

export interface WriteOptions {
  /** Queue the write instead of committing it now. */
  deferred?: boolean;
  /** A deferred write recovery depends on: committed at the end of this turn, not within COSMETIC_FLUSH_MS. */
  critical?: boolean;
}

/** How long cosmetic writes may wait for a commit when nothing else is written. */
export const COSMETIC_FLUSH_MS = 50;
/** After a failed commit nobody waited for, how long until the pending writes are tried again. */
const RETRY_FLUSH_MS = 1000;

/** A queued write; `settle` (for writes a caller waits on) learns whether it committed. */
interface Deferred {
  run: () => void;
  settle?: (err?: unknown) => void;
}

class WaitedWriteFailed extends Error {}

/**
 * Rows staged for the next state commit and written inside its transaction, in batches (journal events): they
 * land if and only if the state written with them does, and their owner hears which.
 */
export interface Stage {
  /** True when rows are waiting. */
  pending(): boolean;
  /** Writes the waiting rows; called inside the transaction (again, when the transaction is redone). */
  write(): void;
  /** The transaction committed: the written rows are on disk. */
  committed(): void;
  /** The transaction was rolled back: what `write` wrote is not on disk (it may be written again). */
  rolledBack(): void;
}

export class WriteQueue {
  private deferred: Deferred[] = [];
  /** Deferred patches not yet committed: key → row → the merged patch (see `patch`). */
  private readonly pendingPatches = new Map<string, Map<number, Record<string, unknown>>>();
  /** Buffered rows (log lines), written in batches by their owners' flush functions. */
  private readonly buffers: Array<() => void> = [];
  private readonly stages: Stage[] = [];
  private flushScheduled = false;
  private timerScheduled = false;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    /** Told about a deferred write that failed; it never takes the commit it rides on down with it. */
    private readonly onError: (err: unknown) => void,
  ) {}

  /** A flush function for rows buffered elsewhere (called with every flush, outside the state commit). */
  addBuffer(flush: () => void): void {
    this.buffers.push(flush);
  }

  addStage(stage: Stage): void {
    this.stages.push(stage);
  }

  /** Asks for a commit of what a stage holds: at the end of this turn when critical, else within COSMETIC_FLUSH_MS. */
  touch(options: WriteOptions): void {
    this.schedule(options.critical === true);
  }

  /** Runs `fn` now or with the next commit, per `options`. */
  write(options: WriteOptions, fn: () => void): void {
    if (!options.deferred) return this.commit(fn);
    this.deferred.push({ run: fn });
    this.schedule(options.critical === true);
  }

  /**
   * Queues a write that a caller waits for: the promise settles once it is committed (or failed). Writes
   * queued in the same turn share one commit; when one of them fails, only that one is left out.
   */
  writeAwaited(fn: () => void, onCommitted?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.deferred.push({
        run: fn,
        settle: (err) => {
          if (err) return reject(err);
          onCommitted?.();
          resolve();
        },
      });
      this.schedule(true);
    });
  }

  /**
   * A deferred update of one row, coalesced with the other pending updates of the same row into one
   * statement (a step's start and its outcome, say). Rows are found by `key` (an execution id) and then
   * `row`, a number the caller chooses per row of that key: a composed string key would be built and
   * hashed for every update. Without `deferred`, `apply` runs now.
   */
  patch(
    key: string,
    row: number,
    patch: Record<string, unknown>,
    apply: (merged: Record<string, unknown>) => void,
    options: WriteOptions,
  ): void {
    if (!options.deferred) return this.commit(() => apply(patch));
    let rows = this.pendingPatches.get(key);
    const pending = rows?.get(row);
    if (pending) {
      for (const k in patch) if (patch[k] !== undefined) pending[k] = patch[k];
      this.schedule(options.critical === true);
      return;
    }
    const merged: Record<string, unknown> = {};
    for (const k in patch) merged[k] = patch[k];
    if (!rows) {
      rows = new Map();
      this.pendingPatches.set(key, rows);
    }
    rows.set(row, merged);
    const pendingRows = rows;
    this.write(options, () => {
      pendingRows.delete(row);
      if (pendingRows.size === 0 && this.pendingPatches.get(key) === pendingRows) this.pendingPatches.delete(key);
      apply(merged);
    });
  }

  /** Asks for a cosmetic flush (buffered rows arrived). */
  scheduleCosmetic(): void {
    this.schedule(false);
  }

  /** Commits everything pending: deferred writes, then buffered rows (before reads and on close). */
  flush(): void {
    if (this.closed) return;
    if (this.hasWork()) this.commit();
    for (const flush of this.buffers) flush();
  }

  /** Commits the deferred writes now (before an action with side effects starts). */
  flushDeferred(): void {
    if (this.hasWork() && !this.closed) this.commit();
  }

  private hasWork(): boolean {
    return this.deferred.length > 0 || this.stages.some((s) => s.pending());
  }

  close(): void {
    this.flush();
    this.closed = true;
  }

  /**
   * One transaction for every deferred write (and `fn`). A write someone waits for must land whole or not
   * at all: when one fails, the transaction is redone with a savepoint around each such write, so only the
   * failed one is left out (failures are rare; savepoints on every write would cost each commit).
   */
  private commit(fn?: () => void): void {
    const work = this.deferred;
    this.deferred = [];
    const waiting = work.flatMap((w) => (w.settle ? [w.settle] : []));
    let failed: Map<Deferred, unknown> | undefined;
    try {
      try {
        this.db.transaction(() => this.runAll(work, undefined, fn))();
      } catch (err) {
        for (const h of this.stages) h.rolledBack();
        if (!(err instanceof WaitedWriteFailed)) throw err;
        failed = new Map();
        this.db.transaction(() => this.runAll(work, failed, fn))();
      }
    } catch (err) {
      for (const h of this.stages) h.rolledBack();
      // Nothing of this batch landed. Callers waiting for their write hear so; the engine's own state
      // writes go back to the front of the queue and are tried again with the next commit.
      for (const settle of waiting) settle(err);
      this.deferred = [...work.filter((w) => !w.settle), ...this.deferred];
      throw err;
    }
    for (const h of this.stages) h.committed();
    for (const w of work) if (w.settle) w.settle(failed?.get(w));
  }

  /** Without `failed`, an awaited write that throws aborts the attempt; with it, each runs in a savepoint and failures are collected. */
  private runAll(work: Deferred[], failed: Map<Deferred, unknown> | undefined, fn?: () => void): void {
    for (const w of work) {
      try {
        if (w.settle && failed) this.db.transaction(w.run)();
        else w.run();
      } catch (err) {
        if (!w.settle) this.onError(err);
        else if (failed) failed.set(w, err);
        else throw new WaitedWriteFailed();
      }
    }
    // Stages last: a stage may read the state its rows report (the outbox renders a result), so that state is written first.
    fn?.();
    for (const stage of this.stages) stage.write();
  }

  private schedule(soon: boolean, delayMs = COSMETIC_FLUSH_MS): void {
    if (soon && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.inBackground(() => this.flushDeferred());
      });
    } else if (!soon && !this.timerScheduled) {
      this.timerScheduled = true;
      setTimeout(() => {
        this.timerScheduled = false;
        this.inBackground(() => this.flush());
      }, delayMs).unref();
    }
  }

  /** A commit nobody is waiting for must not crash the process (a full disk, say): report it and try again later. */
  private inBackground(flush: () => void): void {
    try {
      flush();
    } catch (err) {
      this.onError(err);
      this.schedule(false, RETRY_FLUSH_MS);
    }
  }
}

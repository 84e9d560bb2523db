/**
 * The embedded store: one SQLite file in WAL mode holding executions, steps, outputs, logs, the event
 * journal, the outbox of results to deliver, idempotency keys, the audit log, registered packages and the
 * processes steps left running. Writes are group committed (write-queue.ts); an accepted execution is
 * committed before its caller is told so, and survives a crash of the process. Every part hands out typed
 * records.
 */
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Audit } from './audit.js';
import { BackgroundProcesses } from './background-processes.js';
import { Executions } from './executions.js';
import { Journal } from './journal.js';
import { Logs } from './logs.js';
import { Outbox } from './outbox.js';
import { Packages } from './packages.js';
import { PullState } from './pull-state.js';
import { Pruning } from './retention.js';
import { createSchema } from './schema.js';
import { Steps } from './steps.js';
import { WriteQueue } from './write-queue.js';

export const STORE_FILE = 'runtime-agent.sqlite';

export interface StoreOptions {
  synchronous?: 'normal' | 'full';
  /** Hold the file's lock while open (default). Only tests that watch the file from a second connection turn it off. */
  exclusive?: boolean;
}

/** Another process (another agent) has the store open. */
export class StoreLockedError extends Error {
  constructor(readonly path: string) {
    super(
      `the store ${path} is in use by another runtime-agent process; stop that one or give this one its own DATA_DIR`,
    );
    this.name = 'StoreLockedError';
  }
}

export class Store {
  readonly path: string;
  readonly executions: Executions;
  readonly steps: Steps;
  readonly logs: Logs;
  readonly journal: Journal;
  readonly audit: Audit;
  readonly packages: Packages;
  readonly backgroundProcesses: BackgroundProcesses;
  readonly outbox: Outbox;
  readonly pullState: PullState;
  readonly pruning: Pruning;
  /** Told about a deferred write that failed (a log line, a progress counter); the agent logs it. */
  onDeferredError: (err: unknown) => void = () => {};
  private readonly db: Database.Database;
  private readonly queue: WriteQueue;
  /** UPDATE statements by table and column set, prepared once each. */
  private readonly updates = new Map<string, Database.Statement>();
  private closed = false;

  constructor(dataDir: string, options: StoreOptions = {}) {
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, STORE_FILE);
    this.db = new Database(this.path, { timeout: 0 });
    // One agent per data directory: the first one holds SQLite's exclusive lock for as long as it runs
    // (the kernel drops it when the process dies, even by SIGKILL), and a second one fails right here
    // instead of "recovering" executions the first one is still running.
    if (options.exclusive !== false) this.db.pragma('locking_mode = EXCLUSIVE');
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.exec('BEGIN IMMEDIATE; COMMIT');
    } catch (err) {
      this.db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new StoreLockedError(this.path);
      throw err;
    }
    this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    // Checkpoint the WAL every ~40 MB instead of every 4 MB: a checkpoint is the expensive part of a commit in WAL mode.
    this.db.pragma('wal_autocheckpoint = 10000');
    createSchema(this.db);
    const onError = (err: unknown) => this.onDeferredError(err);
    this.queue = new WriteQueue(this.db, onError);
    const flush = () => this.flush();
    const update = this.update.bind(this);
    this.steps = new Steps(this.db, this.queue, flush, update);
    this.executions = new Executions(this.db, this.queue, flush, this.steps, update);
    this.logs = new Logs(this.db, this.queue, flush, onError);
    this.journal = new Journal(this.db, this.queue, flush, onError);
    this.audit = new Audit(this.db, this.queue, flush);
    this.packages = new Packages(this.db, this.queue);
    this.backgroundProcesses = new BackgroundProcesses(this.db, this.queue, flush);
    this.outbox = new Outbox(this.db, this.queue, flush, onError);
    this.pullState = new PullState(this.db, this.queue);
    this.pruning = new Pruning(this.db, flush, (hashes) => this.executions.forgetStoredHashes(hashes));
  }

  /** Bytes on disk: the database file and its write-ahead log. */
  bytes(): number {
    let total = 0;
    for (const file of [this.path, `${this.path}-wal`]) {
      try {
        total += statSync(file).size;
      } catch {
        // no write-ahead log right after a checkpoint
      }
    }
    return total;
  }

  /** Commits everything pending (every read does this first). */
  flush(): void {
    if (!this.closed) this.queue.flush();
  }

  /** Called before an action with side effects starts: whatever state is still pending commits now. */
  flushBeforeSideEffect(): void {
    if (!this.closed) this.queue.flushDeferred();
  }

  isOpen(): boolean {
    return !this.closed && this.db.open;
  }

  close(): void {
    if (this.closed) return;
    this.queue.close();
    this.closed = true;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }

  /** An UPDATE of the given columns, positional parameters (the values, then the keys); one statement per column set. */
  private update(table: string, where: string, cols: Record<string, unknown>, keys: unknown[]): void {
    const names: string[] = [];
    const values: unknown[] = [];
    for (const c in cols) {
      const v = cols[c];
      if (v === undefined) continue;
      names.push(c);
      values.push(v);
    }
    if (names.length === 0) return;
    const key = `${table}|${names.join(',')}`;
    let stmt = this.updates.get(key);
    if (!stmt) {
      stmt = this.db.prepare(`UPDATE ${table} SET ${names.map((c) => `${c} = ?`).join(', ')} WHERE ${where}`);
      this.updates.set(key, stmt);
    }
    for (const k of keys) values.push(k);
    stmt.run(values);
  }
}

export type * from './types.js';

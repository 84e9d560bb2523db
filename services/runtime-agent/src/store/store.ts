/**
 * The embedded store: one SQLite file in WAL mode holding executions, steps,
 * outputs, logs, idempotency keys and registered packages. Writes are group
 * committed (see WriteOptions); an accepted execution is committed before its
 * caller is told so, and survives a crash of the process.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BatchInsert } from './batch-insert.js';

export const STORE_FILE = 'runtime-agent.sqlite';

export interface ExecutionRow {
  seq: number;
  id: string;
  workflow_id: string;
  workflow_name: string;
  status: string;
  dry_run: number;
  rollback_on_failure: number;
  /** JSON; secret values already masked. */
  parameters: string;
  /** JSON array of secret parameter names (their values are never stored). */
  secret_params: string;
  /** JSON of the package as run. */
  package: string;
  /** Derived on read: the main step now running. */
  current_step: string | null;
  /** Derived on read: main steps that reached succeeded, failed or skipped. */
  steps_completed: number;
  steps_total: number;
  /** JSON ErrorRecord or null. */
  error: string | null;
  rollback_status: string | null;
  rollback_trigger: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Name of the token that submitted it (`anonymous` without auth; null in stores from before auth). */
  submitted_by: string | null;
  /** Log lines refused past the per-execution limits; non-zero means the log was truncated. */
  dropped_log_lines: number;
}

/** One line of the audit log. */
export interface AuditRow {
  seq: number;
  ts: string;
  actor: string | null;
  role: string | null;
  method: string;
  path: string;
  status: number;
  execution_id: string | null;
  remote: string | null;
  /** JSON object or null. */
  detail: string | null;
}

export interface StepRow {
  execution_id: string;
  phase: 'main' | 'rollback';
  idx: number;
  name: string;
  adapter: string;
  action: string;
  status: string;
  attempts: number;
  /** For rollback steps: the main step it compensates, if any. */
  for_step: string | null;
  input: string | null;
  outputs: string | null;
  outputs_source: string | null;
  error: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface LogRow {
  seq: number;
  ts: string;
  level: string;
  step: string | null;
  stream: string | null;
  message: string;
}

/** Lines (also the last seq), bytes of message text and lines dropped past the limits, of one execution's log. */
export interface LogTally {
  lines: number;
  bytes: number;
  dropped: number;
}

export interface ListFilter {
  status?: string;
  workflow_id?: string;
  limit: number;
  /** Only executions older than this seq (the cursor). */
  before?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS executions (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  workflow_id TEXT NOT NULL,
  workflow_name TEXT NOT NULL,
  status TEXT NOT NULL,
  dry_run INTEGER NOT NULL,
  rollback_on_failure INTEGER NOT NULL,
  parameters TEXT NOT NULL,
  secret_params TEXT NOT NULL,
  -- The package lives in package_contents, once per distinct content: an execution row stays small,
  -- so the updates of a running execution rewrite one short row, not the whole package.
  package_hash TEXT NOT NULL,
  steps_total INTEGER NOT NULL,
  error TEXT,
  rollback_status TEXT,
  rollback_trigger TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  submitted_by TEXT,
  dropped_log_lines INTEGER NOT NULL DEFAULT 0
);
-- No secondary index on status or workflow_id: status changes several times per execution and each
-- index entry would be rewritten on the hot path; lists scan newest first and stop at their limit,
-- and recovery scans once at start. The rowid (seq) never reuses a value because retention never deletes the newest row.
CREATE TABLE IF NOT EXISTS steps (
  execution_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  idx INTEGER NOT NULL,
  name TEXT NOT NULL,
  adapter TEXT NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  for_step TEXT,
  input TEXT,
  outputs TEXT,
  outputs_source TEXT,
  error TEXT,
  started_at TEXT,
  finished_at TEXT,
  PRIMARY KEY (execution_id, phase, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
  execution_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ts TEXT NOT NULL,
  level TEXT NOT NULL,
  step TEXT,
  stream TEXT,
  message TEXT NOT NULL,
  PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  body_hash TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS package_contents (
  hash TEXT PRIMARY KEY,
  content TEXT NOT NULL
) WITHOUT ROWID;
-- Who changed what, when: every state-changing call and every refused one (audit.ts).
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  actor TEXT,
  role TEXT,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  status INTEGER NOT NULL,
  execution_id TEXT,
  remote TEXT,
  detail TEXT
);
CREATE TABLE IF NOT EXISTS packages (
  workflow_id TEXT PRIMARY KEY,
  content TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  -- The X-WPK-Signature it was registered with: with a key configured, it must verify to run by workflow_id.
  signature TEXT
);
`;

type Patch<T> = Partial<T>;

/**
 * An execution row with its package text joined back in, and its progress derived from its steps
 * (so that a running execution's own row is written only when its status changes).
 */
const SELECT_EXECUTION = `SELECT e.*, c.content AS package,
  (SELECT s.name FROM steps s WHERE s.execution_id = e.id AND s.phase = 'main' AND s.status = 'running' LIMIT 1) AS current_step,
  (SELECT COUNT(*) FROM steps s WHERE s.execution_id = e.id AND s.phase = 'main' AND s.status IN ('succeeded', 'failed', 'skipped')) AS steps_completed
  FROM executions e JOIN package_contents c ON c.hash = e.package_hash`;

/**
 * Executions retention may remove: ended, and with no rollback waiting or under way (whatever the engine
 * is still working on is excluded by the caller).
 */
const PRUNABLE = `e.status IN ('completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed') AND COALESCE(e.rollback_status, '') NOT IN ('pending', 'running')`;

/** An execution retention may remove; `log_lines` says how much deleting it costs. */
export interface PruneCandidate {
  seq: number;
  id: string;
  /** 1 when it ended before the age limit, 0 when it is only beyond the count. */
  by_age: number;
  log_lines: number;
}

/** How long log lines and progress counters may wait for a commit when nothing else is written. */
export const COSMETIC_FLUSH_MS = 50;

class WaitedWriteFailed extends Error {}

/** After a failed commit, how long until the pending writes are tried again. */
const RETRY_FLUSH_MS = 1000;

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

/** A queued write; `settle` (for writes a caller waits on) learns whether it committed. */
interface Deferred {
  run: () => void;
  settle?: (err?: unknown) => void;
}

/**
 * Deferred writes are committed together (group commit): critical ones (an
 * accepted execution, a status, the outcome of a step that changed something)
 * at the end of the current turn of the event loop, the rest (a read-only
 * step's outcome, a step's start) within COSMETIC_FLUSH_MS, log lines in
 * their own batches, and everything at once whenever someone must not go on
 * without it: every read flushes first, and the engine commits all pending
 * state before an action with side effects starts. A SIGKILL can therefore
 * lose only the critical writes of the turn it interrupts (recovery reports
 * that execution as interrupted) and the last few milliseconds of the rest.
 */
export interface WriteOptions {
  deferred?: boolean;
  /** A deferred write recovery depends on (an outcome, a status): committed at the end of this turn, not within COSMETIC_FLUSH_MS. */
  critical?: boolean;
}

export class Store {
  readonly path: string;
  private readonly db: Database.Database;
  /** Statements built from a few variable parts (update columns, list filters), prepared once each. */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly stmt: Record<string, Database.Statement>;
  private readonly insertSteps: BatchInsert<StepRow>;
  private readonly insertLogs: BatchInsert<[string, LogRow]>;
  private closed = false;
  private deferred: Deferred[] = [];
  private flushScheduled = false;
  private logBuffer: Array<[string, LogRow]> = [];
  /** Deferred patches not yet committed: execution id → row (see updateRow) → patch. */
  private readonly pendingPatches = new Map<string, Map<number, Record<string, unknown>>>();
  private timerScheduled = false;

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
    this.db.exec(SCHEMA);
    this.migrate();
    this.stmt = {
      insertExecution:
        this.db.prepare(`INSERT INTO executions (id, workflow_id, workflow_name, status, dry_run, rollback_on_failure, parameters,
        secret_params, package_hash, steps_total, error, rollback_status, rollback_trigger, created_at, started_at, finished_at, submitted_by)
        VALUES (@id, @workflow_id, @workflow_name, @status, @dry_run, @rollback_on_failure, @parameters, @secret_params, @package_hash, @steps_total, @error, @rollback_status, @rollback_trigger, @created_at, @started_at, @finished_at, @submitted_by)`),
      insertAudit: this.db.prepare(
        'INSERT INTO audit (ts, actor, role, method, path, status, execution_id, remote, detail) VALUES (@ts, @actor, @role, @method, @path, @status, @execution_id, @remote, @detail)',
      ),
      getExecution: this.db.prepare(`${SELECT_EXECUTION} WHERE e.id = ?`),
      getSteps: this.db.prepare('SELECT * FROM steps WHERE execution_id = ? ORDER BY phase, idx'),
      deleteSteps: this.db.prepare('DELETE FROM steps WHERE execution_id = ? AND phase = ?'),
      byStatus: this.db.prepare(`${SELECT_EXECUTION} WHERE e.status = ? ORDER BY e.seq`),
      putContent: this.db.prepare('INSERT OR IGNORE INTO package_contents (hash, content) VALUES (?, ?)'),
      getIdem: this.db.prepare('SELECT * FROM idempotency WHERE key = ?'),
      putIdem: this.db.prepare(
        'INSERT INTO idempotency (key, body_hash, execution_id, created_at) VALUES (?, ?, ?, ?)',
      ),
      getPackage: this.db.prepare('SELECT content, signature FROM packages WHERE workflow_id = ?'),
      putPackage: this.db.prepare(
        'INSERT INTO packages (workflow_id, content, updated_at, signature) VALUES (?, ?, ?, ?) ON CONFLICT(workflow_id) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at, signature = excluded.signature',
      ),
      countAll: this.db.prepare('SELECT COUNT(*) AS n FROM executions'),
    };
    this.insertSteps = new BatchInsert<StepRow>(
      this.db,
      'INSERT OR REPLACE INTO steps',
      [
        'execution_id',
        'phase',
        'idx',
        'name',
        'adapter',
        'action',
        'status',
        'attempts',
        'for_step',
        'input',
        'outputs',
        'outputs_source',
        'error',
        'started_at',
        'finished_at',
      ],
      (s) => [
        s.execution_id,
        s.phase,
        s.idx,
        s.name,
        s.adapter,
        s.action,
        s.status,
        s.attempts,
        s.for_step,
        s.input,
        s.outputs,
        s.outputs_source,
        s.error,
        s.started_at,
        s.finished_at,
      ],
    );
    this.insertLogs = new BatchInsert<[string, LogRow]>(
      this.db,
      'INSERT INTO logs',
      ['execution_id', 'seq', 'ts', 'level', 'step', 'stream', 'message'],
      ([id, r]) => [id, r.seq, r.ts, r.level, r.step, r.stream, r.message],
    );
  }

  /** Appends an audit line; committed with the turn's other critical writes (an accepted execution's among them). */
  appendAudit(row: Omit<AuditRow, 'seq'>): void {
    this.writeOrDefer({ deferred: true, critical: true }, () => this.stmt.insertAudit.run(row));
  }

  /** Deletes up to `limit` audit lines older than `before` (ISO time), oldest first, never the newest (its seq would be reused). */
  pruneAudit(before: string, limit: number): number {
    this.flush();
    return this.prepared(
      'DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE ts < @before AND seq < (SELECT MAX(seq) FROM audit) ORDER BY seq LIMIT @limit)',
    ).run({ before, limit }).changes;
  }

  /** Audit lines after `since` (seq), oldest first. */
  listAudit(filter: { since: number; limit: number; actor?: string; execution_id?: string }): AuditRow[] {
    this.flush();
    const where = ['seq > @since'];
    const params: Record<string, unknown> = { since: filter.since, limit: filter.limit };
    if (filter.actor !== undefined) {
      where.push('actor = @actor');
      params.actor = filter.actor;
    }
    if (filter.execution_id !== undefined) {
      where.push('execution_id = @execution_id');
      params.execution_id = filter.execution_id;
    }
    return this.prepared(`SELECT * FROM audit WHERE ${where.join(' AND ')} ORDER BY seq LIMIT @limit`).all(
      params,
    ) as AuditRow[];
  }

  /**
   * Inserts an execution, its pending steps and its idempotency key. Inserts made in the same turn of
   * the event loop share one commit (group commit); the promise resolves once this one is committed,
   * and is what an API answer waits for. Reads in the meantime see it (they flush first).
   */
  insertExecution(
    row: Omit<ExecutionRow, 'seq' | 'current_step' | 'steps_completed' | 'dropped_log_lines'>,
    steps: StepRow[],
    idempotency?: { key: string; bodyHash: string },
  ): Promise<void> {
    const { package: content, ...rest } = row;
    const hash = this.hashOf(content);
    return new Promise((resolve, reject) => {
      this.deferred.push({
        run: () => {
          if (!this.storedHashes.has(hash)) this.stmt.putContent.run(hash, content);
          this.stmt.insertExecution.run({ ...rest, package_hash: hash });
          this.insertSteps.run(steps);
          if (idempotency) this.stmt.putIdem.run(idempotency.key, idempotency.bodyHash, row.id, row.created_at);
        },
        settle: (err) => {
          if (err) return reject(err);
          // Committed: later executions of the same package need not write its text again.
          if (this.storedHashes.size >= 1024) this.storedHashes.clear();
          this.storedHashes.add(hash);
          resolve();
        },
      });
      this.scheduleFlush(true);
    });
  }

  updateExecution(id: string, patch: Patch<ExecutionRow>, options: WriteOptions = {}): void {
    this.updateRow(id, -1, 'executions', 'id = ?', patch, [id], options);
  }

  updateStep(
    executionId: string,
    phase: StepRow['phase'],
    idx: number,
    patch: Patch<StepRow>,
    options: WriteOptions = {},
  ): void {
    this.updateRow(
      executionId,
      phase === 'main' ? 2 * idx : 2 * idx + 1,
      'steps',
      'execution_id = ? AND phase = ? AND idx = ?',
      patch,
      [executionId, phase, idx],
      options,
    );
  }

  /**
   * Deferred updates of one row coalesce into one statement (a step's start and outcome, say). Pending
   * patches are found by execution id, then by `row`: -1 the execution, 2·idx a main step, 2·idx+1 a
   * rollback step (every step updates twice, and a composed string key would be built and hashed each time).
   */
  private updateRow(
    id: string,
    row: number,
    table: string,
    where: string,
    patch: Record<string, unknown>,
    keys: unknown[],
    options: WriteOptions,
  ): void {
    if (!options.deferred) return this.write(() => this.update(table, where, patch, keys));
    let rows = this.pendingPatches.get(id);
    const pending = rows?.get(row);
    if (pending) {
      for (const k in patch) if (patch[k] !== undefined) pending[k] = patch[k];
      this.scheduleFlush(options.critical === true);
      return;
    }
    const merged: Record<string, unknown> = {};
    for (const k in patch) merged[k] = patch[k];
    if (!rows) {
      rows = new Map();
      this.pendingPatches.set(id, rows);
    }
    rows.set(row, merged);
    const pendingRows = rows;
    this.writeOrDefer(options, () => {
      pendingRows.delete(row);
      if (pendingRows.size === 0 && this.pendingPatches.get(id) === pendingRows) this.pendingPatches.delete(id);
      this.update(table, where, merged, keys);
    });
  }

  /** Replaces the rollback plan of an execution. */
  replaceSteps(executionId: string, phase: StepRow['phase'], steps: StepRow[]): void {
    this.write(() => {
      this.stmt.deleteSteps.run(executionId, phase);
      this.insertSteps.run(steps);
    });
  }

  /** Commits `fn` now, together with every deferred write. */
  write(fn: () => void): void {
    this.commit(fn);
  }

  /** Commits everything pending: deferred writes and buffered log lines (before reads and on close). */
  flush(): void {
    this.flushDeferred();
    this.flushLogs();
  }

  private flushDeferred(): void {
    if (this.deferred.length === 0 || this.closed) return;
    this.commit();
  }

  /**
   * Log lines are buffered apart from state: a step's commit carries only its own row, and lines are
   * inserted in batches at most COSMETIC_FLUSH_MS later (or as soon as anyone reads).
   */
  private flushLogs(): void {
    if (this.logBuffer.length === 0 || this.closed) return;
    const rows = this.logBuffer;
    this.logBuffer = [];
    try {
      this.db.transaction(() => this.insertLogs.run(rows))();
    } catch (err) {
      this.onDeferredError(err);
    }
  }

  /**
   * One transaction for every deferred write (and `fn`). A write someone waits for must land whole or
   * not at all: when one fails, the transaction is redone with a savepoint around each such write, so
   * only the failed one is left out (failures are rare; savepoints on every write would cost each commit).
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
        if (!(err instanceof WaitedWriteFailed)) throw err;
        failed = new Map();
        this.db.transaction(() => this.runAll(work, failed, fn))();
      }
    } catch (err) {
      // Nothing of this batch landed. Callers waiting for their write hear so; the engine's own state
      // writes go back to the front of the queue and are tried again with the next commit.
      for (const settle of waiting) settle(err);
      this.deferred = [...work.filter((w) => !w.settle), ...this.deferred];
      throw err;
    }
    for (const w of work) if (w.settle) w.settle(failed?.get(w));
  }

  /** Hashes of recently stored package texts: a registry sends the same few packages again and again. */
  private readonly hashes = new Map<string, string>();
  /** Hashes whose package text is known to be committed in package_contents. */
  private readonly storedHashes = new Set<string>();

  private hashOf(content: string): string {
    let hash = this.hashes.get(content);
    if (hash === undefined) {
      hash = createHash('sha256').update(content).digest('hex');
      if (this.hashes.size >= 256) this.hashes.clear();
      this.hashes.set(content, hash);
    }
    return hash;
  }

  /** Told about a deferred write that failed; it never takes the commit it rides on down with it. */
  onDeferredError: (err: unknown) => void = () => {};

  /** Without `failed`, an awaited write that throws aborts the attempt; with it, each runs in a savepoint and failures are collected. */
  private runAll(work: Deferred[], failed: Map<Deferred, unknown> | undefined, fn?: () => void): void {
    for (const w of work) {
      try {
        if (w.settle && failed) this.db.transaction(w.run)();
        else w.run();
      } catch (err) {
        if (!w.settle) this.onDeferredError(err);
        else if (failed) failed.set(w, err);
        else throw new WaitedWriteFailed();
      }
    }
    fn?.();
  }

  private writeOrDefer(options: WriteOptions, fn: () => void): void {
    if (!options.deferred) return this.write(fn);
    this.deferred.push({ run: fn });
    this.scheduleFlush(options.critical === true);
  }

  /** Called before an action with side effects starts: whatever state is still pending commits now. */
  flushBeforeSideEffect(): void {
    this.flushDeferred();
  }

  /**
   * A critical write is committed at the end of this turn of the event loop, together with everything
   * else deferred; log lines and progress alone wait up to COSMETIC_FLUSH_MS for company.
   */
  private scheduleFlush(soon: boolean, delayMs = COSMETIC_FLUSH_MS): void {
    if (soon && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flushInBackground(() => this.flushDeferred());
      });
    } else if (!soon && !this.timerScheduled) {
      this.timerScheduled = true;
      setTimeout(() => {
        this.timerScheduled = false;
        this.flushInBackground(() => this.flush());
      }, delayMs).unref();
    }
  }

  /** A commit nobody is waiting for must not crash the process (a full disk, say): report it and try again later. */
  private flushInBackground(flush: () => void): void {
    try {
      flush();
    } catch (err) {
      this.onDeferredError(err);
      this.scheduleFlush(false, RETRY_FLUSH_MS);
    }
  }

  private prepared(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** An UPDATE of the given columns, positional parameters (the patch's values, then the key's); one prepared statement per column set. */
  private update(table: string, where: string, patch: Record<string, unknown>, keys: unknown[]): void {
    const cols: string[] = [];
    const values: unknown[] = [];
    for (const c in patch) {
      const v = patch[c];
      if (v === undefined) continue;
      cols.push(c);
      values.push(v);
    }
    if (cols.length === 0) return;
    const sqlKey = `${table}|${cols.join(',')}`;
    let stmt = this.statements.get(sqlKey);
    if (!stmt) {
      stmt = this.db.prepare(`UPDATE ${table} SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE ${where}`);
      this.statements.set(sqlKey, stmt);
    }
    for (const k of keys) values.push(k);
    stmt.run(values);
  }

  appendLog(executionId: string, row: LogRow): void {
    this.logBuffer.push([executionId, row]);
    if (!this.timerScheduled) {
      this.timerScheduled = true;
      setTimeout(() => {
        this.timerScheduled = false;
        this.flush();
      }, COSMETIC_FLUSH_MS).unref();
    }
  }

  /** What an execution has logged so far, for its ExecutionLog to go on from (limits hold across restarts). */
  logTally(executionId: string): LogTally {
    this.flush();
    return this.prepared(
      `SELECT COALESCE(MAX(seq), 0) AS lines, COALESCE(SUM(LENGTH(CAST(message AS BLOB))), 0) AS bytes,
        COALESCE((SELECT dropped_log_lines FROM executions WHERE id = @id), 0) AS dropped FROM logs WHERE execution_id = @id`,
    ).get({ id: executionId }) as LogTally;
  }

  getExecution(id: string): ExecutionRow | undefined {
    this.flush();
    return this.stmt.getExecution.get(id) as ExecutionRow | undefined;
  }

  getSteps(executionId: string): StepRow[] {
    this.flush();
    return this.stmt.getSteps.all(executionId) as StepRow[];
  }

  executionsWithStatus(status: string): ExecutionRow[] {
    this.flush();
    return this.stmt.byStatus.all(status) as ExecutionRow[];
  }

  countExecutions(): number {
    this.flush();
    return (this.stmt.countAll.get() as { n: number }).n;
  }

  listExecutions(filter: ListFilter): ExecutionRow[] {
    this.flush();
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit };
    if (filter.status) {
      where.push('e.status = @status');
      params.status = filter.status;
    }
    if (filter.workflow_id) {
      where.push('e.workflow_id = @workflow_id');
      params.workflow_id = filter.workflow_id;
    }
    if (filter.before !== undefined) {
      where.push('e.seq < @before');
      params.before = filter.before;
    }
    const sql = `${SELECT_EXECUTION} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY e.seq DESC LIMIT @limit`;
    return this.prepared(sql).all(params) as ExecutionRow[];
  }

  getLogs(executionId: string, opts: { since: number; limit: number; step?: string }): LogRow[] {
    this.flush();
    const sql = `SELECT seq, ts, level, step, stream, message FROM logs WHERE execution_id = @id AND seq > @since
      ${opts.step !== undefined ? 'AND step = @step' : ''} ORDER BY seq LIMIT @limit`;
    return this.prepared(sql).all({
      id: executionId,
      since: opts.since,
      limit: opts.limit,
      step: opts.step,
    }) as LogRow[];
  }

  findIdempotency(key: string): { body_hash: string; execution_id: string } | undefined {
    this.flush(); // a key accepted a moment ago may still be waiting for its commit
    return this.stmt.getIdem.get(key) as { body_hash: string; execution_id: string } | undefined;
  }

  /** Registers a package under its id; `signature` is the X-WPK-Signature it came with, if any. */
  putPackage(workflowId: string, content: string, signature: string | null = null): void {
    this.stmt.putPackage.run(workflowId, content, new Date().toISOString(), signature);
  }

  getPackage(workflowId: string): { content: string; signature: string | null } | undefined {
    return this.stmt.getPackage.get(workflowId) as { content: string; signature: string | null } | undefined;
  }

  // --- schema changes and retention ---------------------------------------------

  /** Columns added after a store file may have been created: older files get them with their defaults. */
  private migrate(): void {
    const columns = new Set(
      (this.db.prepare(`SELECT name FROM pragma_table_info('executions')`).all() as Array<{ name: string }>).map(
        (c) => c.name,
      ),
    );
    if (!columns.has('submitted_by')) this.db.exec('ALTER TABLE executions ADD COLUMN submitted_by TEXT');
    const packageColumns = new Set(
      (this.db.prepare(`SELECT name FROM pragma_table_info('packages')`).all() as Array<{ name: string }>).map(
        (c) => c.name,
      ),
    );
    if (!packageColumns.has('signature')) this.db.exec('ALTER TABLE packages ADD COLUMN signature TEXT');
    if (!columns.has('dropped_log_lines'))
      this.db.exec('ALTER TABLE executions ADD COLUMN dropped_log_lines INTEGER NOT NULL DEFAULT 0');
  }

  /**
   * The seq below which ended executions fall outside the newest `keep` prunable ones (0 when there are no
   * more than `keep`).
   */
  keepNewestSeq(keep: number): number {
    this.flush();
    const row = this.prepared(
      `SELECT e.seq FROM executions e WHERE ${PRUNABLE} ORDER BY e.seq DESC LIMIT 1 OFFSET @skip`,
    ).get({ skip: keep - 1 }) as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  /**
   * Prunable executions after `afterSeq`, oldest first: ended before `endedBefore` (ISO time; '' for none) or
   * below `belowSeq` (0 for none). Never the newest row of all: SQLite would give its seq out again, and
   * list cursors are seqs.
   */
  pruneCandidates(q: { afterSeq: number; endedBefore: string; belowSeq: number; limit: number }): PruneCandidate[] {
    this.flush();
    return this.prepared(
      `SELECT e.seq, e.id, COALESCE(e.finished_at, e.created_at) < @endedBefore AS by_age,
        COALESCE((SELECT MAX(l.seq) - MIN(l.seq) + 1 FROM logs l WHERE l.execution_id = e.id), 0) AS log_lines
      FROM executions e WHERE e.seq > @afterSeq AND ${PRUNABLE}
        AND (COALESCE(e.finished_at, e.created_at) < @endedBefore OR e.seq < @belowSeq)
        AND e.seq < (SELECT MAX(seq) FROM executions)
      ORDER BY e.seq LIMIT @limit`,
    ).all(q) as PruneCandidate[];
  }

  /** Deletes up to `max` of the oldest log lines of one execution (one whose log is too long for one batch). */
  deleteOldestLogs(executionId: string, max: number): number {
    this.flush();
    return this.db.transaction(
      () =>
        this.prepared(
          'DELETE FROM logs WHERE execution_id = @id AND seq < (SELECT MIN(seq) FROM logs WHERE execution_id = @id) + @max',
        ).run({ id: executionId, max }).changes,
    )();
  }

  /**
   * Deletes executions with their steps, logs and idempotency keys, and the package texts no execution
   * uses any more, in one transaction of its own (a failure here never takes an API caller's write down).
   */
  deleteExecutions(ids: string[]): { executions: number; packages: number } {
    this.flush();
    const list = JSON.stringify(ids);
    const out = this.db.transaction(() => {
      const hashes = (
        this.prepared(
          'SELECT DISTINCT package_hash AS hash FROM executions WHERE id IN (SELECT value FROM json_each(?))',
        ).all(list) as Array<{ hash: string }>
      ).map((h) => h.hash);
      for (const table of ['steps', 'logs', 'idempotency'])
        this.prepared(`DELETE FROM ${table} WHERE execution_id IN (SELECT value FROM json_each(?))`).run(list);
      const executions = this.prepared('DELETE FROM executions WHERE id IN (SELECT value FROM json_each(?))').run(
        list,
      ).changes;
      // The subquery is not correlated: SQLite reads the executions once per batch, not once per hash.
      const orphans = (
        this.prepared(
          'SELECT value AS hash FROM json_each(?) WHERE value NOT IN (SELECT package_hash FROM executions)',
        ).all(JSON.stringify(hashes)) as Array<{ hash: string }>
      ).map((h) => h.hash);
      this.prepared('DELETE FROM package_contents WHERE hash IN (SELECT value FROM json_each(?))').run(
        JSON.stringify(orphans),
      );
      return { executions, orphans };
    })();
    // A later insert of the same package must write its text again.
    for (const h of out.orphans) this.storedHashes.delete(h);
    return { executions: out.executions, packages: out.orphans.length };
  }

  isOpen(): boolean {
    return !this.closed && this.db.open;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}

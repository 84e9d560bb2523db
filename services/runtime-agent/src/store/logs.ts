/**
 * Execution logs: numbered lines per execution. Lines are buffered apart from state, so a step's commit
 * carries only its own row, and are inserted in batches within COSMETIC_FLUSH_MS (or as soon as anyone reads).
 */
import type Database from 'better-sqlite3';
import { BatchInsert } from './batch-insert.js';
import type { LogLine, LogTally } from './types.js';
import type { WriteQueue } from './write-queue.js';

export class Logs {
  private buffer: Array<[string, LogLine]> = [];
  private readonly insert: BatchInsert<[string, LogLine]>;
  private readonly stmt: Record<'tally' | 'page' | 'pageOfStep' | 'deleteOldest', Database.Statement>;

  constructor(
    private readonly db: Database.Database,
    private readonly queue: WriteQueue,
    private readonly flush: () => void,
    private readonly onError: (err: unknown) => void,
  ) {
    this.insert = new BatchInsert<[string, LogLine]>(
      db,
      'INSERT INTO logs',
      ['execution_id', 'seq', 'ts', 'level', 'step', 'stream', 'message'],
      ([id, r]) => [id, r.seq, r.ts, r.level, r.step, r.stream, r.message],
    );
    const page = 'SELECT seq, ts, level, step, stream, message FROM logs WHERE execution_id = @id AND seq > @since';
    this.stmt = {
      tally: db.prepare(
        `SELECT COALESCE(MAX(seq), 0) AS lines, COALESCE(SUM(LENGTH(CAST(message AS BLOB))), 0) AS bytes,
          COALESCE((SELECT dropped_log_lines FROM executions WHERE id = @id), 0) AS dropped FROM logs WHERE execution_id = @id`,
      ),
      page: db.prepare(`${page} ORDER BY seq LIMIT @limit`),
      pageOfStep: db.prepare(`${page} AND step = @step ORDER BY seq LIMIT @limit`),
      deleteOldest: db.prepare(
        'DELETE FROM logs WHERE execution_id = @id AND seq < (SELECT MIN(seq) FROM logs WHERE execution_id = @id) + @max',
      ),
    };
    queue.addBuffer(() => this.flushBuffer());
  }

  append(executionId: string, line: LogLine): void {
    this.buffer.push([executionId, line]);
    this.queue.scheduleCosmetic();
  }

  /** Lines after `since`, oldest first; with `step`, only that step's. */
  page(executionId: string, opts: { since: number; limit: number; step?: string }): LogLine[] {
    this.flush();
    const params = { id: executionId, since: opts.since, limit: opts.limit, step: opts.step };
    return (opts.step === undefined ? this.stmt.page : this.stmt.pageOfStep).all(params) as LogLine[];
  }

  /** What an execution has logged so far, for its log to go on from (limits hold across restarts). */
  tally(executionId: string): LogTally {
    this.flush();
    return this.stmt.tally.get({ id: executionId }) as LogTally;
  }

  /** Deletes up to `max` of the oldest lines of one execution (one whose log is too long for one batch). */
  deleteOldest(executionId: string, max: number): number {
    this.flush();
    return this.db.transaction(() => this.stmt.deleteOldest.run({ id: executionId, max }).changes)();
  }

  private flushBuffer(): void {
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    try {
      this.db.transaction(() => this.insert.run(rows))();
    } catch (err) {
      this.onError(err);
    }
  }
}

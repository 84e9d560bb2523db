/** The store's side of retention: which ended executions may go, and deleting them with everything they own. */
import type Database from 'better-sqlite3';
import { Statements } from './statements.js';

/**
 * Executions retention may remove: ended, and with no rollback waiting or under way (whatever the engine
 * is still working on is excluded by the caller).
 */
const PRUNABLE = `e.status IN ('completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed') AND COALESCE(e.rollback_status, '') NOT IN ('pending', 'running')
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.execution_id = e.id AND o.state = 'pending')`;

/** An execution retention may remove; `logLines` says how much deleting it costs. */
export interface PruneCandidate {
  seq: number;
  id: string;
  /** True when it ended before the age limit, false when it is only beyond the count. */
  byAge: boolean;
  logLines: number;
}

export class Pruning {
  private readonly statements: Statements;

  constructor(
    private readonly db: Database.Database,
    private readonly flush: () => void,
    /** Told which package texts were deleted (a later insert of the same package must write it again). */
    private readonly onPackagesDeleted: (hashes: string[]) => void,
  ) {
    this.statements = new Statements(db);
  }

  /** The seq below which ended executions fall outside the newest `keep` prunable ones (0 when there are no more than `keep`). */
  keepNewestSeq(keep: number): number {
    this.flush();
    const row = this.statements
      .get(`SELECT e.seq FROM executions e WHERE ${PRUNABLE} ORDER BY e.seq DESC LIMIT 1 OFFSET @skip`)
      .get({ skip: keep - 1 }) as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  /**
   * Prunable executions after `afterSeq`, oldest first: ended before `endedBefore` (ISO time; '' for none) or
   * below `belowSeq` (0 for none). Never the newest row of all: SQLite would give its seq out again, and
   * list cursors are seqs.
   */
  candidates(q: { afterSeq: number; endedBefore: string; belowSeq: number; limit: number }): PruneCandidate[] {
    this.flush();
    const rows = this.statements
      .get(
        `SELECT e.seq, e.id, COALESCE(e.finished_at, e.created_at) < @endedBefore AS by_age,
        COALESCE((SELECT MAX(l.seq) - MIN(l.seq) + 1 FROM logs l WHERE l.execution_id = e.id), 0) AS log_lines
      FROM executions e WHERE e.seq > @afterSeq AND ${PRUNABLE}
        AND (COALESCE(e.finished_at, e.created_at) < @endedBefore OR e.seq < @belowSeq)
        AND e.seq < (SELECT MAX(seq) FROM executions)
      ORDER BY e.seq LIMIT @limit`,
      )
      .all(q) as Array<{ seq: number; id: string; by_age: number; log_lines: number }>;
    return rows.map((r) => ({ seq: r.seq, id: r.id, byAge: r.by_age === 1, logLines: r.log_lines }));
  }

  /**
   * Deletes executions with their steps, logs, journal events, deliveries and idempotency keys, and the package texts
   * no execution uses any more, in one transaction of its own (a failure here never takes an API caller's
   * write down).
   */
  deleteExecutions(ids: string[]): { executions: number; packages: number } {
    this.flush();
    const list = JSON.stringify(ids);
    const out = this.db.transaction(() => {
      const hashes = (
        this.statements
          .get('SELECT DISTINCT package_hash AS hash FROM executions WHERE id IN (SELECT value FROM json_each(?))')
          .all(list) as Array<{ hash: string }>
      ).map((h) => h.hash);
      for (const table of ['steps', 'logs', 'events', 'idempotency', 'outbox'])
        this.statements.get(`DELETE FROM ${table} WHERE execution_id IN (SELECT value FROM json_each(?))`).run(list);
      const executions = this.statements
        .get('DELETE FROM executions WHERE id IN (SELECT value FROM json_each(?))')
        .run(list).changes;
      const orphans = (
        this.statements
          .get(
            'SELECT value AS hash FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM executions WHERE package_hash = value)',
          )
          .all(JSON.stringify(hashes)) as Array<{ hash: string }>
      ).map((h) => h.hash);
      this.statements
        .get('DELETE FROM package_contents WHERE hash IN (SELECT value FROM json_each(?))')
        .run(JSON.stringify(orphans));
      return { executions, orphans };
    })();
    this.onPackagesDeleted(out.orphans);
    return { executions: out.executions, packages: out.orphans.length };
  }
}

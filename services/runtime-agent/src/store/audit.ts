/** The audit log: who changed what, when (written by the HTTP layer, read by admins). */
import type Database from 'better-sqlite3';
import { Conditions, Statements } from './statements.js';
import type { AuditEntry } from './types.js';
import type { WriteQueue } from './write-queue.js';

export class Audit {
  private readonly insert: Database.Statement;
  private readonly prune: Database.Statement;
  private readonly statements: Statements;

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
    private readonly flush: () => void,
  ) {
    this.statements = new Statements(db);
    this.insert = db.prepare(
      'INSERT INTO audit (ts, actor, role, method, path, status, execution_id, remote, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.prune = db.prepare(
      'DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE ts < @before AND seq < (SELECT MAX(seq) FROM audit) ORDER BY seq LIMIT @limit)',
    );
  }

  /** Appends a line; committed with the turn's other critical writes (an accepted execution's among them). */
  append(e: Omit<AuditEntry, 'seq'>): void {
    const detail = e.detail === null ? null : JSON.stringify(e.detail);
    this.queue.write({ deferred: true, critical: true }, () =>
      this.insert.run(e.ts, e.actor, e.role, e.method, e.path, e.status, e.execution_id, e.remote, detail),
    );
  }

  /** Lines after `since` (seq), oldest first. */
  list(filter: { since: number; limit: number; actor?: string; executionId?: string }): AuditEntry[] {
    this.flush();
    const c = new Conditions({ since: filter.since, limit: filter.limit })
      .add('seq > @since', 'since', filter.since)
      .add('actor = @actor', 'actor', filter.actor)
      .add('execution_id = @execution_id', 'execution_id', filter.executionId);
    const sql = `SELECT * FROM audit ${c.where()} ORDER BY seq LIMIT @limit`;
    const rows = this.statements.get(sql).all(c.params) as Array<AuditEntry & { detail: string | null }>;
    return rows.map((r) => ({ ...r, detail: r.detail === null ? null : JSON.parse(r.detail) }));
  }

  /** Deletes up to `limit` lines older than `before` (ISO time), oldest first, never the newest (its seq would be reused). */
  pruneOlderThan(before: string, limit: number): number {
    this.flush();
    return this.prune.run({ before, limit }).changes;
  }
}

/** Pull mode's own small state (a claim's Idempotency-Key until the claim is answered), committed at once. */
import type Database from 'better-sqlite3';
import type { WriteQueue } from './write-queue.js';

export class PullState {
  private readonly getStmt: Database.Statement;
  private readonly setStmt: Database.Statement;
  private readonly deleteStmt: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
  ) {
    this.getStmt = db.prepare('SELECT value FROM pull_state WHERE key = ?');
    this.setStmt = db.prepare('INSERT OR REPLACE INTO pull_state (key, value) VALUES (?, ?)');
    this.deleteStmt = db.prepare('DELETE FROM pull_state WHERE key = ?');
  }

  get(key: string): string | undefined {
    return (this.getStmt.get(key) as { value: string } | undefined)?.value;
  }

  set(key: string, value: string): void {
    this.queue.write({}, () => this.setStmt.run(key, value));
  }

  delete(key: string): void {
    this.queue.write({}, () => this.deleteStmt.run(key));
  }
}

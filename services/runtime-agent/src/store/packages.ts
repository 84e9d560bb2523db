/** Packages registered by `POST /execute` with `wpk_content`, runnable later by `workflow_id`. */
import type Database from 'better-sqlite3';
import type { Wpk } from '../wpk/types.js';
import type { WriteQueue } from './write-queue.js';

export interface RegisteredPackage {
  workflowId: string;
  wpk: Wpk;
  /** The package as JSON text, as stored. */
  json: string;
  updatedAt: string;
  /** The X-WPK-Signature it was registered with, if any. */
  signature: string | null;
}

interface PackageRow {
  workflow_id: string;
  content: string;
  updated_at: string;
  signature: string | null;
}

const toPackage = (r: PackageRow): RegisteredPackage => ({
  workflowId: r.workflow_id,
  wpk: JSON.parse(r.content) as Wpk,
  json: r.content,
  updatedAt: r.updated_at,
  signature: r.signature,
});

export class Packages {
  private readonly stmt: Record<'put' | 'get' | 'list', Database.Statement>;

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
  ) {
    this.stmt = {
      put: db.prepare(
        `INSERT INTO packages (workflow_id, content, updated_at, signature) VALUES (?, ?, ?, ?)
        ON CONFLICT(workflow_id) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at, signature = excluded.signature`,
      ),
      get: db.prepare('SELECT * FROM packages WHERE workflow_id = ?'),
      list: db.prepare('SELECT * FROM packages ORDER BY updated_at DESC'),
    };
  }

  /** Registers a package under its id, committed at once; `signature` is the X-WPK-Signature it came with. */
  put(workflowId: string, json: string, signature: string | null = null): void {
    this.queue.write({}, () => this.stmt.put.run(workflowId, json, new Date().toISOString(), signature));
  }

  get(workflowId: string): RegisteredPackage | undefined {
    const row = this.stmt.get.get(workflowId) as PackageRow | undefined;
    return row && toPackage(row);
  }

  /** Every registered package, most recently registered first. */
  list(): RegisteredPackage[] {
    return (this.stmt.list.all() as PackageRow[]).map(toPackage);
  }
}

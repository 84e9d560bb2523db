import type Database from 'better-sqlite3';

/** Statements built from a few variable parts (filters, column sets), each prepared once. */
export class Statements {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let stmt = this.cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.cache.set(sql, stmt);
    }
    return stmt;
  }
}

/** The conditions of a query built from optional filters: each is added only when its value is given. */
export class Conditions {
  readonly clauses: string[] = [];

  constructor(readonly params: Record<string, unknown>) {}

  /** Adds `clause` with `@name` bound to `value`, unless `value` is undefined. */
  add(clause: string, name: string, value: unknown): this {
    if (value !== undefined) {
      this.clauses.push(clause);
      this.params[name] = value;
    }
    return this;
  }

  /** `WHERE a AND b`, or nothing. */
  where(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

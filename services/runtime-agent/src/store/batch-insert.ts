import type Database from 'better-sqlite3';

/** Rows per statement: executing a statement costs about as much as inserting a row, so rows go in groups. */
export const ROWS_PER_INSERT = 32;

/**
 * An INSERT of many rows at a time (the pending steps of a new execution, buffered log lines): full groups
 * through one multi-row statement, the rest one row at a time. `values` lists a row's column values in
 * `columns` order.
 */
export class BatchInsert<R> {
  private readonly one: Database.Statement;
  private readonly many: Database.Statement;
  private readonly group: unknown[];

  constructor(
    db: Database.Database,
    head: string,
    private readonly columns: readonly string[],
    private readonly values: (row: R) => unknown[],
  ) {
    const tuple = `(${columns.map(() => '?').join(', ')})`;
    const sql = `${head} (${columns.join(', ')}) VALUES `;
    this.one = db.prepare(sql + tuple);
    this.many = db.prepare(sql + Array(ROWS_PER_INSERT).fill(tuple).join(', '));
    this.group = new Array(ROWS_PER_INSERT * columns.length);
  }

  /** Inserts `rows`; call it inside a transaction. */
  run(rows: readonly R[]): void {
    const width = this.columns.length;
    let i = 0;
    for (; i + ROWS_PER_INSERT <= rows.length; i += ROWS_PER_INSERT) {
      for (let j = 0; j < ROWS_PER_INSERT; j++) {
        const v = this.values(rows[i + j]);
        for (let c = 0; c < width; c++) this.group[j * width + c] = v[c];
      }
      this.many.run(this.group);
    }
    for (; i < rows.length; i++) this.one.run(this.values(rows[i]));
  }
}

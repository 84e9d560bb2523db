/** The store's tables and indexes, and the columns added to files created by earlier versions. */
import type Database from 'better-sqlite3';

const TABLES = `
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
-- Who changed what, when: every state-changing call and every refused one.
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
-- The event journal. AUTOINCREMENT: a seq is never given out again, even after retention deleted the
-- newest events, so a client resuming from its last seq can never be handed someone else's event.
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL,
  type TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  step TEXT,
  data TEXT NOT NULL
);
-- Processes a step left running on purpose (shell.start): the agent ends them when the execution that
-- started them ends other than completed, at shutdown, and at the next start after a crash.
CREATE TABLE IF NOT EXISTS background_processes (
  pid INTEGER NOT NULL,
  start_ticks INTEGER NOT NULL,
  execution_id TEXT NOT NULL,
  step TEXT NOT NULL,
  command TEXT NOT NULL,
  started_at TEXT NOT NULL,
  PRIMARY KEY (pid, start_ticks)
);
-- Pull mode's own state (pull/puller.ts): the Idempotency-Key of a claim not yet answered.
CREATE TABLE IF NOT EXISTS pull_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
-- Results still to deliver, and what became of those delivered (outbox.ts). A row is written in the same
-- transaction as the state it reports; its body is rendered then and never again, so every retry sends the
-- same bytes under the same delivery_id.
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  event TEXT NOT NULL,
  target TEXT NOT NULL,
  body TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT,
  last_status INTEGER,
  created_at TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  delivered_at TEXT
);
`;

/** Columns added after a store file may have been created: older files get them with their defaults. */
const ADDED_COLUMNS: Array<{ table: string; column: string; ddl: string }> = [
  { table: 'executions', column: 'submitted_by', ddl: 'TEXT' },
  { table: 'executions', column: 'dropped_log_lines', ddl: 'INTEGER NOT NULL DEFAULT 0' },
  { table: 'executions', column: 'rollback_requested_by', ddl: 'TEXT' },
  { table: 'executions', column: 'retry_of', ddl: 'TEXT' },
  { table: 'executions', column: 'retried_by', ddl: 'TEXT' },
  { table: 'packages', column: 'signature', ddl: 'TEXT' },
  { table: 'steps', column: 'reason', ddl: 'TEXT' },
  { table: 'steps', column: 'processes', ddl: 'TEXT' },
  { table: 'executions', column: 'callback_url', ddl: 'TEXT' },
  { table: 'executions', column: 'task_id', ddl: 'TEXT' },
  { table: 'executions', column: 'task_type', ddl: 'TEXT' },
];

/**
 * What the list and journal queries filter and sort on. A list by status (or by workflow) reads each status's newest
 * rows from its own index range and merges them (executions.ts), so it stays flat as the store grows;
 * the price is one index entry rewritten per status change, a few per execution.
 */
const INDEXES = `
CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, seq);
CREATE INDEX IF NOT EXISTS executions_by_workflow ON executions (workflow_id, status, seq);
CREATE INDEX IF NOT EXISTS executions_by_created ON executions (created_at);
CREATE INDEX IF NOT EXISTS executions_by_package ON executions (package_hash);
-- Recovery's question at every start, answered without reading every failed execution.
CREATE INDEX IF NOT EXISTS executions_rollback_pending ON executions (seq) WHERE status = 'failed' AND rollback_status = 'pending';
CREATE INDEX IF NOT EXISTS idempotency_by_execution ON idempotency (execution_id);
CREATE INDEX IF NOT EXISTS events_by_execution ON events (execution_id, seq);
CREATE INDEX IF NOT EXISTS events_by_workflow ON events (workflow_id, seq);
CREATE INDEX IF NOT EXISTS audit_by_ts ON audit (ts);
CREATE UNIQUE INDEX IF NOT EXISTS executions_by_task ON executions (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS background_processes_by_execution ON background_processes (execution_id);
-- The delivery loop's question (what is due, oldest first) and /health's (how many wait, since when).
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_by_execution ON outbox (execution_id, seq);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (kind, state, created_ms);
`;

export function createSchema(db: Database.Database): void {
  db.exec(TABLES);
  for (const { table, column, ddl } of ADDED_COLUMNS) {
    const columns = db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${ddl}`);
  }
  db.exec(INDEXES);
}

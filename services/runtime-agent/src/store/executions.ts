/** Executions: inserted with their pending steps and idempotency key, updated as they run, listed newest first. */
import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import type { Wpk } from '../wpk/types.js';
import { Conditions, Statements } from './statements.js';
import type { Steps } from './steps.js';
import {
  EXECUTION_STATUSES,
  type Execution,
  type ExecutionFilter,
  type ExecutionPatch,
  type ExecutionStatus,
  type NewExecution,
  type RunningTask,
  type Step,
} from './types.js';
import type { WriteOptions, WriteQueue } from './write-queue.js';

/**
 * An execution row with its progress derived from its steps (so that a running execution's own row is
 * written only when its status changes).
 */
const STEPS_COMPLETED = `(SELECT COUNT(*) FROM steps s WHERE s.execution_id = e.id AND s.phase = 'main'
  AND s.status IN ('succeeded', 'failed', 'skipped')) AS steps_completed`;
const SELECT = `SELECT e.*,
  (SELECT s.name FROM steps s WHERE s.execution_id = e.id AND s.phase = 'main' AND s.status = 'running' LIMIT 1) AS current_step,
  ${STEPS_COMPLETED}
  FROM executions e`;

/** A list's time bounds, each turned into a seq bound: the seq of the first (or last) execution inside it. */
const TIME_BOUNDS = [
  { name: 'since', op: '>=', order: 'created_at' },
  { name: 'until', op: '<=', order: 'created_at DESC' },
] as const;

interface ExecutionRow {
  seq: number;
  id: string;
  workflow_id: string;
  workflow_name: string;
  status: ExecutionStatus;
  dry_run: number;
  rollback_on_failure: number;
  parameters: string;
  secret_params: string;
  current_step: string | null;
  steps_completed: number;
  steps_total: number;
  error: string | null;
  rollback_status: Execution['rollbackStatus'];
  rollback_trigger: Execution['rollbackTrigger'];
  rollback_requested_by: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  submitted_by: string | null;
  dropped_log_lines: number;
  retry_of: string | null;
  retried_by: string | null;
  callback_url: string | null;
  task_id: string | null;
  task_type: string | null;
}

function toExecution(r: ExecutionRow): Execution {
  return {
    seq: r.seq,
    id: r.id,
    workflowId: r.workflow_id,
    workflowName: r.workflow_name,
    status: r.status,
    dryRun: r.dry_run === 1,
    rollbackOnFailure: r.rollback_on_failure === 1,
    parameters: JSON.parse(r.parameters),
    secretParams: JSON.parse(r.secret_params),
    currentStep: r.current_step,
    stepsCompleted: r.steps_completed,
    stepsTotal: r.steps_total,
    error: r.error === null ? null : JSON.parse(r.error),
    rollbackStatus: r.rollback_status,
    rollbackTrigger: r.rollback_trigger,
    rollbackRequestedBy: r.rollback_requested_by,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    submittedBy: r.submitted_by,
    droppedLogLines: r.dropped_log_lines,
    retryOf: r.retry_of,
    retriedBy: r.retried_by,
    callbackUrl: r.callback_url,
    task: r.task_id === null ? null : { id: r.task_id, type: r.task_type ?? '' },
  };
}

/** The columns of an execution patch. */
function patchColumns(p: ExecutionPatch): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (p.status !== undefined) out.status = p.status;
  if (p.error !== undefined) out.error = p.error === null ? null : JSON.stringify(p.error);
  if (p.rollbackStatus !== undefined) out.rollback_status = p.rollbackStatus;
  if (p.rollbackTrigger !== undefined) out.rollback_trigger = p.rollbackTrigger;
  if (p.rollbackRequestedBy !== undefined) out.rollback_requested_by = p.rollbackRequestedBy;
  if (p.startedAt !== undefined) out.started_at = p.startedAt;
  if (p.finishedAt !== undefined) out.finished_at = p.finishedAt;
  if (p.droppedLogLines !== undefined) out.dropped_log_lines = p.droppedLogLines;
  return out;
}

/** One execution as the overview sees it (Executions.created). */
export interface CreatedRow {
  workflowId: string;
  status: ExecutionStatus;
  startedAt: string | null;
  finishedAt: string | null;
}

export class Executions {
  private readonly stmt: Record<
    | 'insert'
    | 'get'
    | 'status'
    | 'byStatus'
    | 'rollbackPending'
    | 'putContent'
    | 'getIdem'
    | 'putIdem'
    | 'count'
    | 'packageOf'
    | 'markRetried'
    | 'byTask'
    | 'runningTasks',
    Database.Statement
  >;
  private readonly statements: Statements;
  /** Hashes of recently stored package texts: a registry sends the same few packages again and again. */
  private readonly hashes = new Map<string, string>();
  /** Hashes whose package text is known to be committed in package_contents. */
  private readonly storedHashes = new Set<string>();

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
    private readonly flush: () => void,
    private readonly steps: Steps,
    private readonly update: (table: string, where: string, cols: Record<string, unknown>, keys: unknown[]) => void,
  ) {
    this.statements = new Statements(db);
    this.stmt = {
      insert: db.prepare(`INSERT INTO executions (id, workflow_id, workflow_name, status, dry_run, rollback_on_failure,
        parameters, secret_params, package_hash, steps_total, created_at, submitted_by, retry_of, callback_url,
        task_id, task_type)
        VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      byTask: db.prepare(`${SELECT} WHERE e.task_id = ?`),
      runningTasks: db.prepare(`SELECT e.id, e.task_id, e.status, e.steps_total, ${STEPS_COMPLETED}
        FROM executions e WHERE e.status IN ('pending', 'running', 'rolling_back') AND e.task_id IS NOT NULL
        ORDER BY e.seq`),
      markRetried: db.prepare('UPDATE executions SET retried_by = ? WHERE id = ?'),
      get: db.prepare(`${SELECT} WHERE e.id = ?`),
      byStatus: db.prepare(`${SELECT} WHERE e.status = ? ORDER BY e.seq`),
      status: db.prepare('SELECT status FROM executions WHERE id = ?'),
      rollbackPending: db.prepare(
        `${SELECT} WHERE e.status = 'failed' AND e.rollback_status = 'pending' ORDER BY e.seq`,
      ),
      putContent: db.prepare('INSERT OR IGNORE INTO package_contents (hash, content) VALUES (?, ?)'),
      getIdem: db.prepare('SELECT body_hash, execution_id FROM idempotency WHERE key = ?'),
      putIdem: db.prepare('INSERT INTO idempotency (key, body_hash, execution_id, created_at) VALUES (?, ?, ?, ?)'),
      count: db.prepare('SELECT COUNT(*) AS n FROM executions'),
      packageOf: db.prepare(
        'SELECT c.content FROM executions e JOIN package_contents c ON c.hash = e.package_hash WHERE e.id = ?',
      ),
    };
  }

  /**
   * Inserts an execution, its steps and its idempotency key, with `alongside` (its journal events) in the same
   * transaction; a retry also marks the execution it retries (`retried_by`). Inserts made in the same turn of the event loop share one commit; the promise
   * resolves once this one is committed, and is what an API answer waits for. Reads in the meantime see it.
   */
  insert(
    e: NewExecution,
    steps: Step[],
    idempotency?: { key: string; bodyHash: string },
    alongside: Array<{ write: () => void }> = [],
  ): Promise<void> {
    const hash = this.hashOf(e.packageJson);
    const parameters = JSON.stringify(e.parameters);
    const secretParams = JSON.stringify(e.secretParams);
    return this.queue.writeAwaited(
      () => {
        if (!this.storedHashes.has(hash)) this.stmt.putContent.run(hash, e.packageJson);
        this.stmt.insert.run(
          e.id,
          e.workflowId,
          e.workflowName,
          e.dryRun ? 1 : 0,
          e.rollbackOnFailure ? 1 : 0,
          parameters,
          secretParams,
          hash,
          e.stepsTotal,
          e.createdAt,
          e.submittedBy,
          e.retryOf ?? null,
          e.callbackUrl ?? null,
          e.task?.id ?? null,
          e.task?.type ?? null,
        );
        this.steps.insertRows(steps);
        if (e.retryOf !== undefined) this.stmt.markRetried.run(e.id, e.retryOf);
        if (idempotency) this.stmt.putIdem.run(idempotency.key, idempotency.bodyHash, e.id, e.createdAt);
        for (const w of alongside) w.write();
      },
      () => {
        // Committed: later executions of the same package need not write its text again.
        if (this.storedHashes.size >= 1024) this.storedHashes.clear();
        this.storedHashes.add(hash);
      },
    );
  }

  patch(id: string, patch: ExecutionPatch, options: WriteOptions = {}): void {
    this.queue.patch(id, -1, patchColumns(patch), (cols) => this.update('executions', 'id = ?', cols, [id]), options);
  }

  get(id: string): Execution | undefined {
    this.flush();
    return this.read(id);
  }

  /** As `get`, without committing what is pending first: for a write that reads inside its own transaction. */
  read(id: string): Execution | undefined {
    const row = this.stmt.get.get(id) as ExecutionRow | undefined;
    return row && toExecution(row);
  }

  /** Just the status (a stream's last word), without the progress the full record derives. */
  statusOf(id: string): ExecutionStatus | undefined {
    this.flush();
    return (this.stmt.status.get(id) as { status: ExecutionStatus } | undefined)?.status;
  }

  /** The package an execution runs, as stored when it was submitted. */
  packageOf(id: string): Wpk {
    this.flush();
    const row = this.stmt.packageOf.get(id) as { content: string } | undefined;
    if (!row) throw new Error(`execution ${id} has no stored package`);
    return JSON.parse(row.content) as Wpk;
  }

  /** Every execution in `status`, oldest first (what recovery looks at). */
  /** The execution a pull-mode task runs as. */
  byTask(taskId: string): Execution | undefined {
    this.flush();
    const row = this.stmt.byTask.get(taskId) as ExecutionRow | undefined;
    return row && toExecution(row);
  }

  /** Pull-mode tasks not ended yet, oldest first: what a heartbeat tells the Manager. */
  runningTasks(): RunningTask[] {
    this.flush();
    const rows = this.stmt.runningTasks.all() as Array<{
      id: string;
      task_id: string;
      status: ExecutionStatus;
      steps_total: number;
      steps_completed: number;
    }>;
    return rows.map((r) => ({
      taskId: r.task_id,
      executionId: r.id,
      status: r.status,
      stepsTotal: r.steps_total,
      stepsCompleted: r.steps_completed,
    }));
  }

  withStatus(status: ExecutionStatus): Execution[] {
    this.flush();
    return (this.stmt.byStatus.all(status) as ExecutionRow[]).map(toExecution);
  }

  /** Failed executions whose rollback waits for a start of the agent, oldest first. */
  withRollbackPending(): Execution[] {
    this.flush();
    return (this.stmt.rollbackPending.all() as ExecutionRow[]).map(toExecution);
  }

  count(): number {
    this.flush();
    return (this.stmt.count.get() as { n: number }).n;
  }

  findIdempotency(key: string): { bodyHash: string; executionId: string } | undefined {
    this.flush(); // a key accepted a moment ago may still be waiting for its commit
    const row = this.stmt.getIdem.get(key) as { body_hash: string; execution_id: string } | undefined;
    return row && { bodyHash: row.body_hash, executionId: row.execution_id };
  }

  /**
   * Newest first. Each status is read from its own range of the (status, seq) or (workflow_id, status, seq)
   * index, newest first and at most `limit` rows, and the ranges are merged: the cost depends on the page
   * size, not on how many executions the store holds. Time bounds become seq bounds first (seqs grow with
   * creation time).
   */
  list(filter: ExecutionFilter): Execution[] {
    this.flush();
    const c = new Conditions({ limit: filter.limit })
      .add('e.workflow_id = @workflow_id', 'workflow_id', filter.workflowId)
      .add('e.seq < @before', 'before', filter.before);
    for (const { name, op, order } of TIME_BOUNDS) {
      const at = filter[name];
      if (at === undefined) continue;
      const edge = this.statements
        .get(`SELECT seq FROM executions WHERE created_at ${op} ? ORDER BY ${order} LIMIT 1`)
        .get(at) as { seq: number } | undefined;
      if (!edge) return [];
      c.add(`e.seq ${op} @${name}_seq`, `${name}_seq`, edge.seq).add(`e.created_at ${op} @${name}`, name, at);
    }
    const statuses = filter.statuses ?? (filter.workflowId !== undefined ? EXECUTION_STATUSES : undefined);
    if (statuses === undefined) {
      const sql = `${SELECT} ${c.where()} ORDER BY e.seq DESC LIMIT @limit`;
      return (this.statements.get(sql).all(c.params) as ExecutionRow[]).map(toExecution);
    }
    const sql = `${SELECT} WHERE e.status = @status ${c.clauses.map((w) => `AND ${w}`).join(' ')} ORDER BY e.seq DESC LIMIT @limit`;
    const stmt = this.statements.get(sql);
    const rows: ExecutionRow[] = [];
    for (const status of new Set(statuses)) rows.push(...(stmt.all({ ...c.params, status }) as ExecutionRow[]));
    rows.sort((a, b) => b.seq - a.seq);
    return rows.slice(0, filter.limit).map(toExecution);
  }

  /**
   * Workflow, status and times of every execution created at or after `since` (ISO), oldest first, at most
   * `limit` of them: what the overview counts and measures. Read from the created_at index.
   */
  created(since: string, limit: number): CreatedRow[] {
    this.flush();
    const rows = this.statements
      .get(
        `SELECT workflow_id, status, started_at, finished_at FROM executions
         WHERE created_at >= ? ORDER BY created_at LIMIT ?`,
      )
      .all(since, limit) as Array<{
      workflow_id: string;
      status: ExecutionStatus;
      started_at: string | null;
      finished_at: string | null;
    }>;
    return rows.map((r) => ({
      workflowId: r.workflow_id,
      status: r.status,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
    }));
  }

  private hashOf(content: string): string {
    let hash = this.hashes.get(content);
    if (hash === undefined) {
      hash = createHash('sha256').update(content).digest('hex');
      if (this.hashes.size >= 256) this.hashes.clear();
      this.hashes.set(content, hash);
    }
    return hash;
  }

  /** A later insert of a package whose text retention deleted must write the text again. */
  forgetStoredHashes(hashes: string[]): void {
    for (const h of hashes) this.storedHashes.delete(h);
  }
}

/** The steps of executions: inserted pending with their execution, updated as they run. */
import type Database from 'better-sqlite3';
import { BatchInsert } from './batch-insert.js';
import type { Step, StepPatch, StepPhase } from './types.js';
import type { WriteOptions, WriteQueue } from './write-queue.js';

export const STEP_COLUMNS = [
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
  'reason',
  'processes',
  'started_at',
  'finished_at',
] as const;

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

export function stepValues(s: Step): unknown[] {
  return [
    s.executionId,
    s.phase,
    s.idx,
    s.name,
    s.adapter,
    s.action,
    s.status,
    s.attempts,
    s.forStep,
    json(s.input),
    json(s.outputs),
    s.outputsSource,
    json(s.error),
    s.reason,
    s.processes.length ? JSON.stringify(s.processes) : null,
    s.startedAt,
    s.finishedAt,
  ];
}

/** A step as inserted with its execution or rollback plan: pending, nothing recorded yet. */
export function pendingStep(
  executionId: string,
  phase: StepPhase,
  idx: number,
  def: { name: string; adapter: string; action: string },
  forStep: string | null = null,
): Step {
  return {
    executionId,
    phase,
    idx,
    name: def.name,
    adapter: def.adapter,
    action: def.action,
    status: 'pending',
    attempts: 0,
    forStep,
    input: null,
    outputs: null,
    outputsSource: null,
    error: null,
    reason: null,
    processes: [],
    startedAt: null,
    finishedAt: null,
  };
}

interface StepRow {
  execution_id: string;
  phase: StepPhase;
  idx: number;
  name: string;
  adapter: string;
  action: string;
  status: Step['status'];
  attempts: number;
  for_step: string | null;
  input: string | null;
  outputs: string | null;
  outputs_source: Step['outputsSource'];
  error: string | null;
  reason: string | null;
  processes: string | null;
  started_at: string | null;
  finished_at: string | null;
}

const parse = (s: string | null) => (s === null ? null : JSON.parse(s));

function toStep(r: StepRow): Step {
  return {
    executionId: r.execution_id,
    phase: r.phase,
    idx: r.idx,
    name: r.name,
    adapter: r.adapter,
    action: r.action,
    status: r.status,
    attempts: r.attempts,
    forStep: r.for_step,
    input: parse(r.input),
    outputs: parse(r.outputs),
    outputsSource: r.outputs_source,
    error: parse(r.error),
    reason: r.reason,
    processes: r.processes === null ? [] : JSON.parse(r.processes),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/** The columns of a step patch; the engine's hot path writes every step twice, so this stays a plain walk. */
function patchColumns(p: StepPatch): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (p.status !== undefined) out.status = p.status;
  if (p.attempts !== undefined) out.attempts = p.attempts;
  if (p.startedAt !== undefined) out.started_at = p.startedAt;
  if (p.finishedAt !== undefined) out.finished_at = p.finishedAt;
  if (p.input !== undefined) out.input = json(p.input);
  if (p.outputsJson !== undefined) out.outputs = p.outputsJson;
  else if (p.outputs !== undefined) out.outputs = json(p.outputs);
  if (p.outputsSource !== undefined) out.outputs_source = p.outputsSource;
  if (p.error !== undefined) out.error = json(p.error);
  if (p.reason !== undefined) out.reason = p.reason;
  if (p.processes !== undefined) out.processes = p.processes.length ? JSON.stringify(p.processes) : null;
  return out;
}

export class Steps {
  private readonly get: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly insert: BatchInsert<Step>;

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
    private readonly flush: () => void,
    private readonly update: (table: string, where: string, cols: Record<string, unknown>, keys: unknown[]) => void,
  ) {
    this.get = db.prepare('SELECT * FROM steps WHERE execution_id = ? ORDER BY phase, idx');
    this.remove = db.prepare('DELETE FROM steps WHERE execution_id = ? AND phase = ?');
    this.insert = new BatchInsert<Step>(db, 'INSERT OR REPLACE INTO steps', STEP_COLUMNS, stepValues);
  }

  /** The main steps, then the rollback steps, each in plan order. */
  of(executionId: string): Step[] {
    this.flush();
    return this.read(executionId);
  }

  /** As `of`, without committing what is pending first: for a write that reads inside its own transaction. */
  read(executionId: string): Step[] {
    return (this.get.all(executionId) as StepRow[]).map(toStep);
  }

  /** Pending updates of one step coalesce: row -1 is the execution, 2·idx a main step, 2·idx+1 a rollback step. */
  patch(executionId: string, phase: StepPhase, idx: number, patch: StepPatch, options: WriteOptions = {}): void {
    this.queue.patch(
      executionId,
      phase === 'main' ? 2 * idx : 2 * idx + 1,
      patchColumns(patch),
      (cols) => this.update('steps', 'execution_id = ? AND phase = ? AND idx = ?', cols, [executionId, phase, idx]),
      options,
    );
  }

  /** Inserts steps as they are; call it inside a transaction (a new execution's, say). */
  insertRows(steps: Step[]): void {
    this.insert.run(steps);
  }

  /** Replaces the steps of one phase (a new rollback plan), committed at once. */
  replace(executionId: string, phase: StepPhase, steps: Step[]): void {
    this.queue.write({}, () => {
      this.remove.run(executionId, phase);
      this.insertRows(steps);
    });
  }
}

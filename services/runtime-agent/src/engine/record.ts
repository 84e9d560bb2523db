/** The execution record of GET /execute/{id} (wpk-spec.md §4), built from stored rows. */
import type { ExecutionRow, StepRow } from '../store/store.js';

const parse = (s: string | null): unknown => (s === null ? null : JSON.parse(s));

function stepView(s: StepRow) {
  return {
    name: s.name,
    adapter: s.adapter,
    action: s.action,
    status: s.status,
    attempts: s.attempts,
    started_at: s.started_at,
    finished_at: s.finished_at,
    input: parse(s.input),
    outputs: parse(s.outputs),
    outputs_source: s.outputs_source,
    error: parse(s.error),
    ...(s.phase === 'rollback' ? { compensates: s.for_step } : {}),
  };
}

/** The short form used in lists and in the 202 answer. */
export function toSummary(row: ExecutionRow) {
  return {
    execution_id: row.id,
    workflow_id: row.workflow_id,
    status: row.status,
    dry_run: row.dry_run === 1,
    current_step: row.current_step,
    steps_completed: row.steps_completed,
    steps_total: row.steps_total,
    error: parse(row.error),
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
    submitted_by: row.submitted_by,
  };
}

export function toRecord(row: ExecutionRow, steps: StepRow[]) {
  return {
    ...toSummary(row),
    workflow_name: row.workflow_name,
    rollback_on_failure: row.rollback_on_failure === 1,
    parameters: JSON.parse(row.parameters),
    steps: steps.filter((s) => s.phase === 'main').map(stepView),
    rollback: {
      status: row.rollback_status ?? 'not_started',
      trigger: row.rollback_trigger,
      steps: steps.filter((s) => s.phase === 'rollback').map(stepView),
    },
    logs: `/logs/${row.id}`,
    // Past MAX_LOG_LINES_PER_EXECUTION or MAX_LOG_BYTES_PER_EXECUTION the log ends with one marker line.
    logs_truncated: row.dropped_log_lines > 0,
    dropped_log_lines: row.dropped_log_lines,
  };
}

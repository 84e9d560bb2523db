/** The execution record of GET /execute/{id} and its short form in lists: the API's snake_case view of the store's records. */
import type { Execution, Step } from '../store/types.js';

function stepView(s: Step) {
  return {
    name: s.name,
    adapter: s.adapter,
    action: s.action,
    status: s.status,
    attempts: s.attempts,
    started_at: s.startedAt,
    finished_at: s.finishedAt,
    input: s.input,
    outputs: s.outputs,
    outputs_source: s.outputsSource,
    error: s.error,
    ...(s.reason === null ? {} : { reason: s.reason }),
    ...(s.phase === 'rollback' ? { compensates: s.forStep } : {}),
  };
}

/** The short form used in lists and in the 202 answer. */
export function toSummary(e: Execution) {
  return {
    execution_id: e.id,
    workflow_id: e.workflowId,
    status: e.status,
    dry_run: e.dryRun,
    current_step: e.currentStep,
    steps_completed: e.stepsCompleted,
    steps_total: e.stepsTotal,
    error: e.error,
    created_at: e.createdAt,
    started_at: e.startedAt,
    finished_at: e.finishedAt,
    submitted_by: e.submittedBy,
    rollback: { status: e.rollbackStatus ?? 'not_started', trigger: e.rollbackTrigger },
    retry_of: e.retryOf,
    retried_by: e.retriedBy,
  };
}

export function toRecord(e: Execution, steps: Step[]) {
  return {
    ...toSummary(e),
    workflow_name: e.workflowName,
    rollback_on_failure: e.rollbackOnFailure,
    parameters: e.parameters,
    steps: steps.filter((s) => s.phase === 'main').map(stepView),
    rollback: {
      status: e.rollbackStatus ?? 'not_started',
      trigger: e.rollbackTrigger,
      requested_by: e.rollbackRequestedBy,
      steps: steps.filter((s) => s.phase === 'rollback').map(stepView),
    },
    logs: `/logs/${e.id}`,
    // Past MAX_LOG_LINES_PER_EXECUTION or MAX_LOG_BYTES_PER_EXECUTION the log ends with one marker line.
    logs_truncated: e.droppedLogLines > 0,
    dropped_log_lines: e.droppedLogLines,
  };
}

export type ExecutionRecord = ReturnType<typeof toRecord>;
export type ExecutionSummary = ReturnType<typeof toSummary>;

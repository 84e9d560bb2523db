/**
 * Every state change the engine makes, each written together with its journal event (and, for a status the
 * result policy delivers, its outbox row): they are queued in the same synchronous call with the same write
 * options, so they share a transaction. Nothing else in the engine writes a status.
 */
import type { ErrorRecord } from '../../../../adapters/errors.js';
import { nowIso } from '../clock.js';
import type { Store } from '../store/store.js';
import type {
  BackgroundProcess,
  EventType,
  ExecutionPatch,
  ExecutionStatus,
  NewEvent,
  RollbackTrigger,
  StepPatch,
  StepPhase,
  StepStatus,
  TrackedProcess,
} from '../store/types.js';
import type { WriteOptions } from '../store/write-queue.js';
import { type ResultRef, Results } from './results.js';

/** What identifies an execution in its events (and tells the results whether a rollback follows a failure). */
export interface ExecutionRef extends ResultRef {
  id: string;
  workflowId: string;
}

/**
 * The event's write options for a change written with `options`: the same when the change is deferred;
 * queued when the change commits at once, so that the change's own commit carries it.
 */
function withChange(options: WriteOptions): WriteOptions {
  return options.deferred ? options : { deferred: true };
}

const NOW: WriteOptions = { deferred: true, critical: true };

export class StateWriter {
  constructor(
    private readonly store: Store,
    private readonly results = new Results(store),
  ) {}

  /** `execution.status_changed`, with the patch that goes with it. */
  status(
    e: ExecutionRef,
    from: ExecutionStatus,
    to: ExecutionStatus,
    patch: ExecutionPatch = {},
    options: WriteOptions = {},
  ): void {
    const data: Record<string, unknown> = { from, to };
    if (patch.error) data.error = patch.error;
    this.event(e, 'execution.status_changed', undefined, data, withChange(options));
    this.results.statusChanged(e, to, withChange(options));
    this.store.executions.patch(e.id, { ...patch, status: to }, options);
  }

  /** A rollback on failure found nothing to roll back: the execution settles in the status it has. */
  nothingToRollBack(e: ExecutionRef & { status: ExecutionStatus }): void {
    this.results.settledWithoutRollback(e, e.status, { deferred: true });
    this.store.executions.patch(e.id, { rollbackStatus: 'nothing_to_do' }, {});
  }

  /** The process groups a step has running (not a state change: no event). */
  processGroups(e: ExecutionRef, phase: StepPhase, idx: number, groups: TrackedProcess[], options: WriteOptions) {
    this.store.steps.patch(e.id, phase, idx, { processes: [...groups] }, options);
  }

  /** A process group a step left running (not a state change: no event); committed before this returns. */
  backgroundStarted(p: BackgroundProcess): void {
    this.store.backgroundProcesses.add(p);
  }

  backgroundGone(p: BackgroundProcess): void {
    this.store.backgroundProcesses.forget(p);
  }

  /** A patch that changes no status (rollback bookkeeping): no event of its own. */
  patch(e: ExecutionRef, patch: ExecutionPatch, options: WriteOptions = {}): void {
    this.store.executions.patch(e.id, patch, options);
  }

  stepStarted(e: ExecutionRef, phase: StepPhase, idx: number, step: string, patch: StepPatch, options: WriteOptions) {
    this.event(e, 'step.started', step, { phase, attempt: patch.attempts ?? 1 }, withChange(options));
    this.store.steps.patch(e.id, phase, idx, patch, options);
  }

  stepRetrying(e: ExecutionRef, phase: StepPhase, step: string, attempt: number, delayMs: number, error: ErrorRecord) {
    this.event(e, 'step.retrying', step, { phase, attempt, delay_ms: delayMs, error }, { deferred: true });
  }

  /** Where a running step stands (`ctx.progress`): a cosmetic write, committed with the next commit. */
  stepProgress(e: ExecutionRef, phase: StepPhase, step: string, attempt: number, data: Record<string, unknown>) {
    this.event(e, 'step.progress', step, { phase, attempt, ...data }, { deferred: true });
  }

  /** `step.finished` (main steps) or `rollback.step_finished` (compensations), with the step's outcome. */
  stepFinished(
    e: ExecutionRef,
    phase: StepPhase,
    idx: number,
    step: string,
    outcome: { status: StepStatus; attempt: number; durationMs: number; error?: ErrorRecord; reason?: string },
    patch: StepPatch,
    options: WriteOptions,
  ): void {
    const data: Record<string, unknown> = {
      status: outcome.status,
      attempt: outcome.attempt,
      duration_ms: outcome.durationMs,
    };
    if (outcome.error) data.error = outcome.error;
    if (outcome.reason) data.reason = outcome.reason;
    this.event(e, phase === 'main' ? 'step.finished' : 'rollback.step_finished', step, data, withChange(options));
    this.store.steps.patch(e.id, phase, idx, { ...patch, status: outcome.status }, options);
  }

  /** A step that never reached its action: skipped by its `when`, or not run because the execution stopped. */
  stepNotStarted(e: ExecutionRef, phase: StepPhase, idx: number, step: string, status: StepStatus, reason: string) {
    this.stepFinished(
      e,
      phase,
      idx,
      step,
      { status, attempt: 0, durationMs: 0, reason },
      { reason, finishedAt: status === 'skipped' ? nowIso() : undefined },
      { deferred: true },
    );
  }

  /** `rollback.started`, after the status change to rolling_back (a resumed rollback is rolling_back already). */
  rollbackStarted(
    e: ExecutionRef,
    from: ExecutionStatus,
    trigger: RollbackTrigger,
    steps: number,
    extra: { requestedBy?: string; resumed?: boolean },
  ): void {
    if (from !== 'rolling_back') {
      this.status(
        e,
        from,
        'rolling_back',
        { rollbackStatus: 'running', rollbackTrigger: trigger, rollbackRequestedBy: extra.requestedBy ?? null },
        NOW,
      );
    }
    const data: Record<string, unknown> = { trigger, steps };
    if (extra.requestedBy) data.requested_by = extra.requestedBy;
    if (extra.resumed) data.resumed = true;
    this.event(e, 'rollback.started', undefined, data, NOW);
  }

  /** `finishedAt`: the execution's new end (a rollback by hand leaves the end of the run it undid). */
  rollbackFinished(
    e: ExecutionRef,
    outcome: { succeeded: number; skipped: number; failed: number; steps: number },
    finishedAt: string | undefined,
  ): void {
    const status = outcome.failed === 0 ? 'rolled_back' : 'rollback_failed';
    this.event(e, 'rollback.finished', undefined, { result: status, ...outcome }, { deferred: true });
    this.status(e, 'rolling_back', status, {
      rollbackStatus: outcome.failed === 0 ? 'succeeded' : 'failed',
      finishedAt,
    });
  }

  private event(
    e: ExecutionRef,
    type: EventType,
    step: string | undefined,
    data: Record<string, unknown>,
    options: WriteOptions,
  ): void {
    const event: NewEvent = { type, execution_id: e.id, workflow_id: e.workflowId, data };
    if (step !== undefined) event.step = step;
    this.store.journal.append(event, options);
  }
}

/**
 * Which status changes become result deliveries, and what they say. The StateWriter calls this with every
 * status change, in the same synchronous stretch and with the same write options, so the outbox row lands in
 * the transaction of the change it reports. A callback's body is the execution record (record.ts, secrets
 * already masked as the store keeps them), a pull-mode report's the task's result (pull/tasks.ts); either is
 * rendered inside that transaction and never again.
 */
import { nowIso } from '../clock.js';
import type { Store } from '../store/store.js';
import { type ExecutionStatus, type TaskRef, TERMINAL_STATUSES } from '../store/types.js';
import type { WriteOptions } from '../store/write-queue.js';
import { reportStatus, taskResult } from '../pull/tasks.js';
import { toRecord } from './record.js';

export interface ResultPolicy {
  /**
   * `terminal`: the status each execution settles in (a failure that an automatic rollback follows is
   * reported as that rollback's outcome); `all`: every status change.
   */
  events: 'terminal' | 'all';
  /** RESULT_CALLBACK_URL: where the results of executions that name no callback_url go. */
  url?: string;
  /** Pull mode: where the report of a Manager's task goes (docs/pull-mode.md). */
  reportUrl?: (taskId: string) => string;
}

/** What the results need to know of an execution (a Live or a stored Execution). */
export interface ResultRef {
  id: string;
  /** A failure it has is followed by an automatic rollback (now, or by recovery after a restart). */
  rollbackOnFailure?: boolean;
  /** Its own callback_url; undefined when the caller does not know (the stored row then decides). */
  callbackUrl?: string | null;
  /** The Manager's task it runs (pull mode); undefined when the caller does not know. */
  task?: TaskRef | null;
}

export const NO_RESULTS: ResultPolicy = { events: 'terminal' };

export class Results {
  constructor(
    private readonly store: Store,
    private readonly policy: ResultPolicy = NO_RESULTS,
  ) {}

  /** A status change of `e` to `to`: staged when the policy delivers it. */
  statusChanged(e: ResultRef, to: ExecutionStatus, options: WriteOptions): void {
    const settles = TERMINAL_STATUSES.has(to) && !(to === 'failed' && e.rollbackOnFailure === true);
    if (settles) this.report(e, to, options);
    if (this.policy.events === 'all' || settles) this.stage(e, to, options);
  }

  /** A failure with rollback on failure had nothing to roll back: it settles in `status` after all. */
  settledWithoutRollback(e: ResultRef, status: ExecutionStatus, options: WriteOptions): void {
    if (!TERMINAL_STATUSES.has(status)) return;
    this.report(e, status, options);
    if (this.policy.events === 'terminal') this.stage(e, status, options);
  }

  /**
   * A claimed task that never became an execution (its type or payload is invalid): its report says failed,
   * with why. Staged under `task:<id>`, which no execution has.
   */
  taskRejected(taskId: string, error: { type: string; message: string; details?: unknown }): void {
    const reportUrl = this.policy.reportUrl;
    if (!reportUrl) return;
    const finishedAt = nowIso();
    this.store.outbox.stage(
      {
        kind: 'report',
        executionId: `task:${taskId}`,
        event: 'task.rejected',
        render: () =>
          this.store.outbox.has(`task:${taskId}`, 'report')
            ? undefined
            : {
                target: reportUrl(taskId),
                body: JSON.stringify({
                  status: 'failed',
                  result: null,
                  error,
                  execution_id: null,
                  started_at: null,
                  finished_at: finishedAt,
                }),
              },
      },
      { deferred: true, critical: true },
    );
  }

  /** The report of a task's execution, once, in the status it settles in (a later manual rollback is not reported). */
  private report(e: ResultRef, status: ExecutionStatus, options: WriteOptions): void {
    const reportUrl = this.policy.reportUrl;
    if (!reportUrl || e.task === null) return;
    this.store.outbox.stage(
      {
        kind: 'report',
        executionId: e.id,
        event: `execution.${status}`,
        render: () => {
          const execution = this.store.executions.read(e.id);
          if (!execution?.task || this.store.outbox.has(e.id, 'report')) return undefined;
          const record = { ...toRecord(execution, this.store.steps.read(e.id)), status };
          const error = record.error && { type: record.error.type, message: record.error.message };
          const body = JSON.stringify({
            status: reportStatus(status),
            result: taskResult(execution.task.type, record),
            error: error ?? null,
            execution_id: e.id,
            started_at: record.started_at,
            finished_at: record.finished_at,
          });
          return { target: reportUrl(execution.task.id), body };
        },
      },
      options,
    );
  }

  private stage(e: ResultRef, status: ExecutionStatus, options: WriteOptions): void {
    if (this.policy.url === undefined && e.callbackUrl === null) return;
    const event = `execution.${status}`;
    const occurredAt = nowIso();
    this.store.outbox.stage(
      {
        kind: 'callback',
        executionId: e.id,
        event,
        render: (deliveryId) => {
          const execution = this.store.executions.read(e.id);
          const target = execution?.callbackUrl ?? this.policy.url;
          if (!execution || target === undefined) return undefined;
          // Several changes may share one commit (failed, then rolling_back): each delivery says its own status.
          const record = { ...toRecord(execution, this.store.steps.read(e.id)), status };
          const body = JSON.stringify({ delivery_id: deliveryId, event, occurred_at: occurredAt, execution: record });
          return { target, body };
        },
      },
      options,
    );
  }
}

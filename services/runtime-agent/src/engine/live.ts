/** The in-memory side of an execution the engine is working on: its log, abort controller and template scope. */
import type { EventEmitter } from 'node:events';
import type { Store } from '../store/store.js';
import type { Execution, ExecutionStatus, LogTally, TaskRef } from '../store/types.js';
import type { Wpk } from '../wpk/types.js';
import { ExecutionLog, type LogLimits } from './execution-log.js';
import { Redactor } from './redact.js';
import type { CompletedStep } from './rollback.js';
import type { SecretVault } from './secret-vault.js';
import type { StepTarget } from './step-runner.js';
import type { Scope } from './templates.js';

export interface Live {
  id: string;
  workflowId: string;
  workflowName: string;
  wpk: Wpk;
  dryRun: boolean;
  rollbackOnFailure: boolean;
  /** The execution's status as this process last wrote it (the `from` of its next status change). */
  status: ExecutionStatus;
  redactor: Redactor;
  log: ExecutionLog;
  controller: AbortController;
  scope: Scope & { steps: Record<string, { status: string; outputs?: unknown }> };
  /** Main steps that succeeded, in completion order: what a rollback undoes. */
  completed: CompletedStep[];
  startedMs: number;
  /** performance.now() when the workflow's timeoutSeconds runs out; undefined without one. */
  deadlineMs?: number;
  /** The execution this one retries: its steps before the retry's first are kept, not run. */
  retryOf: string | null;
  /** Where its results go instead of RESULT_CALLBACK_URL (callback_url of its request). */
  callbackUrl: string | null;
  /** The Manager's task it runs (pull mode), whose report is delivered when it ends. */
  task: TaskRef | null;
}

/** What identifies an execution before it has a Live. */
export type ExecutionHead = Pick<
  Execution,
  | 'id'
  | 'workflowId'
  | 'workflowName'
  | 'dryRun'
  | 'rollbackOnFailure'
  | 'status'
  | 'secretParams'
  | 'retryOf'
  | 'callbackUrl'
  | 'task'
>;

export class LiveFactory {
  constructor(
    private readonly store: Store,
    private readonly bus: EventEmitter,
    private readonly logLimits: LogLimits,
    private readonly vault: SecretVault,
  ) {}

  /** `logTally` is known for a new execution (it has logged nothing); otherwise the store is asked. */
  make(head: ExecutionHead, wpk: Wpk, params: Record<string, unknown>, logTally?: LogTally): Live {
    const redactor = new Redactor(head.secretParams.map((k) => params[k]));
    return {
      id: head.id,
      workflowId: head.workflowId,
      workflowName: head.workflowName,
      wpk,
      dryRun: head.dryRun,
      rollbackOnFailure: head.rollbackOnFailure,
      status: head.status,
      redactor,
      log: this.log(head.id, redactor, logTally),
      controller: new AbortController(),
      scope: {
        params,
        steps: {},
        execution: { id: head.id, dry_run: head.dryRun },
        workflow: { name: wpk.metadata.name, version: wpk.metadata.version },
      },
      completed: [],
      startedMs: performance.now(),
      retryOf: head.retryOf,
      callbackUrl: head.callbackUrl,
      task: head.task,
    };
  }

  /** Rebuilds the in-memory view of a stored execution (secret values only if this process still has them). */
  restore(e: Execution): Live {
    const live = this.make(e, this.store.executions.packageOf(e.id), this.vault.parameters(e));
    for (const s of this.store.steps.of(e.id)) {
      if (s.phase !== 'main') continue;
      const outputs = s.outputs ?? {};
      if (s.status !== 'pending') live.scope.steps[s.name] = { status: s.status, outputs };
      if (s.status === 'succeeded') live.completed.push({ name: s.name, input: s.input ?? {}, outputs });
    }
    return live;
  }

  /** The log of an execution that has no Live right now (one line from recovery or a cancel). */
  log(id: string, redactor = new Redactor([]), logTally = this.store.logs.tally(id)): ExecutionLog {
    return new ExecutionLog(this.store, this.bus, id, redactor, this.logLimits, logTally);
  }
}

/** Where a step of `live` runs: its log, masking, abort signal and dry-run flag. */
export function stepTarget(
  live: Live,
  phase: StepTarget['phase'],
  idx: number,
  more: Pick<StepTarget, 'beforeSideEffect' | 'deadlineAt' | 'prepared'>,
): StepTarget {
  return {
    executionId: live.id,
    workflowId: live.workflowId,
    phase,
    idx,
    dryRun: live.dryRun,
    log: live.log,
    redactor: live.redactor,
    signal: live.controller.signal,
    ...more,
  };
}

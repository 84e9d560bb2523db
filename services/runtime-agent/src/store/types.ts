/** What the store hands out: typed records, never raw rows (no JSON text, no 0/1 for booleans). */
import type { ErrorRecord } from '../../../../adapters/errors.js';

export const EXECUTION_STATUSES = [
  'pending',
  'running',
  'completed',
  'failed',
  'cancelled',
  'rolling_back',
  'rolled_back',
  'rollback_failed',
] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** Statuses an execution ends in (a rollback may still start from failed, cancelled or completed). */
export const TERMINAL_STATUSES: ReadonlySet<ExecutionStatus> = new Set([
  'completed',
  'failed',
  'cancelled',
  'rolled_back',
  'rollback_failed',
]);

/**
 * `not_run`: the step never started because the execution stopped before it (a failure, a cancel, a
 * restart). `skipped`: its `when` was false (the record says why). `abandoned`: it was running when the
 * agent stopped, and may or may not have done its work.
 */
export const STEP_STATUSES = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
  'abandoned',
  'not_run',
] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

export type RollbackStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'nothing_to_do';
/** Who started a rollback: the engine after a failure, a user, or recovery after a restart. */
export type RollbackTrigger = 'automatic' | 'manual' | 'recovered';
export type StepPhase = 'main' | 'rollback';
/**
 * Where a step's outputs come from: a real run, the action's dry run, its declared example, or the execution a
 * retry started from (the step was not run again).
 */
export type OutputsSource = 'run' | 'dry_run' | 'example' | 'reused';

export interface Execution {
  /** Insertion order; list cursors are seqs. */
  seq: number;
  id: string;
  workflowId: string;
  workflowName: string;
  status: ExecutionStatus;
  dryRun: boolean;
  rollbackOnFailure: boolean;
  /** Secret values already masked. */
  parameters: Record<string, unknown>;
  /** Names of the secret parameters (their values are never stored). */
  secretParams: string[];
  /** Derived on read: the main step now running. */
  currentStep: string | null;
  /** Derived on read: main steps that reached succeeded, failed or skipped. */
  stepsCompleted: number;
  stepsTotal: number;
  error: ErrorRecord | null;
  rollbackStatus: RollbackStatus | null;
  rollbackTrigger: RollbackTrigger | null;
  /** Who asked for a manual rollback. */
  rollbackRequestedBy: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Name of the token that submitted it (`anonymous` without auth). */
  submittedBy: string | null;
  /** Log lines refused past the per-execution limits; non-zero means the log was truncated. */
  droppedLogLines: number;
  /** The execution this one retries (POST /execute/{id}/retry). */
  retryOf: string | null;
  /** The retry that took over from this execution: its steps' effects are that one's to roll back now. */
  retriedBy: string | null;
  /** Where this execution's results are delivered (callback_url of POST /execute), if it named a place. */
  callbackUrl: string | null;
  /** The pull-mode task this execution runs (docs/pull-mode.md), if a Manager handed it out. */
  task: TaskRef | null;
}

/** A process group a step started, recorded so that recovery can end it if it outlived the agent. */
export interface TrackedProcess {
  pid: number;
  /** Start time of the group leader in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  startTicks: number;
}

/** A Manager's task (pull mode): its id and its type. */
export interface TaskRef {
  id: string;
  type: string;
}

/** A pull-mode task not ended yet, as a heartbeat reports it. */
export interface RunningTask {
  taskId: string;
  executionId: string;
  status: ExecutionStatus;
  stepsTotal: number;
  stepsCompleted: number;
}

/** A process group a step started and left running (shell.start). */
export interface BackgroundProcess extends TrackedProcess {
  executionId: string;
  step: string;
  command: string[];
  startedAt: string;
}

export interface Step {
  executionId: string;
  phase: StepPhase;
  idx: number;
  name: string;
  adapter: string;
  action: string;
  status: StepStatus;
  attempts: number;
  /** For rollback steps: the main step it compensates, if any. */
  forStep: string | null;
  input: Record<string, unknown> | null;
  outputs: Record<string, unknown> | null;
  outputsSource: OutputsSource | null;
  error: ErrorRecord | null;
  /** Why a skipped step was skipped. */
  reason: string | null;
  /** Process groups the step started that may still run (shell steps); cleared when they ended. */
  processes: TrackedProcess[];
  startedAt: string | null;
  finishedAt: string | null;
}

/** The fields of a step that change while it runs. */
export type StepPatch = Partial<
  Pick<
    Step,
    | 'status'
    | 'attempts'
    | 'input'
    | 'outputs'
    | 'outputsSource'
    | 'error'
    | 'reason'
    | 'processes'
    | 'startedAt'
    | 'finishedAt'
  >
> & {
  /** Outputs already serialised (the engine measures their size as JSON before storing them). */
  outputsJson?: string;
};

export type ExecutionPatch = Partial<
  Pick<
    Execution,
    | 'status'
    | 'error'
    | 'rollbackStatus'
    | 'rollbackTrigger'
    | 'rollbackRequestedBy'
    | 'startedAt'
    | 'finishedAt'
    | 'droppedLogLines'
  >
>;

/** A new execution as the engine submits it. */
export interface NewExecution {
  id: string;
  workflowId: string;
  workflowName: string;
  dryRun: boolean;
  rollbackOnFailure: boolean;
  parameters: Record<string, unknown>;
  secretParams: string[];
  /** The package as JSON text. */
  packageJson: string;
  stepsTotal: number;
  createdAt: string;
  submittedBy: string | null;
  /** The execution a retry starts from: inserted with this one, its `retried_by` is set in the same transaction. */
  retryOf?: string;
  /** callback_url of the request: this execution's results go there instead of RESULT_CALLBACK_URL. */
  callbackUrl?: string;
  task?: TaskRef;
}

export interface LogLine {
  seq: number;
  ts: string;
  level: string;
  step: string | null;
  stream: string | null;
  message: string;
}

/** Lines (also the last seq), bytes of message text and lines dropped past the limits, of one execution's log. */
export interface LogTally {
  lines: number;
  bytes: number;
  dropped: number;
}

/** One line of the audit log (field names as the API shows them). */
export interface AuditEntry {
  seq: number;
  ts: string;
  actor: string | null;
  role: string | null;
  method: string;
  path: string;
  status: number;
  execution_id: string | null;
  remote: string | null;
  detail: Record<string, unknown> | null;
}

export const EVENT_TYPES = [
  'execution.created',
  'execution.status_changed',
  'step.started',
  'step.retrying',
  'step.progress',
  'step.finished',
  'rollback.started',
  'rollback.step_finished',
  'rollback.finished',
  'execution.retried',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One entry of the event journal: a state change, with a global, strictly increasing `seq`. */
export interface JournalEvent {
  seq: number;
  ts: string;
  type: EventType;
  execution_id: string;
  workflow_id: string;
  step?: string;
  data: Record<string, unknown>;
}

export type NewEvent = Omit<JournalEvent, 'seq' | 'ts'>;

export interface ExecutionFilter {
  statuses?: ExecutionStatus[];
  workflowId?: string;
  /** ISO times: created at or after / at or before. */
  since?: string;
  until?: string;
  limit: number;
  /** Only executions older than this seq (the cursor). */
  before?: number;
}

export interface EventFilter {
  /** Exclusive. */
  since: number;
  executionId?: string;
  workflowId?: string;
  types?: EventType[];
  limit: number;
}

/**
 * What an outbox row delivers: `callback` (a result callback, POST to a URL) today; pull mode's `report`
 * (a task result to the manager) shares the table, the states and the retries.
 */
export type DeliveryKind = 'callback' | 'report';
export const DELIVERY_STATES = ['pending', 'delivered', 'dead', 'gone'] as const;
/**
 * `pending`: still to deliver (or being retried); `delivered`: the receiver answered 2xx; `dead`: not
 * delivered within the maximum age, no more tries; `gone`: the receiver answered 410 and wants no more.
 */
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** One outbox row. */
export interface Delivery {
  seq: number;
  deliveryId: string;
  kind: DeliveryKind;
  executionId: string;
  /** What it reports (`execution.completed`): the X-Runtime-Agent-Event header. */
  event: string;
  /** Where it goes (a URL, as configured: mask it before showing it). */
  target: string;
  /** The JSON text sent, the same bytes on every attempt. */
  body: string;
  state: DeliveryState;
  attempts: number;
  /** Epoch ms of the next attempt, while pending. */
  nextAttemptAt: number;
  lastError: string | null;
  lastStatus: number | null;
  createdAt: string;
  createdMs: number;
  deliveredAt: string | null;
}

/** The outbox at a glance, per kind: what /health and the metrics show. */
export interface OutboxBacklog {
  pending: number;
  /** created_ms of the oldest pending row, or null. */
  oldestPendingMs: number | null;
  dead: number;
  gone: number;
  delivered: number;
}

/**
 * What a subscriber hears of a journal event: one `activity_log` for each, and a `status_changed` for
 * each status transition (an execution's, a step's and a compensation's). Both carry the event's `seq`,
 * the number a client subscribes `since` to resume.
 */
import type { JournalEvent } from '../store/types.js';

export interface ActivityLog {
  activity_type: JournalEvent['type'];
  message: string;
  timestamp: string;
  seq: number;
  execution_id: string;
  workflow_id: string;
  step?: string;
  /** The subscription the event came through (a socket may have several). */
  subscription_id: string;
  /** The journal event's data (from/to, status, attempt, error, ...), masked as everywhere. */
  details: Record<string, unknown>;
}

export interface StatusChanged {
  /** `execution`, `step` (a main step) or `rollback_step` (a compensation). */
  kind: 'execution' | 'step' | 'rollback_step';
  /** The execution's id, or the step's name (`execution_id` says whose). */
  id: string;
  from: string;
  to: string;
  seq: number;
  timestamp: string;
  execution_id: string;
  workflow_id: string;
  subscription_id: string;
}

export function activityLog(e: JournalEvent, subscriptionId: string): ActivityLog {
  const a: ActivityLog = {
    activity_type: e.type,
    message: describe(e),
    timestamp: e.ts,
    seq: e.seq,
    execution_id: e.execution_id,
    workflow_id: e.workflow_id,
    subscription_id: subscriptionId,
    details: e.data,
  };
  if (e.step !== undefined) a.step = e.step;
  return a;
}

/** The transition an event records, if it records one. */
export function statusChanged(e: JournalEvent, subscriptionId: string): StatusChanged | undefined {
  const d = e.data;
  const base = {
    seq: e.seq,
    timestamp: e.ts,
    execution_id: e.execution_id,
    workflow_id: e.workflow_id,
    subscription_id: subscriptionId,
  };
  const stepKind = d.phase === 'rollback' ? 'rollback_step' : 'step';
  switch (e.type) {
    case 'execution.status_changed':
      return { kind: 'execution', id: e.execution_id, from: String(d.from), to: String(d.to), ...base };
    case 'step.started':
      // A retry's later attempts start a step that is running already.
      if (d.attempt !== 1 || e.step === undefined) return undefined;
      return { kind: stepKind, id: e.step, from: 'pending', to: 'running', ...base };
    case 'step.finished':
    case 'rollback.step_finished':
      if (e.step === undefined) return undefined;
      return {
        kind: e.type === 'step.finished' ? 'step' : 'rollback_step',
        id: e.step,
        // A step that never started (skipped, not run) goes straight from pending.
        from: d.attempt === 0 ? 'pending' : 'running',
        to: String(d.status),
        ...base,
      };
    default:
      return undefined;
  }
}

/** One line a person reads. */
function describe(e: JournalEvent): string {
  const d = e.data;
  const step = e.step === undefined ? '' : `step ${e.step} `;
  switch (e.type) {
    case 'execution.created':
      return `execution ${e.execution_id} of ${e.workflow_id} created${d.dry_run ? ' (dry run)' : ''}`;
    case 'execution.status_changed':
      return `execution ${e.execution_id}: ${d.from} -> ${d.to}`;
    case 'step.started':
      return `${step}started (attempt ${d.attempt})`;
    case 'step.retrying':
      return `${step}retrying: attempt ${d.attempt} failed, next in ${d.delay_ms} ms`;
    case 'step.finished':
      return `${step}${d.status}`;
    case 'rollback.started':
      return `rollback of ${e.execution_id} started (trigger ${d.trigger})`;
    case 'rollback.step_finished':
      return `compensation ${step}${d.status}`;
    case 'rollback.finished':
      return `rollback of ${e.execution_id} finished: ${d.result}`;
    case 'execution.retried':
      return `execution ${e.execution_id} retried as ${d.retry_id} from ${d.from_step}`;
    default:
      return e.type;
  }
}

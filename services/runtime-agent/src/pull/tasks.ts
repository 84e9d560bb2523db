/**
 * The Manager's task types and what each runs here: an ordinary execution of a package (`workflow`), or one
 * of the bundled iperf workflows. A task's payload becomes a submission through the service layer, like
 * POST /execute; its report's `result` is read from the execution record when it ends.
 */
import type { Problem } from '../../../../adapters/errors.js';
import type { ExecutionRecord } from '../engine/record.js';
import type { ExecuteRequest } from '../service/agent-service.js';

export const TASK_TYPES = ['workflow', 'iperf_server_start', 'iperf_client_run', 'kill_all'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export interface ClaimedTask {
  task_id: string;
  type: string;
  payload?: unknown;
}

/** Bundled workflows of the iperf task types, and the payload keys each passes on as its parameters. */
const BUNDLED: Record<Exclude<TaskType, 'workflow'>, { workflowId: string; keys: string[] }> = {
  iperf_server_start: { workflowId: 'iperf-server-start-1.0.0', keys: ['port', 'udp'] },
  iperf_client_run: {
    workflowId: 'iperf-client-run-1.0.0',
    keys: ['server_ip', 'port', 'udp', 'parallel', 'time', 'bitrate'],
  },
  kill_all: { workflowId: 'kill-all-1.0.0', keys: [] },
};

const WORKFLOW_KEYS = ['workflow_id', 'wpk_content', 'parameters', 'dry_run'];

export type TaskPlan = { ok: true; type: TaskType; request: ExecuteRequest } | { ok: false; problems: Problem[] };

/** The submission a task stands for, or every problem with it (the task is then reported failed, nothing runs). */
export function planTask(task: ClaimedTask): TaskPlan {
  const problems: Problem[] = [];
  const payload = task.payload ?? {};
  if (!(TASK_TYPES as readonly string[]).includes(task.type)) {
    return {
      ok: false,
      problems: [
        { path: 'type', message: `unknown task type '${task.type}'; this agent runs ${TASK_TYPES.join(', ')}` },
      ],
    };
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    return { ok: false, problems: [{ path: 'payload', message: 'must be an object' }] };
  const fields = payload as Record<string, unknown>;
  const type = task.type as TaskType;
  const known = type === 'workflow' ? WORKFLOW_KEYS : BUNDLED[type].keys;
  for (const key of Object.keys(fields)) {
    if (!known.includes(key))
      problems.push({
        path: `payload.${key}`,
        message: `is not a field of ${type}${known.length ? `; it takes ${known.join(', ')}` : ' (it takes none)'}`,
      });
  }
  if (type === 'workflow') {
    if ((fields.workflow_id === undefined) === (fields.wpk_content === undefined))
      problems.push({ path: 'payload', message: 'needs exactly one of workflow_id and wpk_content' });
    if (fields.parameters !== undefined && (typeof fields.parameters !== 'object' || Array.isArray(fields.parameters)))
      problems.push({ path: 'payload.parameters', message: 'must be an object' });
    if (fields.dry_run !== undefined && typeof fields.dry_run !== 'boolean')
      problems.push({ path: 'payload.dry_run', message: 'must be a boolean' });
    if (problems.length) return { ok: false, problems };
    const request: ExecuteRequest = {
      parameters: (fields.parameters as Record<string, unknown> | undefined) ?? {},
      dry_run: fields.dry_run === true,
    };
    if (fields.workflow_id !== undefined) request.workflow_id = fields.workflow_id as string;
    else request.wpk_content = fields.wpk_content;
    return { ok: true, type, request };
  }
  if (problems.length) return { ok: false, problems };
  return { ok: true, type, request: { workflow_id: BUNDLED[type].workflowId, parameters: { ...fields } } };
}

/** A report's status: the Manager knows succeeded, failed and cancelled. */
export function reportStatus(status: string): 'succeeded' | 'failed' | 'cancelled' {
  if (status === 'completed') return 'succeeded';
  return status === 'cancelled' ? 'cancelled' : 'failed';
}

/** A task's result, from its execution's record: what the task type promises, or the record itself. */
export function taskResult(type: string, record: ExecutionRecord): unknown {
  const outputs = (step: string) => record.steps.find((s) => s.name === step)?.outputs ?? null;
  switch (type) {
    case 'iperf_server_start': {
      const out = outputs('server') as { pid?: number } | null;
      return out === null ? null : { pid: out.pid, port: record.parameters.port };
    }
    case 'iperf_client_run': {
      const json = (outputs('client') as { json?: { summary?: object; raw?: unknown } } | null)?.json;
      return json ? { ...json.summary, raw: json.raw } : null;
    }
    case 'kill_all':
      return outputs('kill-all');
    default:
      return record;
  }
}

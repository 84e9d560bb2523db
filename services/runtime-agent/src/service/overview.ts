/**
 * The overview of recent work: how many executions ended in each status, and how long each workflow's
 * runs took (p50 and p95 of the ended ones), over a window such as the last 24 hours. Percentiles are the
 * nearest-rank value of the runs themselves, so each is a duration some run really had.
 */
import { EXECUTION_STATUSES, type ExecutionStatus, TERMINAL_STATUSES } from '../store/types.js';
import type { CreatedRow } from '../store/executions.js';

/** The most executions one overview reads; past it the answer says `truncated`. */
export const OVERVIEW_MAX_EXECUTIONS = 100_000;

export interface WorkflowDurations {
  workflow_id: string;
  /** Executions of this workflow created in the window, and those of them that ended with a duration. */
  runs: number;
  ended: number;
  p50_ms: number | null;
  p95_ms: number | null;
  max_ms: number | null;
}

export interface Overview {
  since: string;
  until: string;
  total: number;
  by_status: Record<ExecutionStatus, number>;
  by_workflow: WorkflowDurations[];
  truncated: boolean;
}

/** The nearest-rank percentile `p` (0–100) of ascending `sorted`, or null when it is empty. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function overviewOf(rows: CreatedRow[], since: string, until: string, truncated: boolean): Overview {
  const byStatus = Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as Record<ExecutionStatus, number>;
  const runs = new Map<string, { runs: number; durations: number[] }>();
  for (const r of rows) {
    byStatus[r.status]++;
    const w = runs.get(r.workflowId) ?? { runs: 0, durations: [] };
    runs.set(r.workflowId, w);
    w.runs++;
    if (TERMINAL_STATUSES.has(r.status) && r.startedAt && r.finishedAt) {
      const ms = Date.parse(r.finishedAt) - Date.parse(r.startedAt);
      if (Number.isFinite(ms) && ms >= 0) w.durations.push(ms);
    }
  }
  const byWorkflow = [...runs.entries()]
    .map(([workflowId, w]) => {
      const sorted = w.durations.sort((a, b) => a - b);
      return {
        workflow_id: workflowId,
        runs: w.runs,
        ended: sorted.length,
        p50_ms: percentile(sorted, 50),
        p95_ms: percentile(sorted, 95),
        max_ms: sorted.length ? sorted[sorted.length - 1] : null,
      };
    })
    .sort((a, b) => b.runs - a.runs || a.workflow_id.localeCompare(b.workflow_id));
  return { since, until, total: rows.length, by_status: byStatus, by_workflow: byWorkflow, truncated };
}

/** What the agent's API answers, as far as the console reads it (docs/http-api.md has the full shapes). */
import { EXECUTION_STATUSES, TERMINAL_STATUSES } from '../../src/store/types.js';
import type { WpkParam } from '../../src/wpk/types.js';

export type { Overview } from '../../src/service/overview.js';
export type { JournalEvent, LogLine } from '../../src/store/types.js';

export interface Problem {
  path: string;
  message: string;
}

export interface ErrorRecord {
  type: string;
  message: string;
  step?: string | null;
  details?: Record<string, unknown>;
}

export interface Summary {
  execution_id: string;
  workflow_id: string;
  status: string;
  dry_run: boolean;
  current_step: string | null;
  steps_completed: number;
  steps_total: number;
  error: ErrorRecord | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  submitted_by: string | null;
  rollback: { status: string; trigger: string | null };
  retry_of: string | null;
  retried_by: string | null;
}

export interface StepView {
  name: string;
  adapter: string;
  action: string;
  status: string;
  attempts: number;
  started_at: string | null;
  finished_at: string | null;
  input: Record<string, unknown> | null;
  outputs: Record<string, unknown> | null;
  outputs_source: string | null;
  error: ErrorRecord | null;
  reason?: string;
  compensates?: string | null;
}

export interface ExecutionRecord extends Omit<Summary, 'rollback'> {
  workflow_name: string;
  rollback_on_failure: boolean;
  parameters: Record<string, unknown>;
  steps: StepView[];
  rollback: {
    status: string;
    trigger: string | null;
    requested_by: string | null;
    steps: StepView[];
  };
  logs_truncated: boolean;
}

export type Param = WpkParam;

export interface Workflow {
  workflow_id: string;
  name: string;
  version: string;
  description: string | null;
  labels: Record<string, string>;
  source: string;
  signed: boolean;
  parameters: Record<string, Param>;
  steps: string[];
  adapters: string[];
  rollback_enabled: boolean;
  timeout_seconds: number | null;
}

export interface Me {
  name: string;
  role: string;
  authentication: boolean;
  may: Record<'submit' | 'validate' | 'cancel' | 'cancel_any' | 'rollback' | 'retry' | 'audit', boolean>;
}

/** Every status, in the order the agent lists them. */
export const STATUSES = EXECUTION_STATUSES;

/** The statuses an execution ends in (rolling back aside). */
export const ENDED: ReadonlySet<string> = TERMINAL_STATUSES;

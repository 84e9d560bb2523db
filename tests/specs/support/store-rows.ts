/** Records as the engine would hand them to the store, for specs that fill a store directly. */
import type { LogLine, NewExecution } from '../../../services/runtime-agent/src/store/types.js';

export function newExecution(id: string, more: Partial<NewExecution> = {}): NewExecution {
  return {
    id,
    workflowId: 'w-1.0.0',
    workflowName: 'w',
    dryRun: false,
    rollbackOnFailure: false,
    parameters: {},
    secretParams: [],
    packageJson: '{}',
    stepsTotal: 1,
    createdAt: new Date().toISOString(),
    submittedBy: null,
    ...more,
  };
}

/** An info line of the execution's own log (no step, no stream) written now; `more` overrides any field. */
export function logLine(seq: number, message: string, more: Partial<LogLine> = {}): LogLine {
  return { seq, ts: new Date().toISOString(), level: 'info', step: null, stream: null, message, ...more };
}

/** Records as the engine would hand them to the store, for specs that fill a store directly. */
import type { NewExecution } from '../../../services/runtime-agent/src/store/types.js';

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

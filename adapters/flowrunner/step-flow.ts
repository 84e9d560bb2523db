/**
 * What the flowrunner `run` and `start` steps share to start a flow: the agent's settings for them, and
 * startFlow (the control API's own) with the container control's failures as the step's errors.
 */
import { AgentError, findInCauses } from '../errors.js';
import type { EgressPolicy } from '../shared/egress.js';
import { type ContainerControl, ContainerControlError } from './container/container-control.js';
import type { Shaping } from './container/traffic.js';
import type { FlowLog } from './control.js';
import type { LoadRunner } from './engine/index.js';
import { type ControlledFlow, startFlow } from './flow-start.js';
import type { BackgroundRuns } from './runs.js';

/** What the run and start actions are built with. */
export interface StepFlowSettings {
  /** Where bundled flowmaps named by path are read from. */
  flowmapsRoot: string;
  runs: BackgroundRuns;
  egress: EgressPolicy;
  /** Worker threads a run's users are shared among. */
  threads: number;
  /** The container control of FLOWRUNNER_CONTROL_CONFIG, shared with the control API's flow. */
  container?: ContainerControl;
  /** The agent's own log, for background runs. */
  log?: FlowLog;
}

/** startFlow for a step: a pre_start or tc failure becomes the step's error, with the command's output. */
export async function startStepFlow(
  create: () => LoadRunner,
  settings: StepFlowSettings,
  shaping: Shaping | undefined,
  holder: string,
): Promise<ControlledFlow> {
  try {
    return await startFlow(create, { container: settings.container, shaping, holder });
  } catch (err) {
    if (!(err instanceof ContainerControlError)) throw err;
    const cause = findInCauses(err, AgentError, 4);
    throw new AgentError(cause?.type ?? 'adapter_error', err.message, {
      retryable: false,
      cause: err,
      details: cause?.details,
    });
  }
}

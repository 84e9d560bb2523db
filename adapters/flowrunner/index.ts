/**
 * FlowRunner as a WPK adapter: `run` (bounded, outputs to gate on), `start`
 * (a background run; compensated by `stop`) and `stop`. The same engine serves
 * the FlowRunner control API (/api/*).
 */
import { join } from 'node:path';
import type { Adapter } from '../contract.js';
import type { WorkerFleet } from '../k8s/workers/fleet.js';
import { DEFAULT_EGRESS, EgressPolicy, type EgressSettings } from '../shared/egress.js';
import { findRoot } from '../shared/repo-root.js';
import { createRunAction } from './run.js';
import { BackgroundRuns } from './runs.js';
import type { FlowLog } from './control.js';
import type { ContainerControl } from './container/container-control.js';
import { createStartAction } from './start.js';
import { createStopAction } from './stop.js';
import { createDistributedActions } from './distributed.js';

export interface FlowrunnerSettings {
  /** Where bundled flowmaps named by path are read from (default: the repository's workflows/). */
  flowmapsRoot?: string;
  /** The agent's own log, for background runs (they outlive the step that started them). */
  log?: FlowLog;
  /** Where flows may send requests (default: DEFAULT_EGRESS). */
  egress?: EgressSettings;
  /** FlowRunner workers on Kubernetes, for distributed runs. */
  fleet?: WorkerFleet;
  /** Worker threads a run's users are shared among (default 1: the agent's event loop, no thread). */
  threads?: number;
  /**
   * The container control of FLOWRUNNER_CONTROL_CONFIG (pre_start/post_stop, traffic control) around the
   * flows of `run` and `start`; the agent gives the control API's flow the same one.
   */
  container?: ContainerControl;
}

export function createFlowrunnerAdapter(
  settings: FlowrunnerSettings = {},
): Adapter & { runs: BackgroundRuns; fleet?: WorkerFleet; container?: ContainerControl } {
  const root = settings.flowmapsRoot ?? join(findRoot(), 'workflows');
  const runs = new BackgroundRuns();
  const steps = {
    flowmapsRoot: root,
    runs,
    egress: new EgressPolicy(settings.egress ?? DEFAULT_EGRESS),
    threads: settings.threads ?? 1,
    container: settings.container,
    log: settings.log,
  };
  const actions = [
    createRunAction(steps),
    createStartAction(steps),
    createStopAction(runs),
    ...createDistributedActions(root, settings.fleet),
  ];
  return {
    name: 'flowrunner',
    description:
      'Multi-step HTTP flows with simulated users (FlowRunner flowmaps): bounded runs with numbers to gate on, and background runs.',
    actions: Object.fromEntries(actions.map((a) => [a.id, a])),
    readiness: () => ({ ready: true }),
    runs,
    fleet: settings.fleet,
    container: settings.container,
  };
}

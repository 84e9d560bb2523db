/** The FlowRunner engine: one implementation behind the control API (`/api/*`) and the flowrunner adapter. */
export {
  CONFIG_ALIASES,
  CONFIG_DEFAULTS,
  LIVE_FIELDS,
  MAX_MS,
  maxUsers,
  usersFor,
  parseConfig,
  parseUpdate,
  type FieldProblem,
  type FlowRunnerConfig,
} from './config.js';
export { parseFlowmap, requestSteps, type Flowmap, type Step } from './flowmap.js';
export {
  ERROR_KINDS,
  noErrors,
  PROM_BUCKETS,
  type ErrorKind,
  type PromSeries,
  type StatsSnapshot,
} from './stats.js';
export { planFirstIteration, type PlannedRequest } from './plan.js';
export { FlowRunner, type AppStatus, type RunLimit, type RunnerOptions, type RunSnapshot } from './runner.js';
export { isPublicIpv4, randomProfile, randomPublicIpv4 } from './realism.js';

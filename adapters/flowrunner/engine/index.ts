/** The FlowRunner engine: one implementation behind the control API (`/api/*`) and the flowrunner adapter. */
export {
  CONFIG_ALIASES,
  CONFIG_DEFAULTS,
  LIVE_FIELDS,
  MAX_MS,
  MAX_RAMP_SECONDS,
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
  RunStats,
  type ErrorKind,
  type PromSeries,
  type StatsSnapshot,
} from './stats.js';
export {
  emptyStats,
  MergeableStatsSchema,
  parseMergeableStats,
  STATS_FORMAT,
  statsOf,
  type MergeableStats,
  type RunWindow,
} from './stats-snapshot.js';
export { fleetTotals, mergeFleet, mergeStats, StatsMergeError, type FleetTotals } from './merge-stats.js';
export { decodeLatency, HIGHEST_US, LATENCY_UNIT, OVERALL_DIGITS } from './latency.js';
export { planFirstIteration, type PlannedRequest } from './plan.js';
export { FlowRunner, type AppStatus, type RunLimit, type RunnerOptions, type RunSnapshot } from './runner.js';
export { createRunner, type LoadRunner, type LoadRunnerOptions } from './load-runner.js';
export { ThreadedRunner } from './threaded-runner.js';
export { THREAD_IDLE_MS, ThreadPool, threadPool } from './thread-pool.js';
export type { RunTotals } from './thread-stats.js';
export { availableCores, MAX_THREADS, usersOf } from './threads.js';
export { isPublicIpv4, randomProfile, randomPublicIpv4 } from './realism.js';

/**
 * What drives a flow, on one event loop (FlowRunner) or over worker threads (ThreadedRunner): the control
 * API and the adapter use this surface only, and createRunner picks by the number of threads.
 */
import type { FlowRunnerConfig } from './config.js';
import type { Flowmap } from './flowmap.js';
import { FlowRunner, type AppStatus, type RunnerOptions, type RunSnapshot } from './runner.js';
import type { MergeableStats } from './stats-snapshot.js';
import type { RunTotals } from './thread-stats.js';
import type { ThreadPool } from './thread-pool.js';
import { ThreadedRunner } from './threaded-runner.js';

export interface LoadRunner {
  readonly status: AppStatus;
  readonly running: boolean;
  readonly done: Promise<void>;
  readonly currentConfig: FlowRunnerConfig;
  readonly stats: RunTotals;
  start(): void;
  stop(): Promise<void>;
  drain(graceMs: number): Promise<void>;
  update(config: FlowRunnerConfig): void;
  snapshot(): RunSnapshot;
  mergeableStats(): MergeableStats;
}

export interface LoadRunnerOptions extends RunnerOptions {
  /**
   * Worker threads to share the users among (default 1). 1 runs the flow on this event loop with no thread;
   * so does a flow that starts with one user (a thread would win it nothing, and it stays on the loop when
   * an update adds users), and an egress policy with a custom resolver (it cannot cross to a thread).
   */
  threads?: number;
  /** The threads to run on (default: the process's pool, threadPool). */
  pool?: ThreadPool;
}

export function createRunner(config: FlowRunnerConfig, flowmap: Flowmap, options: LoadRunnerOptions = {}): LoadRunner {
  const { threads = 1, ...rest } = options;
  const portable = !rest.egress || rest.egress.portableSettings() !== undefined;
  if (threads <= 1 || config.sim_users <= 1 || !portable || rest.random) return new FlowRunner(config, flowmap, rest);
  return new ThreadedRunner(config, flowmap, { ...rest, threads });
}

/**
 * Worker threads for FlowRunner: how many (the cores this process may use), how a flow's users are shared
 * among them, the messages they exchange, and how a thread is started from compiled JavaScript or, under
 * tsx, from TypeScript.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { EgressSettings } from '../../shared/egress.js';
import type { FlowRunnerConfig } from './config.js';
import type { Flowmap } from './flowmap.js';
import type { AppStatus } from './runner.js';
import type { MergeableStats } from './stats-snapshot.js';
import type { StepCounts } from './stats.js';

/** At most this many threads, whatever is asked for. */
export const MAX_THREADS = 64;
/** How often a thread sends its numbers while it runs. */
export const REPORT_INTERVAL_MS = 250;

/** CPUs the cgroup (v2 cpu.max, or v1 cfs quota) allows, rounded up; undefined without a limit. */
export function cgroupCpus(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  const quota = (q: number, period: number) => (q > 0 && period > 0 ? Math.max(1, Math.ceil(q / period)) : undefined);
  try {
    const [q, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    return q === 'max' ? undefined : quota(Number(q), Number(period));
  } catch {}
  try {
    return quota(
      Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').trim()),
      Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us').trim()),
    );
  } catch {
    return undefined;
  }
}

/** The cores this process may use: the CPUs it may run on, capped by the cgroup's CPU quota. */
export function availableCores(): number {
  const cpus = availableParallelism();
  return Math.max(1, Math.min(MAX_THREADS, cpus, cgroupCpus() ?? cpus));
}

/** Thread `thread`'s share of `users` over `threads`: as equal as can be, the remainder one each to the first. */
export function usersOf(users: number, thread: number, threads: number): number {
  return Math.floor(users / threads) + (thread < users % threads ? 1 : 0);
}

/** What a thread is started with. */
export interface ThreadInit {
  thread: number;
  threads: number;
  /** With the thread's share of sim_users. */
  config: FlowRunnerConfig;
  /** The flow's sim_users over every thread (for the ramp-up). */
  flowUsers: number;
  flowmap: Flowmap;
  iterations?: number;
  egress: EgressSettings;
}

/** A thread's numbers: its run's mergeable stats and per-step counters. */
export interface ThreadReport {
  status: AppStatus;
  pending_users: number;
  stats: MergeableStats;
  steps: StepCounts[];
}

export type ToThread =
  /** A flow's share for this thread: set it up, answer `ready`. */
  | { type: 'run'; init: ThreadInit }
  /** Every thread is ready: start now (the threads start together, whatever their start-up took). */
  | { type: 'go' }
  /** `config` with the thread's share of sim_users; `flowUsers`: the flow's over every thread. */
  | { type: 'update'; config: FlowRunnerConfig; flowUsers: number }
  | { type: 'stop' }
  | { type: 'drain'; graceMs: number };

export type FromThread =
  /** Set up, waiting for `go`. */
  | { type: 'ready' }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string }
  | { type: 'report'; report: ThreadReport }
  /** The thread's run ended (stopped, drained, its users done, or failed); its last numbers. */
  | { type: 'ended'; report: ThreadReport };

/** A message between the agent and a thread, for one flow (`run`: its number in the pool). */
export interface Envelope<M> {
  run: number;
  m: M;
}

/**
 * A thread running thread-worker: the compiled .js next to this file, or under tsx (this file is .ts) the .ts
 * through thread-worker-tsx.mjs, since a worker does not inherit the loader that lets the parent import
 * TypeScript.
 */
export function startThread(): Worker {
  const underTsx = import.meta.url.endsWith('.ts');
  return new Worker(new URL(underTsx ? './thread-worker-tsx.mjs' : './thread-worker.js', import.meta.url), {
    execArgv: [],
  });
}

/**
 * A run's mergeable stats built from its counters (the shape and its schema: stats-snapshot.ts). Apart from
 * the schema so that a run, and each FlowRunner thread, starts without loading the schema library.
 */
import { HIGHEST_US, LATENCY_UNIT, LOWEST_US, OVERALL_DIGITS, latencyHistogram, encodeLatency } from './latency.js';
import type { MergeableStats } from './stats-snapshot.js';
import { noErrors, type RunStats } from './stats.js';

/** Names this shape; a reader refuses another. */
export const STATS_FORMAT = 'flowrunner-stats/1';

/** What the run knows beyond its counters: its state and window. */
export interface RunWindow {
  running: boolean;
  started_at: string | null;
  ended_at: string | null;
  elapsed_seconds: number;
  sim_users: number;
  active_users: number;
  rps_last_second: number;
}

/** One run's mergeable stats: its counters and overall latency histogram, in its window. */
export function statsOf(stats: RunStats, run: RunWindow): MergeableStats {
  const { latency_count, latency_hdr, ...counters } = stats.counters();
  return {
    format: STATS_FORMAT,
    workers: 1,
    ...run,
    ...counters,
    latency: {
      unit: LATENCY_UNIT,
      significant_digits: OVERALL_DIGITS,
      lowest_discernible: LOWEST_US,
      highest_trackable: HIGHEST_US,
      count: latency_count,
      hdr: latency_hdr,
    },
  };
}

/** The stats of no run at all: what merging nothing gives, and what the control API answers before a start. */
export function emptyStats(): MergeableStats {
  return {
    format: STATS_FORMAT,
    workers: 0,
    running: false,
    started_at: null,
    ended_at: null,
    elapsed_seconds: 0,
    sim_users: 0,
    active_users: 0,
    requests: 0,
    flows_started: 0,
    flows_completed: 0,
    flows_failed: 0,
    flow_duration_ms_sum: 0,
    errors: noErrors(),
    status_classes: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    assertions_passed: 0,
    assertions_failed: 0,
    rps_last_second: 0,
    latency: {
      unit: LATENCY_UNIT,
      significant_digits: OVERALL_DIGITS,
      lowest_discernible: LOWEST_US,
      highest_trackable: HIGHEST_US,
      count: 0,
      hdr: encodeLatency(latencyHistogram()),
    },
  };
}

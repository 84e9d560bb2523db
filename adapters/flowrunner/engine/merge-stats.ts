/**
 * Many runs' numbers as one: the runs of a fleet's worker pods, or of one process's worker threads. Counters
 * add; latency percentiles come from the sum of the runs' HDR histograms, which is the histogram of all their
 * requests, never from averaging each run's percentiles (a slow worker's p99 says nothing about the fleet's).
 * Pure: no I/O, no clock.
 */
import { decodeLatency, latencyHistogram, OVERALL_DIGITS, encodeLatency, percentiles } from './latency.js';
import { emptyStats, STATS_FORMAT } from './stats-of.js';
import type { MergeableStats } from './stats-snapshot.js';
import { ERROR_KINDS, type ErrorKind } from './stats.js';

/** Stats that cannot be merged: another format, or a histogram that does not decode or disagrees with its count. */
export class StatsMergeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StatsMergeError';
  }
}

/**
 * One MergeableStats of all of `list`: exact (and associative, so merged stats merge again). The window runs
 * from the earliest start to the latest end (a running one ends at its elapsed_seconds); it is running while
 * any run is. Throws StatsMergeError naming the first bad entry.
 */
export function mergeStats(list: readonly MergeableStats[]): MergeableStats {
  const out = emptyStats();
  const merged = latencyHistogram();
  let digits: number = OVERALL_DIGITS;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  list.forEach((s, i) => {
    if (s.format !== STATS_FORMAT)
      throw new StatsMergeError(`stats ${i} are in format ${JSON.stringify(s.format)}; this reads ${STATS_FORMAT}`);
    let h: ReturnType<typeof decodeLatency>;
    try {
      h = decodeLatency(s.latency.hdr);
      merged.add(h);
    } catch (err) {
      throw new StatsMergeError(
        `stats ${i}: latency.hdr is not an HdrHistogram within 1..${merged.highestTrackableValue} µs: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (h.totalCount !== s.latency.count)
      throw new StatsMergeError(
        `stats ${i}: latency.count is ${s.latency.count} but its histogram holds ${h.totalCount}`,
      );
    digits = Math.min(digits, s.latency.significant_digits);
    out.workers += s.workers;
    out.running ||= s.running;
    if (s.started_at !== null) {
      const start = Date.parse(s.started_at);
      first = Math.min(first, start);
      last = Math.max(last, start + s.elapsed_seconds * 1000);
    }
    for (const k of [
      'sim_users',
      'active_users',
      'requests',
      'flows_started',
      'flows_completed',
      'flows_failed',
      'assertions_passed',
      'assertions_failed',
    ] as const)
      out[k] += s[k];
    out.flow_duration_ms_sum += s.flow_duration_ms_sum;
    out.rps_last_second += s.rps_last_second;
    for (const k of ERROR_KINDS) out.errors[k]! += s.errors[k] ?? 0;
    for (const c of ['1xx', '2xx', '3xx', '4xx', '5xx'] as const) out.status_classes[c] += s.status_classes[c];
  });
  if (Number.isFinite(first)) {
    out.started_at = new Date(first).toISOString();
    out.elapsed_seconds = Math.round(last - first) / 1000;
    out.ended_at = out.running ? null : new Date(last).toISOString();
  }
  out.flow_duration_ms_sum = Math.round(out.flow_duration_ms_sum * 100) / 100;
  out.latency = { ...out.latency, significant_digits: digits, count: merged.totalCount, hdr: encodeLatency(merged) };
  return out;
}

/** What a fleet run reports: totals, rates over the window, and percentiles of the merged histogram. */
export interface FleetTotals {
  workers: number;
  running: boolean;
  started_at: string | null;
  ended_at: string | null;
  window_seconds: number;
  sim_users: number;
  active_users: number;
  requests: number;
  flows_started: number;
  flows_completed: number;
  flows_failed: number;
  avg_flow_duration_ms: number;
  errors: Record<ErrorKind, number>;
  errors_total: number;
  status_classes: MergeableStats['status_classes'];
  assertions_passed: number;
  assertions_failed: number;
  /** requests / window_seconds. */
  rps: number;
  /** The sum of the runs' rolling one-second rates. */
  rps_last_second: number;
  /** Of every request of every run; within the histogram's precision (latency.significant_digits). */
  latency_ms: { p50: number; p95: number; p99: number; max: number; mean: number; significant_digits: number };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** The totals of one (usually merged) MergeableStats. */
export function fleetTotals(s: MergeableStats): FleetTotals {
  const p = percentiles(decodeLatency(s.latency.hdr));
  const flows = s.flows_completed + s.flows_failed;
  const errors = Object.fromEntries(ERROR_KINDS.map((k) => [k, s.errors[k] ?? 0])) as Record<ErrorKind, number>;
  return {
    workers: s.workers,
    running: s.running,
    started_at: s.started_at,
    ended_at: s.ended_at,
    window_seconds: s.elapsed_seconds,
    sim_users: s.sim_users,
    active_users: s.active_users,
    requests: s.requests,
    flows_started: s.flows_started,
    flows_completed: s.flows_completed,
    flows_failed: s.flows_failed,
    avg_flow_duration_ms: flows ? round2(s.flow_duration_ms_sum / flows) : 0,
    errors,
    errors_total: Object.values(errors).reduce((a, b) => a + b, 0),
    status_classes: { ...s.status_classes },
    assertions_passed: s.assertions_passed,
    assertions_failed: s.assertions_failed,
    rps: s.elapsed_seconds > 0 ? round2(s.requests / s.elapsed_seconds) : 0,
    rps_last_second: round2(s.rps_last_second),
    latency_ms: {
      p50: p.p50_ms,
      p95: p.p95_ms,
      p99: p.p99_ms,
      max: p.max_ms,
      mean: p.mean_ms,
      significant_digits: s.latency.significant_digits,
    },
  };
}

/** Fleet totals of many runs' stats: fleetTotals(mergeStats(list)). */
export function mergeFleet(list: readonly MergeableStats[]): FleetTotals {
  return fleetTotals(mergeStats(list));
}

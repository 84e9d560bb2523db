/**
 * The numbers of a threaded run from its threads' reports: the overall stats merged exactly (mergeStats, the
 * fleet's merge), per-step counters added and per-step latency histograms added, Prometheus buckets added.
 */
import { decodeLatency, latencyHistogram, percentiles, STEP_DIGITS } from './latency.js';
import { mergeStats } from './merge-stats.js';
import { emptyStats } from './stats-of.js';
import type { MergeableStats } from './stats-snapshot.js';
import {
  ERROR_KINDS,
  noErrors,
  PROM_BUCKETS,
  type ErrorKind,
  type PromSeries,
  type StatsSnapshot,
  type StepCounts,
  type StepStats,
} from './stats.js';
import type { ThreadReport } from './threads.js';

/** What FlowControl's Prometheus totals read from a run: RunStats has it, and so has a threaded run. */
export interface RunTotals {
  readonly totalRequests: number;
  readonly flowCount: number;
  readonly errors: Record<ErrorKind, number>;
  promSeries(): PromSeries[];
}

const round = (n: number) => Math.round(n * 100) / 100;

/** The merge of a set of thread reports, computed once per set. */
export class MergedReports implements RunTotals {
  readonly stats: MergeableStats;
  private readonly steps: Map<string, { counts: Omit<StepCounts, 'latency_hdr' | 'step'>; hdrs: string[] }>;

  constructor(
    readonly reports: readonly ThreadReport[],
    stepIds: readonly string[],
  ) {
    this.stats = reports.length ? mergeStats(reports.map((r) => r.stats)) : emptyStats();
    this.steps = new Map(
      stepIds.map((id) => [
        id,
        {
          counts: {
            requests: 0,
            errors: 0,
            assertions_passed: 0,
            assertions_failed: 0,
            prom: new Array<number>(PROM_BUCKETS.length + 1).fill(0),
            prom_sum: 0,
          },
          hdrs: [],
        },
      ]),
    );
    for (const r of reports)
      for (const s of r.steps) {
        const into = this.steps.get(s.step);
        if (!into) continue;
        const c = into.counts;
        c.requests += s.requests;
        c.errors += s.errors;
        c.assertions_passed += s.assertions_passed;
        c.assertions_failed += s.assertions_failed;
        c.prom_sum += s.prom_sum;
        s.prom.forEach((n, i) => (c.prom[i]! += n));
        into.hdrs.push(s.latency_hdr);
      }
  }

  get totalRequests(): number {
    return this.stats.requests;
  }

  get flowCount(): number {
    return this.stats.flows_completed;
  }

  get errors(): Record<ErrorKind, number> {
    const out = noErrors();
    for (const k of ERROR_KINDS) out[k] = this.stats.errors[k] ?? 0;
    return out;
  }

  get pendingUsers(): number {
    return this.reports.reduce((n, r) => n + r.pending_users, 0);
  }

  promSeries(): PromSeries[] {
    return [...this.steps].map(([step, { counts }]) => {
      let acc = 0;
      const cumulative = PROM_BUCKETS.map((_, i) => (acc += counts.prom[i]!));
      return { step, cumulative, sum: counts.prom_sum, count: counts.requests };
    });
  }

  /** The numbers of /api/metrics, as one run's StatsSnapshot. */
  snapshot(): StatsSnapshot {
    const s = this.stats;
    const per_step: Record<string, StepStats> = {};
    for (const [id, { counts, hdrs }] of this.steps) {
      const h = latencyHistogram(STEP_DIGITS);
      for (const hdr of hdrs) h.add(decodeLatency(hdr));
      per_step[id] = {
        requests: counts.requests,
        errors: counts.errors,
        assertions_passed: counts.assertions_passed,
        assertions_failed: counts.assertions_failed,
        ...percentiles(h),
      };
    }
    const flows = s.flows_completed + s.flows_failed;
    const errors = this.errors;
    return {
      rps: s.rps_last_second,
      total_requests: s.requests,
      flow_count: s.flows_completed,
      flows_failed: s.flows_failed,
      avg_flow_duration_ms: flows ? round(s.flow_duration_ms_sum / flows) : 0,
      errors_total: Object.values(errors).reduce((a, b) => a + b, 0),
      errors,
      status_classes: { ...s.status_classes },
      assertions_passed: s.assertions_passed,
      assertions_failed: s.assertions_failed,
      ...percentiles(decodeLatency(s.latency.hdr)),
      per_step,
    };
  }
}

/**
 * What a run measures, in fixed memory whatever its length: counters, a
 * rolling one-second request rate (ten 100 ms buckets), and HDR latency
 * histograms overall and per request step id (ids come from the flowmap, so
 * their number is bounded).
 */
import type { Histogram } from 'hdr-histogram-js';
import { encodeLatency, latencyHistogram, percentiles, STEP_DIGITS, toMicros, type Percentiles } from './latency.js';

export type { Percentiles } from './latency.js';

/** Failed requests by kind; `extraction` and `invalid_request` (a URL that could not be built, nothing sent) are not requests. */
export type ErrorKind = 'network' | 'timeout' | 'http_4xx' | 'http_5xx' | 'http_3xx' | 'extraction' | 'invalid_request';
export const ERROR_KINDS: readonly ErrorKind[] = [
  'network',
  'timeout',
  'http_3xx',
  'http_4xx',
  'http_5xx',
  'extraction',
  'invalid_request',
];

/** A count of zero for every kind. */
export function noErrors(): Record<ErrorKind, number> {
  return Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<ErrorKind, number>;
}

export interface StepStats extends Percentiles {
  requests: number;
  errors: number;
  assertions_passed: number;
  assertions_failed: number;
}

export interface StatsSnapshot extends Percentiles {
  rps: number;
  total_requests: number;
  flow_count: number;
  flows_failed: number;
  avg_flow_duration_ms: number;
  errors_total: number;
  errors: Record<ErrorKind, number>;
  status_classes: Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;
  assertions_passed: number;
  assertions_failed: number;
  per_step: Record<string, StepStats>;
}

/** Upper bounds (seconds) of the Prometheus request-duration histogram. */
export const PROM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One step's Prometheus histogram: cumulative counts per bucket of PROM_BUCKETS (then +Inf = count). */
export interface PromSeries {
  step: string;
  cumulative: number[];
  sum: number;
  count: number;
}

/** One request step's numbers in a form that adds up (RunStats.stepCounters). */
export interface StepCounts {
  step: string;
  requests: number;
  errors: number;
  assertions_passed: number;
  assertions_failed: number;
  /** The step's latency histogram (STEP_DIGITS), encoded as encodeLatency does. */
  latency_hdr: string;
  /** Requests per PROM_BUCKETS bucket, not cumulative; the last slot is above the largest bound. */
  prom: number[];
  prom_sum: number;
}

interface StepCounters {
  /** Per bucket (not cumulative); the last slot is above the largest bound. */
  prom: Float64Array;
  promSum: number;
  requests: number;
  errors: number;
  passed: number;
  failed: number;
  latency: Histogram;
}

const BUCKET_MS = 100;
const BUCKETS = 10;

export class RunStats {
  totalRequests = 0;
  flowCount = 0;
  flowsFailed = 0;
  private flowDurationSum = 0;
  readonly errors: Record<ErrorKind, number> = noErrors();
  readonly classes = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  assertionsPassed = 0;
  assertionsFailed = 0;
  /** Flow instances begun (completed, failed, or cut short by stop or by lowering sim_users). */
  flowsStarted = 0;
  private readonly latency = latencyHistogram();
  private readonly steps = new Map<string, StepCounters>();
  private readonly bucketCounts = new Float64Array(BUCKETS);
  private readonly bucketIds = new Float64Array(BUCKETS).fill(-1);

  constructor(stepIds: string[]) {
    for (const id of stepIds)
      this.steps.set(id, {
        prom: new Float64Array(PROM_BUCKETS.length + 1),
        promSum: 0,
        requests: 0,
        errors: 0,
        passed: 0,
        failed: 0,
        latency: latencyHistogram(STEP_DIGITS),
      });
  }

  /** One finished request (any outcome with a response or an error). */
  request(stepId: string, latencyMs: number, status: number | undefined, now: number): void {
    this.totalRequests++;
    const us = toMicros(latencyMs);
    this.latency.recordValue(us);
    const s = this.steps.get(stepId);
    if (s) {
      s.requests++;
      s.latency.recordValue(us);
      const seconds = latencyMs / 1000;
      let b = 0;
      while (b < PROM_BUCKETS.length && seconds > PROM_BUCKETS[b]!) b++;
      s.prom[b]!++;
      s.promSum += seconds;
    }
    if (status !== undefined) {
      const c = Math.floor(status / 100);
      if (c === 2) this.classes['2xx']++;
      else if (c === 3) this.classes['3xx']++;
      else if (c === 4) this.classes['4xx']++;
      else if (c === 5) this.classes['5xx']++;
      else if (c === 1) this.classes['1xx']++;
    }
    const id = Math.floor(now / BUCKET_MS);
    const slot = id % BUCKETS;
    if (this.bucketIds[slot] !== id) {
      this.bucketIds[slot] = id;
      this.bucketCounts[slot] = 0;
    }
    this.bucketCounts[slot]!++;
  }

  error(stepId: string, kind: ErrorKind): void {
    this.errors[kind]++;
    const s = this.steps.get(stepId);
    if (s) s.errors++;
  }

  assertion(stepId: string, passed: boolean): void {
    if (passed) this.assertionsPassed++;
    else this.assertionsFailed++;
    const s = this.steps.get(stepId);
    if (s) {
      if (passed) s.passed++;
      else s.failed++;
    }
  }

  flowStarted(): void {
    this.flowsStarted++;
  }

  flow(durationMs: number, failed: boolean): void {
    if (failed) this.flowsFailed++;
    else this.flowCount++;
    this.flowDurationSum += durationMs;
  }

  /** Requests finished in the last second (the current partial bucket scaled in). */
  rps(now: number): number {
    const current = Math.floor(now / BUCKET_MS);
    let sum = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const id = this.bucketIds[i]!;
      if (id > current - BUCKETS && id <= current) sum += this.bucketCounts[i]!;
    }
    // The oldest bucket is only partly inside the window; the current one is partly elapsed: together about one second.
    return sum;
  }

  snapshot(now: number): StatsSnapshot {
    const per_step: Record<string, StepStats> = {};
    for (const [id, s] of this.steps)
      per_step[id] = {
        requests: s.requests,
        errors: s.errors,
        assertions_passed: s.passed,
        assertions_failed: s.failed,
        ...percentiles(s.latency),
      };
    const flows = this.flowCount + this.flowsFailed;
    return {
      rps: this.rps(now),
      total_requests: this.totalRequests,
      flow_count: this.flowCount,
      flows_failed: this.flowsFailed,
      avg_flow_duration_ms: flows ? round(this.flowDurationSum / flows) : 0,
      errors_total: Object.values(this.errors).reduce((a, b) => a + b, 0),
      errors: { ...this.errors },
      status_classes: { ...this.classes },
      assertions_passed: this.assertionsPassed,
      assertions_failed: this.assertionsFailed,
      ...percentiles(this.latency),
      per_step,
    };
  }

  /** Request durations per step as Prometheus histogram series (bounded: one per request step of the flowmap). */
  promSeries(): PromSeries[] {
    const out: PromSeries[] = [];
    for (const [step, s] of this.steps) {
      const cumulative: number[] = [];
      let acc = 0;
      for (let i = 0; i < PROM_BUCKETS.length; i++) {
        acc += s.prom[i]!;
        cumulative.push(acc);
      }
      out.push({ step, cumulative, sum: s.promSum, count: s.requests });
    }
    return out;
  }

  /** The exact counters and the overall latency histogram, encoded: what adds up across runs (stats-snapshot.ts). */
  counters() {
    return {
      requests: this.totalRequests,
      flows_started: this.flowsStarted,
      flows_completed: this.flowCount,
      flows_failed: this.flowsFailed,
      flow_duration_ms_sum: round(this.flowDurationSum),
      errors: { ...this.errors },
      status_classes: { ...this.classes },
      assertions_passed: this.assertionsPassed,
      assertions_failed: this.assertionsFailed,
      latency_count: this.latency.totalCount,
      latency_hdr: encodeLatency(this.latency),
    };
  }

  /** Each request step's counters and latency histogram (encoded), Prometheus buckets not cumulative: what adds up across threads. */
  stepCounters(): StepCounts[] {
    return [...this.steps].map(([step, s]) => ({
      step,
      requests: s.requests,
      errors: s.errors,
      assertions_passed: s.passed,
      assertions_failed: s.failed,
      latency_hdr: encodeLatency(s.latency),
      prom: [...s.prom],
      prom_sum: s.promSum,
    }));
  }

  /** The overall latency histogram (microseconds), for exporting buckets. */
  get latencyHistogram(): Histogram {
    return this.latency;
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

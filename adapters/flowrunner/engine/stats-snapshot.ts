/**
 * A run's numbers in a form that merges exactly (merge-stats.ts): counters that add, and the request-latency
 * HDR histogram encoded losslessly, with the window they were counted in. One declaration gives the JSON
 * Schema (the control API's `GET /api/stats` answer) and the static type.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { LATENCY_UNIT } from './latency.js';
import { STATS_FORMAT } from './stats-of.js';
import { ERROR_KINDS } from './stats.js';

export { emptyStats, STATS_FORMAT, statsOf, type RunWindow } from './stats-of.js';

const Count = Type.Integer({ minimum: 0 });
const Instant = Type.Union([Type.String({ description: 'ISO 8601, UTC' }), Type.Null()]);
const closed = { additionalProperties: false } as const;

export const LatencyHistogramSchema = Type.Object(
  {
    unit: Type.Literal(LATENCY_UNIT, { description: 'values are microseconds' }),
    significant_digits: Type.Integer({ minimum: 1, maximum: 5, description: '3: each value within 0.1%' }),
    lowest_discernible: Type.Integer({ minimum: 1 }),
    highest_trackable: Type.Integer({ minimum: 2, description: 'longer latencies are recorded as this' }),
    count: Type.Integer({ minimum: 0, description: 'latencies recorded: one per request' }),
    hdr: Type.String({
      minLength: 1,
      description: "HdrHistogram's compressed V2 encoding in base64 (encodeIntoCompressedBase64)",
    }),
  },
  closed,
);

export const MergeableStatsSchema = Type.Object(
  {
    format: Type.Literal(STATS_FORMAT),
    workers: Type.Integer({ minimum: 0, description: 'runs merged into this: 1 for one run' }),
    running: Type.Boolean({ description: 'a run is still going' }),
    started_at: Instant,
    ended_at: Type.Union([Type.String({ description: 'ISO 8601, UTC' }), Type.Null()], {
      description: 'null while running or before the first start',
    }),
    elapsed_seconds: Type.Number({
      minimum: 0,
      description: 'from started_at to ended_at (or to now while running), millisecond precision',
    }),
    sim_users: Count,
    active_users: Count,
    requests: Count,
    flows_started: Count,
    flows_completed: Count,
    flows_failed: Count,
    flow_duration_ms_sum: Type.Number({ minimum: 0 }),
    errors: Type.Object(Object.fromEntries(ERROR_KINDS.map((k) => [k, Count])), closed),
    status_classes: Type.Object({ '1xx': Count, '2xx': Count, '3xx': Count, '4xx': Count, '5xx': Count }, closed),
    assertions_passed: Count,
    assertions_failed: Count,
    rps_last_second: Type.Number({ minimum: 0, description: 'requests finished in the last second (adds up)' }),
    latency: LatencyHistogramSchema,
  },
  { ...closed, description: 'see docs/flowrunner.md#mergeable-stats' },
);

/** A run's mergeable numbers; `errors` by ErrorKind. */
export type MergeableStats = Static<typeof MergeableStatsSchema>;

/**
 * Stats read from elsewhere (a worker's `GET /api/stats` answer), checked against the schema: the stats, or
 * every problem as `path: message`. The histogram's encoding is checked when merged.
 */
export function parseMergeableStats(
  raw: unknown,
): { ok: true; stats: MergeableStats } | { ok: false; problems: string[] } {
  if (Value.Check(MergeableStatsSchema, raw)) return { ok: true, stats: raw };
  const problems = [...Value.Errors(MergeableStatsSchema, raw)].map((e) => `${e.path || '/'}: ${e.message}`);
  return { ok: false, problems: problems.slice(0, 20) };
}

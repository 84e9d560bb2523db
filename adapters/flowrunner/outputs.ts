/** The numbers a flow run outputs, which a package can gate on: their schema and type, and how a run's snapshot gives them. */
import { type Static, Type } from '@sinclair/typebox';
import { Dictionary } from '../shared/schemas.js';
import type { RunSnapshot } from './engine/index.js';

const Count = Type.Integer({ minimum: 0 });
const Milliseconds = Type.Number({ minimum: 0 });

export const RunOutputs = Type.Object(
  {
    requests: Count,
    flows: Count,
    flows_failed: Count,
    errors: Count,
    error_rate: Type.Number({ minimum: 0, maximum: 1, description: 'failed requests / requests' }),
    rps: Type.Number({ minimum: 0 }),
    p50_ms: Milliseconds,
    p95_ms: Milliseconds,
    p99_ms: Milliseconds,
    assertions_passed: Count,
    assertions_failed: Count,
    duration_seconds: Type.Number({ minimum: 0 }),
    per_step: Dictionary(
      Type.Object(
        { requests: Count, errors: Count, p95_ms: Milliseconds, assertions_failed: Count },
        { additionalProperties: false },
      ),
      { description: 'by request step id' },
    ),
  },
  { additionalProperties: false },
);
export type RunOutputs = Static<typeof RunOutputs>;

export function outputsOf(s: RunSnapshot, seconds: number): RunOutputs {
  const per_step: RunOutputs['per_step'] = {};
  for (const [id, x] of Object.entries(s.per_step))
    per_step[id] = { requests: x.requests, errors: x.errors, p95_ms: x.p95_ms, assertions_failed: x.assertions_failed };
  const errors = s.errors.network + s.errors.timeout + s.errors.http_3xx + s.errors.http_4xx + s.errors.http_5xx;
  return {
    requests: s.total_requests,
    flows: s.flow_count,
    flows_failed: s.flows_failed,
    errors,
    error_rate: s.total_requests ? Math.round((errors / s.total_requests) * 10_000) / 10_000 : 0,
    rps: seconds > 0 ? Math.round((s.total_requests / seconds) * 10) / 10 : 0,
    p50_ms: s.p50_ms,
    p95_ms: s.p95_ms,
    p99_ms: s.p99_ms,
    assertions_passed: s.assertions_passed,
    assertions_failed: s.assertions_failed,
    duration_seconds: Math.round(seconds * 10) / 10,
    per_step,
  };
}

export const EXAMPLE_OUTPUTS: RunOutputs = {
  requests: 1200,
  flows: 400,
  flows_failed: 0,
  errors: 0,
  error_rate: 0,
  rps: 40,
  p50_ms: 12,
  p95_ms: 45,
  p99_ms: 80,
  assertions_passed: 400,
  assertions_failed: 0,
  duration_seconds: 30,
  per_step: {},
};

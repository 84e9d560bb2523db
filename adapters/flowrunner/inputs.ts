/**
 * What the flowrunner actions share: the `config` + `flowmap` input (a flowmap
 * inline, or the path of one bundled under workflows/), its validation with
 * every problem listed, the dry-run plan, and the outputs a package can gate on.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, normalize, relative } from 'node:path';
import type { JsonSchema, StepContext } from '../contract.js';
import { ValidationError, type Problem } from '../errors.js';
import { sensitiveValues } from '../shared/sensitive.js';
import type { EgressPolicy } from '../shared/egress.js';
import { refusalWithoutDns } from './egress-check.js';
import {
  parseConfig,
  parseFlowmap,
  planFirstIteration,
  type FieldProblem,
  type Flowmap,
  type FlowRunnerConfig,
  type RunSnapshot,
} from './engine/index.js';

export interface FlowInput {
  config: Record<string, unknown>;
  flowmap: Record<string, unknown> | string;
}

export const configSchema: JsonSchema = {
  description:
    'FlowRunner configuration, as /api/start takes it: flow_target_url, sim_users, min_sleep_ms, max_sleep_ms, flow_cycle_delay_ms, flow_target_dns_override, xff_header_name, override_step_url_host, debug.',
  type: 'object',
  properties: {
    flow_target_url: { description: 'Absolute http(s) base URL of the target.', type: 'string', minLength: 1 },
    sim_users: { description: 'Concurrent simulated users (default 1 here).', type: 'integer', minimum: 1 },
  },
};

export const flowmapSchema: JsonSchema = {
  description:
    'A flowmap object, or the path of a flowmap file bundled under workflows/ (e.g. flowmaps/health-probe.json).',
  type: ['object', 'string'],
};

const at = (loc: Array<string | number>): string =>
  `$.with.${loc.slice(1).join('.')}`.replace(/\.(\d+)(?=\.|$)/g, '[$1]');

function problemsOf(list: FieldProblem[]): Problem[] {
  return list.map((p) => ({ path: at(p.loc), message: p.msg }));
}

/** A bundled flowmap file, confined to the workflows folder. */
function loadBundled(path: string, flowmapsRoot: string): unknown {
  const full = normalize(isAbsolute(path) ? path : join(flowmapsRoot, path));
  const rel = relative(flowmapsRoot, full);
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new ValidationError('invalid flowmap', [
      { path: '$.with.flowmap', message: `must be a file under the bundled workflows folder, got ${path}` },
    ]);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch {
    throw new ValidationError('invalid flowmap', [
      { path: '$.with.flowmap', message: `no bundled flowmap ${path} (looked in ${flowmapsRoot})` },
    ]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ValidationError('invalid flowmap', [
      { path: '$.with.flowmap', message: `${path} is not valid JSON: ${(err as Error).message}` },
    ]);
  }
}

/** Credentials in an inline flowmap's headers (root and steps, however deep); a bundled flowmap is not in the input. */
export function flowmapSecrets(flowmap: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth > 32 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (k === 'headers' && x !== null && typeof x === 'object' && !Array.isArray(x))
        out.push(...sensitiveValues(x as Record<string, unknown>));
      else walk(x, depth + 1);
    }
  };
  walk(flowmap, 0);
  return out;
}

/** The validated config and flowmap; sim_users defaults to 1 (a package usually checks, it does not load-test). */
export function prepare(input: FlowInput, flowmapsRoot: string): { config: FlowRunnerConfig; flowmap: Flowmap } {
  const rawMap = typeof input.flowmap === 'string' ? loadBundled(input.flowmap, flowmapsRoot) : input.flowmap;
  const c = parseConfig({ sim_users: 1, ...input.config }, ['with', 'config']);
  const f = parseFlowmap(rawMap, ['with', 'flowmap']);
  const problems = [...(c.ok ? [] : problemsOf(c.problems)), ...(f.ok ? [] : problemsOf(f.problems))];
  if (!c.ok || !f.ok) throw new ValidationError(`invalid flowrunner input: ${problems.length} problem(s)`, problems);
  return { config: c.config, flowmap: f.flowmap };
}

/** Dry run: the first iteration's requests, rendered, into the log; nothing is sent. */
export function logPlan(ctx: StepContext, config: FlowRunnerConfig, flowmap: Flowmap): number {
  const plan = planFirstIteration(config, flowmap);
  ctx.log.info(
    `dry run: would run flowmap ${flowmap.name ?? flowmap.id ?? '(unnamed)'} with ${config.sim_users} user(s) against ${config.flow_target_url}; first iteration:`,
  );
  for (const r of plan) {
    ctx.log.info(
      `  ${r.under ? `[${r.under}] ` : ''}${r.step}: ${r.method} ${r.url}${r.body !== undefined ? ` body ${r.body.length > 500 ? `${r.body.slice(0, 500)}…` : r.body}` : ''}`,
    );
  }
  return plan.length;
}

export interface RunOutputs {
  [k: string]: unknown;
  requests: number;
  flows: number;
  flows_failed: number;
  errors: number;
  error_rate: number;
  rps: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  assertions_passed: number;
  assertions_failed: number;
  duration_seconds: number;
  per_step: Record<string, { requests: number; errors: number; p95_ms: number; assertions_failed: number }>;
}

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

/**
 * The dry run of run and start: validate, log the plan, warn of a destination the egress policy would refuse
 * (a warning: hosts may be dry-run placeholders, and DNS is not asked), let the engine fill in the example outputs.
 */
export function dryRunPlan(flowmapsRoot: string, egress: EgressPolicy) {
  return (ctx: StepContext, input: FlowInput): undefined => {
    const { config, flowmap } = prepare(input, flowmapsRoot);
    logPlan(ctx, config, flowmap);
    const refusal = refusalWithoutDns(config, flowmap, egress);
    if (refusal) ctx.log.warn(`dry run: the run would fail: ${refusal.message}`);
    return undefined;
  };
}

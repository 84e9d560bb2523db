/**
 * What the flowrunner actions share: the `config` + `flowmap` input (a flowmap
 * inline, or the path of one bundled under workflows/), its validation with
 * every problem listed, and the dry-run plan.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, normalize, relative } from 'node:path';
import { Type } from '@sinclair/typebox';
import { type StepContext, USE_EXAMPLE_OUTPUT } from '../contract.js';
import { ValidationError, type Problem } from '../errors.js';
import { TypeList } from '../shared/schemas.js';
import { sensitiveValues } from '../shared/sensitive.js';
import type { EgressPolicy } from '../shared/egress.js';
import type { ContainerControl } from './container/container-control.js';
import { MAX_BANDWIDTH_MBPS, MAX_LATENCY_MS } from './container/settings.js';
import type { Shaping } from './container/traffic.js';
import { refusalWithoutDns } from './egress-check.js';
import {
  MAX_RAMP_SECONDS,
  parseConfig,
  parseFlowmap,
  planFirstIteration,
  type FieldProblem,
  type Flowmap,
  type FlowRunnerConfig,
} from './engine/index.js';

/** The input properties of `run` and `start`: the FlowRunner configuration and the flowmap. */
export const FlowInputProperties = {
  config: Type.Object(
    {
      flow_target_url: Type.Optional(
        Type.String({ description: 'Absolute http(s) base URL of the target.', minLength: 1 }),
      ),
      sim_users: Type.Optional(
        Type.Integer({ description: 'Concurrent simulated users (default 1 here).', minimum: 1 }),
      ),
      ramp_up_seconds: Type.Optional(
        Type.Number({
          description: 'Users start evenly spread over this many seconds (default 0: all at once).',
          minimum: 0,
          maximum: MAX_RAMP_SECONDS,
        }),
      ),
      bandwidth_limit_mbps: Type.Optional(
        Type.Number({
          description:
            "Traffic control (the agent's FLOWRUNNER_CONTROL_CONFIG with traffic_control.enabled): the flow's bandwidth limit in Mbit/s, applied with tc before the flow starts and removed when it ends (0: none; without it the file's default_bandwidth_mbps). The key is the file's bandwidth_mbps_key; this is its default name.",
          minimum: 0,
          maximum: MAX_BANDWIDTH_MBPS,
        }),
      ),
      latency_ms: Type.Optional(
        Type.Number({
          description:
            "Traffic control: latency added to the flow's traffic in ms, through netem (0: none; without it the file's default_latency_ms). The key is the file's latency_ms_key; this is its default name.",
          minimum: 0,
          maximum: MAX_LATENCY_MS,
        }),
      ),
    },
    {
      description:
        'FlowRunner configuration, as /api/start takes it: flow_target_url, sim_users, ramp_up_seconds, min_sleep_ms, max_sleep_ms, flow_cycle_delay_ms, flow_target_dns_override, xff_header_name, override_step_url_host, debug; and the traffic control keys the container-control file names.',
    },
  ),
  flowmap: TypeList<Record<string, unknown> | string>(['object', 'string'], {
    description:
      'A flowmap object, or the path of a flowmap file bundled under workflows/ (e.g. flowmaps/health-probe.json).',
  }),
};

/** What `prepare` reads of an input: the configuration may name any of /api/start's fields. */
export interface FlowInput {
  config: Record<string, unknown>;
  flowmap: Record<string, unknown> | string;
}

const at = (loc: Array<string | number>): string =>
  `$.with.${loc.slice(1).join('.')}`.replace(/\.(\d+)(?=\.|$)/g, '[$1]');

/** FlowRunner's field problems (loc from ['with', ...]) as the step's input problems ($.with...). */
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

/** The flowmap as given (inline) or as its bundled file holds it, not yet validated: what /api/start takes. */
export function rawFlowmap(input: FlowInput, flowmapsRoot: string): unknown {
  return typeof input.flowmap === 'string' ? loadBundled(input.flowmap, flowmapsRoot) : input.flowmap;
}

/**
 * The validated config and flowmap; sim_users defaults to 1 (a package usually checks, it does not load-test).
 * With a container control, the traffic control `config` asks for under the file's key names (its defaults
 * without them), read as /api/start reads its body; every problem of the three at once.
 */
export function prepare(
  input: FlowInput,
  flowmapsRoot: string,
  container?: ContainerControl,
): { config: FlowRunnerConfig; flowmap: Flowmap; shaping?: Shaping } {
  const rawMap = rawFlowmap(input, flowmapsRoot);
  const c = parseConfig({ sim_users: 1, ...input.config }, ['with', 'config']);
  const f = parseFlowmap(rawMap, ['with', 'flowmap']);
  const s = container?.readShaping({ config: input.config }, 'start') ?? { ok: true };
  const problems = [
    ...(c.ok ? [] : problemsOf(c.problems)),
    ...(f.ok ? [] : problemsOf(f.problems)),
    ...(s.ok ? [] : problemsOf(s.problems)),
  ];
  if (!c.ok || !f.ok || !s.ok)
    throw new ValidationError(`invalid flowrunner input: ${problems.length} problem(s)`, problems);
  return { config: c.config, flowmap: f.flowmap, shaping: s.shaping };
}

/** Dry run: the first iteration's requests, rendered, into the log; nothing is sent. */
export function logPlan(ctx: StepContext, config: FlowRunnerConfig, flowmap: Flowmap): number {
  const plan = planFirstIteration(config, flowmap);
  ctx.log.info(
    `dry run: would run flowmap ${flowmap.name ?? flowmap.id ?? '(unnamed)'} with ${config.sim_users} user(s)${config.ramp_up_seconds > 0 ? ` started over ${config.ramp_up_seconds} s` : ''} against ${config.flow_target_url}; first iteration:`,
  );
  for (const r of plan) {
    ctx.log.info(
      `  ${r.under ? `[${r.under}] ` : ''}${r.step}: ${r.method} ${r.url}${r.body !== undefined ? ` body ${r.body.length > 500 ? `${r.body.slice(0, 500)}…` : r.body}` : ''}`,
    );
  }
  return plan.length;
}

/**
 * The dry run of run and start: validate, log the plan and what the container control would do around the
 * flow (nothing is run), warn of a destination the egress policy
 * would refuse (a warning: hosts may be dry-run placeholders, and DNS is not asked), let the engine fill in
 * the example outputs.
 */
export function dryRunPlan(
  ctx: StepContext,
  input: FlowInput,
  flowmapsRoot: string,
  egress: EgressPolicy,
  container?: ContainerControl,
): typeof USE_EXAMPLE_OUTPUT {
  const { config, flowmap, shaping } = prepare(input, flowmapsRoot, container);
  logPlan(ctx, config, flowmap);
  for (const line of container?.plan(shaping) ?? []) ctx.log.info(`dry run: ${line}`);
  const refusal = refusalWithoutDns(config, flowmap, egress);
  if (refusal) ctx.log.warn(`dry run: the run would fail: ${refusal.message}`);
  return USE_EXAMPLE_OUTPUT;
}

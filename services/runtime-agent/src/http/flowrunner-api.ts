/**
 * The FlowRunner container-control API (docs/flowrunner.md, Control API) for the platform that drives
 * FlowRunner containers. Answers are shaped as FastAPI shapes them, since that platform's clients read them:
 * field problems as `{ detail: [{ loc, msg, type }] }`, any other refusal as `{ detail: "sentence" }`. Thin
 * handlers: parse, call FlowControl, answer.
 */
import { randomUUID } from 'node:crypto';
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import { AgentError } from '../../../../adapters/errors.js';
import {
  FlowControlClosed,
  parseStartRequest,
  START_MESSAGE,
  UPDATE_MESSAGE,
  type FlowControl,
} from '../../../../adapters/flowrunner/control.js';
import { ContainerControlError } from '../../../../adapters/flowrunner/container/container-control.js';
import {
  MergeableStatsSchema,
  type FieldProblem,
  type RunSnapshot,
} from '../../../../adapters/flowrunner/engine/index.js';
import type { SystemSampler } from '../../../../adapters/flowrunner/system.js';
import { JsonTooDeepError, readJson } from './body.js';
import type { RouteDoc } from './openapi.js';
import { FlowAnswer, FlowDetail } from './schemas.js';

const flowDoc = (
  method: 'get' | 'post',
  path: string,
  summary: string,
  responses: RouteDoc['responses'],
): RouteDoc => ({
  method,
  path,
  summary,
  needs: 'flowrunner',
  errorSchema: FlowDetail,
  responses: { 200: { description: 'see docs/flowrunner.md#control-api', schema: FlowAnswer }, ...responses },
});
const refused = (description: string) => ({ description, schema: FlowDetail });

/** The control API's routes, for the OpenAPI document: FastAPI's `{ detail }` answers its errors. */
export const flowRunnerRouteDocs: RouteDoc[] = [
  flowDoc('post', '/api/start', 'Starts a flow (replacing a running one): { config, flowmap }', {
    400: refused('the body is not JSON, or fields are invalid: each in `detail` with its `loc`'),
    413: refused('the body is larger than BODY_LIMIT_BYTES'),
  }),
  flowDoc(
    'post',
    '/api/stop',
    'Stops the running flow: at once, or with { graceful_stop_seconds } after its requests in flight finish',
    { 400: refused('graceful_stop_seconds is not a number from 0 to 300') },
  ),
  flowDoc('post', '/api/update', 'Changes a running flow (sim_users, sleeps, ramp_up_seconds)', {
    400: refused('no flow is running, or fields are invalid'),
    409: refused('a field cannot change while the flow runs'),
    413: refused('the body is larger than BODY_LIMIT_BYTES'),
  }),
  flowDoc('get', '/api/health', '{ status, app_status }', {}),
  flowDoc('get', '/api/metrics', 'The flow and container numbers', {}),
  flowDoc(
    'get',
    '/api/stats',
    "The flow's numbers in a form that merges exactly across agents: counters and the latency HDR histogram",
    {
      200: {
        description: 'see docs/flowrunner.md#mergeable-stats; before the first start, the stats of no run (workers 0)',
        schema: MergeableStatsSchema,
      },
    },
  ),
];

export interface FlowApiDeps {
  flows: FlowControl;
  system: SystemSampler;
  bodyLimitBytes: number;
  /** Who may call the control API (the admin role). */
  guard: Middleware;
}

/** An /api answer other than 200: FastAPI's `{ detail }`, field problems or a sentence. */
export class DetailError extends Error {
  constructor(
    readonly status: number,
    readonly detail: FieldProblem[] | string,
  ) {
    super(typeof detail === 'string' ? detail : `${detail.length} problem(s) in the request`);
  }
}

/** The router matches paths case-insensitively, so this does too (`/API/start` is the control API). */
const isApi = (path: string) => {
  const p = path.toLowerCase();
  return p === '/api' || p.startsWith('/api/');
};

/**
 * Errors of /api/* as FastAPI answers them (the agent's own routes keep `{ error_type, message, details }`).
 * Sits inside the agent's error middleware and before the router.
 */
export function apiErrorMiddleware(logger: Logger): Middleware {
  return async (ctx, next) => {
    if (!isApi(ctx.path)) return next();
    try {
      await next();
      if (ctx.status === 501 && ctx.body === undefined) ctx.status = ctx.response.get('Allow') ? 405 : 404; // TRACE, PROPFIND: as FastAPI answers them
      if (ctx.status === 404 && ctx.body === undefined) answer(ctx, 404, 'Not Found');
      else if (ctx.status === 405 && ctx.body === undefined) answer(ctx, 405, 'Method Not Allowed');
    } catch (err) {
      if (err instanceof DetailError) return answer(ctx, err.status, err.detail);
      if (err instanceof AgentError && err.status < 500) return answer(ctx, err.status, err.message);
      const incident = randomUUID();
      logger.error({ err, incident, method: ctx.method, path: ctx.path }, 'unexpected error while serving a request');
      answer(ctx, 500, `Internal Server Error; the agent log has the details under incident ${incident}`);
    }
  };
}

function answer(ctx: Context, status: number, detail: FieldProblem[] | string): void {
  ctx.body = { detail };
  ctx.status = status;
}

/** The longest graceful stop /api/stop takes. */
const MAX_GRACEFUL_STOP_SECONDS = 300;

/**
 * /api/stop's optional body: `{ "graceful_stop_seconds": n }` stops gracefully (requests in flight finish
 * and are counted, for at most n seconds); no body, or a body without it, stops at once.
 */
async function stopGraceMs(ctx: Context, limitBytes: number): Promise<number | undefined> {
  const length = Number(ctx.get('content-length') || 0);
  if (length === 0 && !ctx.get('transfer-encoding')) return undefined;
  const body = await readBody(ctx, limitBytes);
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new DetailError(400, [{ loc: ['body'], msg: 'Input should be a valid dictionary', type: 'dict_type' }]);
  const v = (body as Record<string, unknown>).graceful_stop_seconds;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_GRACEFUL_STOP_SECONDS)
    throw new DetailError(400, [
      {
        loc: ['body', 'graceful_stop_seconds'],
        msg: `Input should be a number from 0 to ${MAX_GRACEFUL_STOP_SECONDS}`,
        type: 'less_than_equal',
      },
    ]);
  return v * 1000;
}

/**
 * The JSON body, within the agent's body limit (413 past it) and MAX_JSON_DEPTH (400 `json_too_deep`, with
 * where in `loc`). Empty is `Field required`; a body sent as
 * something other than JSON, or JSON that does not parse, is a 400 with the problem.
 */
async function readBody(ctx: Context, limitBytes: number): Promise<unknown> {
  let parsed: { value: unknown; raw: Buffer } | undefined;
  let parseError: string | undefined;
  try {
    parsed = await readJson(ctx, limitBytes, true);
  } catch (err) {
    if (err instanceof JsonTooDeepError) {
      throw new DetailError(400, [
        {
          loc: ['body', ...err.at],
          msg: `JSON nested deeper than ${err.maxDepth} levels (MAX_JSON_DEPTH); send a flatter body`,
          type: 'json_too_deep',
        },
      ]);
    }
    if (!(err instanceof AgentError) || err.type !== 'validation_error') throw err;
    parseError = err.message.replace(/^request body is not valid JSON: /, '');
  }
  const type = ctx.request.type; // media type without parameters; '' when not sent (then JSON is assumed, as FastAPI does)
  if (type !== '' && type !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(type)) {
    throw new DetailError(400, [
      {
        loc: ['body'],
        msg: `Input should be a valid dictionary or object to extract fields from; send the body as JSON with Content-Type: application/json (got ${type})`,
        type: 'model_attributes_type',
      },
    ]);
  }
  if (parseError !== undefined)
    throw new DetailError(400, [{ loc: ['body'], msg: `JSON decode error: ${parseError}`, type: 'json_invalid' }]);
  if (!parsed || parsed.raw.toString('utf8').trim() === '')
    throw new DetailError(400, [{ loc: ['body'], msg: 'Field required', type: 'missing' }]);
  return parsed.value;
}

export function mountFlowRunnerApi(router: Router, deps: FlowApiDeps): void {
  const { flows, system } = deps;

  router.post('/api/start', deps.guard, async (ctx) => {
    const body = await readBody(ctx, deps.bodyLimitBytes);
    const parsed = parseStartRequest(body);
    const shaping = flows.container?.readShaping(body, 'start') ?? { ok: true };
    if (!parsed.ok || !shaping.ok)
      throw new DetailError(400, [...(parsed.ok ? [] : parsed.problems), ...(shaping.ok ? [] : shaping.problems)]);
    try {
      await flows.start(parsed.config, parsed.flowmap, shaping.shaping);
    } catch (err) {
      if (err instanceof FlowControlClosed) throw new DetailError(503, err.message);
      if (err instanceof ContainerControlError) throw new DetailError(500, err.message);
      throw err;
    }
    ctx.body = { message: START_MESSAGE };
  });

  router.post('/api/stop', deps.guard, async (ctx) => {
    ctx.body = { message: await flows.stop(await stopGraceMs(ctx, deps.bodyLimitBytes)) };
  });

  router.post('/api/update', deps.guard, async (ctx) => {
    const body = await readBody(ctx, deps.bodyLimitBytes);
    const shaping = flows.container?.readShaping(body, 'update') ?? { ok: true };
    if (!shaping.ok) throw new DetailError(400, shaping.problems);
    let result: Awaited<ReturnType<FlowControl['update']>>;
    try {
      result = await flows.update(body, shaping.shaping);
    } catch (err) {
      if (err instanceof ContainerControlError) throw new DetailError(500, err.message);
      throw err;
    }
    if (!result.ok) throw new DetailError(result.status, 'notRunning' in result ? result.message : result.problems);
    ctx.body = {
      message: UPDATE_MESSAGE,
      changed: result.changed,
      config: result.config,
      ...(shaping.shaping && { traffic_control: flows.container?.report() }),
    };
  });

  router.get('/api/health', deps.guard, (ctx) => {
    ctx.body = { status: 'healthy', app_status: flows.appStatus };
  });

  router.get('/api/metrics', deps.guard, (ctx) => {
    ctx.body = apiMetrics(flows, system);
  });

  router.get('/api/stats', deps.guard, (ctx) => {
    ctx.body = flows.mergeableStats();
  });
}

/** Counters of the monitored interface, of every one but lo without a name, null with monitoring off. */
function networkNumbers(flows: FlowControl, system: SystemSampler) {
  const nm = flows.container?.settings.networkMonitoring ?? { enabled: true };
  return nm.enabled ? system.network(nm.interface) : null;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Both shapes FlowRunner's clients read (`metrics` and `flow_runner`), then ours under `flow_runner_details`. */
function apiMetrics(flows: FlowControl, system: SystemSampler) {
  const s = flows.snapshot();
  const running = s?.running ?? false;
  // A flow that no longer runs generates nothing, whatever its last second was.
  const rps = running ? round2(s!.rps) : 0;
  const activeUsers = running ? s!.active_users : 0;
  const avgFlowMs = s?.avg_flow_duration_ms ?? 0;
  return {
    timestamp: new Date().toISOString(),
    app_status: flows.appStatus,
    container_status: 'running',
    network: networkNumbers(flows, system),
    system: system.system(),
    traffic_control: flows.container?.report() ?? { enabled: false },
    metrics: { rps, active_simulated_users: activeUsers, average_flow_duration_ms: avgFlowMs },
    flow_runner: {
      running,
      rps,
      total_requests: s?.total_requests ?? 0,
      flow_count: s?.flow_count ?? 0,
      avg_flow_duration_ms: avgFlowMs,
      active_users: activeUsers,
    },
    flow_runner_details: s ? details(s, flows) : null,
  };
}

function details(s: RunSnapshot, flows: FlowControl) {
  return {
    sim_users: s.sim_users,
    started_at: s.started_at,
    elapsed_seconds: s.elapsed_seconds,
    flows_failed: s.flows_failed,
    errors_total: s.errors_total,
    errors: s.errors,
    status_classes: s.status_classes,
    latency_ms: { p50: s.p50_ms, p95: s.p95_ms, p99: s.p99_ms, max: s.max_ms, mean: s.mean_ms },
    assertions: { passed: s.assertions_passed, failed: s.assertions_failed },
    per_step: s.per_step,
    config: flows.config ?? null,
  };
}

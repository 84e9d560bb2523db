/** Section A of api.md (section B, the FlowRunner control API, is mounted from flowrunner-api.ts). Thin handlers: parse, call the engine or store, answer. */
import { createHash } from 'node:crypto';
import { Router } from '@koa/router';
import type { Context } from 'koa';
import { AgentError, ValidationError, type Problem } from '../../../../adapters/errors.js';
import type { FlowControl } from '../../../../adapters/flowrunner/control.js';
import type { SystemSampler } from '../../../../adapters/flowrunner/system.js';
import { mutatesWith, type AdapterRegistry } from '../adapter-registry.js';
import type { Engine } from '../engine/engine.js';
import { toRecord, toSummary } from '../engine/record.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { Catalog } from '../wpk/catalog.js';
import { resolveParameters } from '../wpk/parameters.js';
import { workflowIdOf, type Wpk } from '../wpk/types.js';
import { SIGNATURE_HEADER, type SignatureVerifier } from '../wpk/signature.js';
import type { PackageValidator } from '../wpk/validate.js';
import { mayActOnOthers, need, principalOf } from './auth.js';
import { readJson } from './body.js';
import { mountFlowRunnerApi } from './flowrunner-api.js';
import { followLogs } from './logs.js';

export interface RouteDeps {
  store: Store;
  engine: Engine;
  registry: AdapterRegistry;
  validator: PackageValidator;
  catalog: Catalog;
  metrics: Metrics;
  version: string;
  startedAt: number;
  bodyLimitBytes: number;
  /** Verifies X-WPK-Signature of inline packages when a key is configured. */
  signatures: SignatureVerifier;
  /** Whether GET /metrics needs a viewer token. */
  metricsAuth: 'open' | 'token';
  /** The FlowRunner control API's flow, and the container numbers it reports. */
  flows: FlowControl;
  system: SystemSampler;
}

const STATUSES = [
  'pending',
  'running',
  'completed',
  'failed',
  'cancelled',
  'rolling_back',
  'rolled_back',
  'rollback_failed',
];
const EXECUTE_FIELDS = ['workflow_id', 'wpk_content', 'parameters', 'dry_run', 'rollback_on_failure'];
const VALIDATE_FIELDS = ['workflow_id', 'wpk_content', 'parameters'];

function fieldProblems(body: unknown, allowed: string[]): Problem[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return [{ path: '$', message: 'must be a JSON object' }];
  const b = body as Record<string, unknown>;
  const problems: Problem[] = [];
  for (const k of Object.keys(b))
    if (!allowed.includes(k))
      problems.push({ path: `$.${k}`, message: `unknown field; allowed: ${allowed.join(', ')}` });
  if (b.workflow_id !== undefined && typeof b.workflow_id !== 'string')
    problems.push({ path: '$.workflow_id', message: 'must be string' });
  if (
    b.parameters !== undefined &&
    (b.parameters === null || typeof b.parameters !== 'object' || Array.isArray(b.parameters))
  ) {
    problems.push({ path: '$.parameters', message: 'must be an object' });
  }
  for (const k of ['dry_run', 'rollback_on_failure'])
    if (b[k] !== undefined && typeof b[k] !== 'boolean') problems.push({ path: `$.${k}`, message: 'must be boolean' });
  if (b.wpk_content === undefined && b.workflow_id === undefined)
    problems.push({ path: '$', message: 'give wpk_content (the package) or workflow_id (a known package)' });
  return problems;
}

function queryInt(ctx: Context, name: string, dflt: number, min: number, max: number, problems: Problem[]): number {
  const raw = ctx.query[name];
  if (raw === undefined) return dflt;
  const s = Array.isArray(raw) ? raw[0] : raw;
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    problems.push({ path: `query.${name}`, message: `must be an integer from ${min} to ${max}` });
    return dflt;
  }
  return Number(s);
}

function queryString(ctx: Context, name: string): string | undefined {
  const raw = ctx.query[name];
  return Array.isArray(raw) ? raw[0] : raw;
}

export function buildRouter(deps: RouteDeps): Router {
  const { store, engine, registry, validator, catalog, metrics } = deps;
  const router = new Router();

  /**
   * A package the agent knows by workflow_id, or not_found naming the bundled ones. To run, a registered
   * one must carry a signature that verifies under the keys configured now: one registered before signing
   * was turned on, or under a key since retired, does not run.
   */
  function knownPackage(id: string, toRun = false): Wpk {
    const known = catalog.get(id);
    if (!known)
      throw new AgentError(
        'not_found',
        `workflow ${id} is not known; send wpk_content, or use a bundled one: ${catalog.bundledIds().join(', ')}`,
      );
    if (toRun && known.registered && deps.signatures.enabled) {
      try {
        deps.signatures.verify(known.wpk, known.signature ?? undefined);
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        throw new AgentError(
          'forbidden',
          `workflow ${id} was registered without a signature that verifies under the keys configured now; send it again as wpk_content with ${SIGNATURE_HEADER}`,
          {
            details: { workflow_id: id },
          },
        );
      }
    }
    return known.wpk;
  }

  /**
   * An inline package's signature, when the agent requires one: checked before validation so that an
   * unsigned package learns nothing more than `forbidden`. Returns the header, kept with the registration.
   */
  function checkSignature(ctx: Context, body: Record<string, unknown>): string | undefined {
    if (!deps.signatures.enabled || body.wpk_content === undefined) return undefined;
    const header = ctx.get(SIGNATURE_HEADER) || undefined;
    if (header === undefined) deps.signatures.verify(undefined, header);
    const parsed = validator.parse(body.wpk_content);
    if (parsed.problems.length) throw new ValidationError('the package is invalid', parsed.problems);
    deps.signatures.verify(parsed.value, header);
    return header;
  }

  /** The package a request names: inline content (validated) or a known workflow_id. */
  function resolvePackage(body: Record<string, unknown>): {
    wpk: Wpk;
    json?: string;
    inline: boolean;
    warnings: Problem[];
  } {
    if (body.wpk_content !== undefined) {
      const { report, wpk, json } = validator.validate(body.wpk_content);
      const errors = [...report.errors];
      if (wpk && typeof body.workflow_id === 'string' && body.workflow_id !== report.workflow_id) {
        errors.push({ path: '$.workflow_id', message: `does not match the package's ${report.workflow_id}` });
      }
      if (errors.length || !wpk)
        throw new ValidationError(`the package is invalid: ${errors.length} problem(s)`, errors, {
          details: { workflow_id: report.workflow_id },
        });
      return { wpk, json, inline: true, warnings: report.warnings };
    }
    return { wpk: knownPackage(String(body.workflow_id), true), inline: false, warnings: [] };
  }

  async function adapterViews() {
    const out: Record<string, unknown> = {};
    for (const a of registry.list()) {
      const health = a.health
        ? await a.health().catch((err: Error) => ({ ready: false, message: err.message }))
        : { ready: true };
      out[a.name] = {
        ...health,
        actions: Object.values(a.actions).map((x) => ({
          id: x.id,
          mutates: mutatesWith(x),
          description: x.description,
        })),
      };
    }
    return out;
  }

  router.get('/health', async (ctx) => {
    ctx.body = {
      status: 'ok',
      version: deps.version,
      uptime_seconds: Math.round((Date.now() - deps.startedAt) / 1000),
      active_executions: engine.activeCount,
      queued_executions: engine.queuedCount,
      draining: engine.isDraining,
      adapters: await adapterViews(),
    };
  });

  router.get('/ready', (ctx) => {
    const reasons = [...(store.isOpen() ? [] : ['store is closed']), ...(engine.isDraining ? ['shutting down'] : [])];
    ctx.status = reasons.length ? 503 : 200;
    ctx.body = { ready: reasons.length === 0, reasons };
  });

  router.post('/init', need('admin'), async (ctx) => {
    const { value } = await readJson(ctx, deps.bodyLimitBytes, true);
    const body = (value ?? {}) as Record<string, unknown>;
    const problems: Problem[] = [];
    const configs = (body.adapters ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(body))
      if (k !== 'adapters') problems.push({ path: `$.${k}`, message: 'unknown field; allowed: adapters' });
    if (typeof configs !== 'object' || configs === null || Array.isArray(configs))
      problems.push({ path: '$.adapters', message: 'must be an object keyed by adapter name' });
    else {
      for (const [k, v] of Object.entries(configs)) {
        if (!registry.names().includes(k))
          problems.push({ path: `$.adapters.${k}`, message: `unknown adapter; known: ${registry.names().join(', ')}` });
        else if (v === null || typeof v !== 'object' || Array.isArray(v))
          problems.push({
            path: `$.adapters.${k}`,
            message: 'must be an object (an empty one goes back to detection)',
          });
      }
    }
    if (problems.length) throw new ValidationError('invalid init request', problems);
    // Only the adapters the body names are (re)configured: an /init about one adapter leaves the others as they are.
    for (const a of registry.list()) {
      const config = (configs as Record<string, unknown>)[a.name];
      if (config !== undefined) await a.init?.(config as Record<string, unknown>);
    }
    ctx.body = { status: 'initialized', adapters: await adapterViews(), bundled_workflows: catalog.bundledIds() };
  });

  router.post('/validate', need('executor'), async (ctx) => {
    const { value } = await readJson(ctx, deps.bodyLimitBytes);
    const problems = fieldProblems(value, VALIDATE_FIELDS);
    if (problems.length) throw new ValidationError('invalid validate request', problems);
    const body = value as Record<string, unknown>;
    if (body.wpk_content === undefined) body.wpk_content = knownPackage(String(body.workflow_id));
    const { report, wpk } = validator.validate(body.wpk_content);
    // As /execute would: a workflow_id given with the package must be the package's.
    if (wpk && typeof body.workflow_id === 'string' && body.workflow_id !== report.workflow_id) {
      report.errors.push({ path: '$.workflow_id', message: `does not match the package's ${report.workflow_id}` });
    }
    if (wpk && body.parameters !== undefined) {
      const resolved = resolveParameters(wpk.spec.parameters ?? {}, body.parameters as Record<string, unknown>);
      report.errors.push(...resolved.problems);
    }
    report.valid = report.errors.length === 0;
    ctx.body = report;
  });

  router.post('/execute', need('executor'), async (ctx) => {
    const { value, raw } = await readJson(ctx, deps.bodyLimitBytes);
    const problems = fieldProblems(value, EXECUTE_FIELDS);
    if (problems.length) throw new ValidationError('invalid execute request', problems);
    const body = value as Record<string, unknown>;
    const signature = checkSignature(ctx, body);
    const key = ctx.get('Idempotency-Key');
    const bodyHash = key ? createHash('sha256').update(raw).digest('hex') : '';
    if (key) {
      if (key.length > 255)
        throw new ValidationError('invalid Idempotency-Key', [
          { path: 'header.Idempotency-Key', message: 'must be at most 255 characters' },
        ]);
      const seen = store.findIdempotency(key);
      if (seen && seen.body_hash !== bodyHash)
        throw new AgentError('conflict', `Idempotency-Key ${key} was already used with a different body`, {
          details: { execution_id: seen.execution_id },
        });
      if (seen) {
        const row = store.getExecution(seen.execution_id)!;
        ctx.status = 200;
        ctx.set('Location', `/execute/${row.id}`);
        ctx.body = {
          execution_id: row.id,
          status: row.status,
          workflow_id: row.workflow_id,
          dry_run: row.dry_run === 1,
        };
        return;
      }
    }
    const { wpk, json, inline } = resolvePackage(body);
    const resolved = resolveParameters(wpk.spec.parameters ?? {}, (body.parameters ?? {}) as Record<string, unknown>);
    if (resolved.problems.length)
      throw new ValidationError(
        `the parameters are invalid: ${resolved.problems.length} problem(s)`,
        resolved.problems,
      );
    const { row, stored } = engine.submit({
      wpk,
      packageJson: json,
      params: resolved.values,
      dryRun: body.dry_run === true,
      rollbackOnFailure: body.rollback_on_failure as boolean | undefined,
      submittedBy: principalOf(ctx).name,
      idempotency: key ? { key, bodyHash } : undefined,
    });
    if (inline) catalog.register(workflowIdOf(wpk), wpk, json, signature ?? null);
    await stored; // nothing is answered 202 before it is committed
    ctx.status = 202;
    ctx.set('Location', `/execute/${row.id}`);
    ctx.body = { execution_id: row.id, status: row.status, workflow_id: row.workflow_id, dry_run: row.dry_run === 1 };
  });

  router.get('/execute/:id', need('viewer'), (ctx) => {
    const row = store.getExecution(ctx.params.id);
    if (!row) throw new AgentError('not_found', `execution ${ctx.params.id} not found`);
    ctx.body = toRecord(row, store.getSteps(row.id));
  });

  router.get('/executions', need('viewer'), (ctx) => {
    const problems: Problem[] = [];
    const limit = queryInt(ctx, 'limit', 50, 1, 500, problems);
    const status = queryString(ctx, 'status');
    if (status !== undefined && !STATUSES.includes(status))
      problems.push({ path: 'query.status', message: `must be one of: ${STATUSES.join(', ')}` });
    const cursor = queryString(ctx, 'cursor');
    let before: number | undefined;
    if (cursor !== undefined) {
      before = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
      if (!Number.isInteger(before) || before < 1)
        problems.push({ path: 'query.cursor', message: 'is not a cursor this agent gave out' });
    }
    if (problems.length) throw new ValidationError('invalid query', problems);
    const rows = store.listExecutions({
      status,
      workflow_id: queryString(ctx, 'workflow_id'),
      limit: limit + 1,
      before,
    });
    const page = rows.slice(0, limit);
    ctx.body = {
      executions: page.map(toSummary),
      next_cursor: rows.length > limit ? Buffer.from(String(page[page.length - 1].seq)).toString('base64url') : null,
    };
  });

  router.post('/execute/:id/cancel', need('executor'), (ctx) => {
    const who = principalOf(ctx);
    if (!mayActOnOthers(who)) {
      const owner = store.getExecution(ctx.params.id)?.submitted_by;
      if (owner !== undefined && owner !== who.name) {
        throw new AgentError(
          'forbidden',
          `execution ${ctx.params.id} was submitted by ${owner ?? 'someone else'}; cancelling another's execution needs the operator role`,
          {
            details: { needed_role: 'operator', role: who.role },
          },
        );
      }
    }
    const row = engine.cancel(ctx.params.id);
    ctx.status = 202;
    ctx.body = {
      execution_id: row.id,
      status: row.status,
      message: row.status === 'cancelled' ? 'cancelled' : 'cancel requested; the running step is being aborted',
    };
  });

  router.post('/rollback/:id', need('operator'), (ctx) => {
    const row = engine.rollback(ctx.params.id);
    ctx.status = 202;
    ctx.set('Location', `/execute/${row.id}`);
    ctx.body = {
      execution_id: row.id,
      status: row.status,
      rollback: { status: row.rollback_status, trigger: row.rollback_trigger },
    };
  });

  router.get('/logs/:id', need('viewer'), (ctx) => {
    const id = ctx.params.id;
    if (!store.getExecution(id)) throw new AgentError('not_found', `execution ${id} not found`);
    const problems: Problem[] = [];
    const since = queryInt(ctx, 'since', 0, 0, Number.MAX_SAFE_INTEGER, problems);
    const limit = queryInt(ctx, 'limit', 1000, 1, 10_000, problems);
    const follow = queryString(ctx, 'follow');
    if (follow !== undefined && follow !== 'true' && follow !== 'false')
      problems.push({ path: 'query.follow', message: 'must be true or false' });
    if (problems.length) throw new ValidationError('invalid query', problems);
    const step = queryString(ctx, 'step');
    if (follow === 'true') return followLogs(ctx, store, engine, id, since, step);
    const logs = store.getLogs(id, { since, limit, step });
    ctx.body = { execution_id: id, logs, next_since: logs.length ? logs[logs.length - 1].seq : since };
  });

  router.get('/audit', need('admin'), (ctx) => {
    const problems: Problem[] = [];
    const since = queryInt(ctx, 'since', 0, 0, Number.MAX_SAFE_INTEGER, problems);
    const limit = queryInt(ctx, 'limit', 100, 1, 1000, problems);
    if (problems.length) throw new ValidationError('invalid query', problems);
    const rows = store.listAudit({
      since,
      limit,
      actor: queryString(ctx, 'actor'),
      execution_id: queryString(ctx, 'execution_id'),
    });
    ctx.body = {
      entries: rows.map((r) => ({ ...r, detail: r.detail === null ? null : JSON.parse(r.detail) })),
      next_since: rows.length ? rows[rows.length - 1].seq : since,
    };
  });

  mountFlowRunnerApi(router, {
    flows: deps.flows,
    system: deps.system,
    bodyLimitBytes: deps.bodyLimitBytes,
    guard: need('admin'),
  });

  router.get('/metrics', ...(deps.metricsAuth === 'token' ? [need('viewer')] : []), async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  return router;
}

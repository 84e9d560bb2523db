/**
 * Every operation any surface performs (HTTP today; the CLI, the console, Socket.IO, callbacks and pull mode
 * tomorrow), with its rules: who may call it, what a request must hold, what it answers. Surfaces parse their
 * input, call one of these with the caller's Principal, and turn the answer into their own shape.
 */
import { createHash } from 'node:crypto';
import type { Adapter, AdapterHealth } from '../../../../adapters/contract.js';
import { DEFAULT_EGRESS_POLICY, type EgressPolicy } from '../../../../adapters/shared/egress.js';
import { AgentError, type Problem, ValidationError } from '../../../../adapters/errors.js';
import { type AdapterRegistry, mutatesWith } from '../adapter-registry.js';
import { ANONYMOUS, authorize, may, type Principal } from '../auth/roles.js';
import type { Engine } from '../engine/engine.js';
import { toRecord, toSummary } from '../engine/record.js';
import type { Metrics } from '../metrics.js';
import { eventMatches } from '../store/journal.js';
import type { Store } from '../store/store.js';
import type { EventType, ExecutionStatus, JournalEvent, LogLine, TaskRef } from '../store/types.js';
import type { Catalog } from '../wpk/catalog.js';
import { resolveParameters } from '../wpk/parameters.js';
import type { SignatureVerifier } from '../wpk/signature.js';
import { workflowIdOf } from '../wpk/types.js';
import type { PackageValidator, ValidationReport } from '../wpk/validate.js';
import { decodeCursor, encodeCursor, MAX_LIST_LIMIT, parseEventTypes, parseStatuses, parseTime } from './filters.js';
import { callbackUrlProblems } from '../delivery/targets.js';
import { backlogView, deliveryView } from './deliveries.js';
import { follow } from './follow.js';
import { OVERVIEW_MAX_EXECUTIONS, overviewOf } from './overview.js';
import { planRetry, type RetryRequest } from './retry.js';
import { type PackageRef, Submission } from './submission.js';
import { workflowDetail, workflowSummary } from './workflows.js';

export interface AgentServiceDeps {
  store: Store;
  engine: Engine;
  registry: AdapterRegistry;
  validator: PackageValidator;
  catalog: Catalog;
  metrics: Metrics;
  signatures: SignatureVerifier;
  version: string;
  /** Epoch ms the agent started. */
  startedAt: number;
  /** Whether the metrics need a viewer token. */
  metricsAuth: 'open' | 'token';
  /** MANAGER_ONLY: POST /execute is refused, only the Manager's tasks are submitted. */
  managerOnly?: boolean;
  /** MANAGER_URL is set: /health shows the reports' backlog too. */
  pullMode?: boolean;
  /** The pod the agent runs in (POD_NAME, POD_NAMESPACE from the downward API), when told. */
  pod?: { name: string; namespace: string | null };
  /** The egress policy a callback_url must pass (the one its deliveries go through). */
  callbackEgress?: EgressPolicy;
}

export interface ExecuteRequest extends PackageRef {
  parameters?: Record<string, unknown>;
  dry_run?: boolean;
  rollback_on_failure?: boolean;
  /** Where this execution's results are POSTed, instead of RESULT_CALLBACK_URL (docs/callbacks.md). */
  callback_url?: string;
}

/** Idempotency keys of the Manager's tasks (pull mode) begin with this; no client may use it. */
export const TASK_KEY_PREFIX = 'task:';

export interface SubmitOptions {
  /** Same key and same request: the same execution again. */
  idempotencyKey?: string;
  /** The request as the client sent it (what the idempotency key is bound to); its JSON form otherwise. */
  requestText?: string | Buffer;
  /** X-WPK-Signature of an inline package. */
  signature?: string;
  /** The Manager's task this execution runs (pull mode). */
  task?: TaskRef;
}

export interface ListQuery {
  status?: string | string[];
  workflow_id?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export interface LogQuery {
  since?: number;
  limit?: number;
  step?: string;
}

export interface EventQuery {
  since?: number;
  execution_id?: string;
  workflow_id?: string;
  types?: string | string[];
  limit?: number;
}

export const MAX_IDEMPOTENCY_KEY_CHARS = 255;

const notFound = (id: string) => new AgentError('not_found', `execution ${id} not found`);

export class AgentService {
  private readonly submission: Submission;

  constructor(private readonly d: AgentServiceDeps) {
    this.submission = new Submission(d.registry, d.validator, d.catalog, d.signatures);
  }

  // --- agent -------------------------------------------------------------------

  /** Liveness and a summary; open to anyone who can reach the agent (probes). */
  async health() {
    return {
      status: 'ok',
      version: this.d.version,
      uptime_seconds: Math.round((Date.now() - this.d.startedAt) / 1000),
      active_executions: this.d.engine.activeCount,
      queued_executions: this.d.engine.queuedCount,
      draining: this.d.engine.isDraining,
      ...(this.d.pod && { pod: this.d.pod }),
      deliveries: {
        callback: backlogView(this.d.store.outbox.backlog('callback')),
        ...(this.d.pullMode && { report: backlogView(this.d.store.outbox.backlog('report')) }),
      },
      adapters: await this.adapterViews(),
    };
  }

  /** Each adapter's readiness, as health() reports it (the metrics read it at scrape time). */
  async adaptersReady(): Promise<Record<string, { ready: boolean; configured: boolean }>> {
    const out: Record<string, { ready: boolean; configured: boolean }> = {};
    for (const a of this.d.registry.list()) {
      const h = await adapterHealth(a);
      out[a.name] = { ready: h.ready, configured: h.configured !== false };
    }
    return out;
  }

  ready(): { ready: boolean; reasons: string[] } {
    const reasons = [
      ...(this.d.store.isOpen() ? [] : ['store is closed']),
      ...(this.d.engine.isDraining ? ['shutting down'] : []),
      ...(this.d.engine.isRecovering ? ['recovering after a restart'] : []),
    ];
    return { ready: reasons.length === 0, reasons };
  }

  /** (Re)configures the adapters named in `configs`; the others stay as they are. */
  async init(actor: Principal, configs: Record<string, Record<string, unknown>>) {
    authorize(actor, 'init', 'POST /init');
    const problems: Problem[] = [];
    for (const name of Object.keys(configs)) {
      if (!this.d.registry.names().includes(name))
        problems.push({
          path: `$.adapters.${name}`,
          message: `unknown adapter; known: ${this.d.registry.names().join(', ')}`,
        });
    }
    if (problems.length) throw new ValidationError('invalid init request', problems);
    for (const a of this.d.registry.list()) if (configs[a.name] !== undefined) await a.init?.(configs[a.name]);
    return {
      status: 'initialized',
      adapters: await this.adapterViews(),
      bundled_workflows: this.d.catalog.bundledIds(),
    };
  }

  /** Prometheus exposition; with METRICS_AUTH=token the caller must be a viewer. */
  async metricsText(actor: Principal | undefined): Promise<{ contentType: string; text: string }> {
    if (this.metricsNeedToken) {
      if (!actor) throw new AgentError('unauthorized', 'the metrics need a token (METRICS_AUTH=token)');
      authorize(actor, 'metrics', 'GET /metrics');
    }
    return { contentType: this.d.metrics.registry.contentType, text: await this.d.metrics.registry.metrics() };
  }

  get metricsNeedToken(): boolean {
    return this.d.metricsAuth === 'token';
  }

  /**
   * Who the caller is and what its role lets it do, so that a client (the console) shows only the actions
   * that would be allowed; the rules themselves stay in auth/roles.ts. `authentication` is false when the
   * agent has no tokens (everyone is anonymous with every role). `cancel` is one's own executions;
   * `cancel_any` anyone's.
   */
  whoami(actor: Principal) {
    authorize(actor, 'read', 'GET /whoami');
    return {
      name: actor.name,
      role: actor.role,
      authentication: actor !== ANONYMOUS,
      may: {
        submit: may(actor, 'submit') && !this.d.managerOnly,
        validate: may(actor, 'validate'),
        cancel: may(actor, 'cancel'),
        cancel_any: may(actor, 'cancel_any'),
        rollback: may(actor, 'rollback'),
        retry: may(actor, 'retry') && !this.d.managerOnly,
        audit: may(actor, 'audit'),
      },
    };
  }

  // --- packages --------------------------------------------------------------

  validate(actor: Principal, req: PackageRef & { parameters?: Record<string, unknown> }): ValidationReport {
    authorize(actor, 'validate', 'validating a package');
    return this.submission.report(req, req.parameters);
  }

  /** The catalog: bundled and registered packages with their parameters, by name, newest version first. */
  workflows(actor: Principal) {
    authorize(actor, 'read', 'reading the catalog');
    return { workflows: this.d.catalog.list().map(workflowSummary) };
  }

  workflow(actor: Principal, workflowId: string) {
    authorize(actor, 'read', 'reading the catalog');
    const entry = this.d.catalog.list().find((e) => e.workflowId === workflowId);
    if (!entry) {
      throw new AgentError('not_found', `workflow ${workflowId} is not known; GET /workflows lists the known ones`);
    }
    return workflowDetail(entry, this.d.registry);
  }

  // --- executions ------------------------------------------------------------

  /**
   * Accepts an execution. Answers `created: false` with the earlier execution when the idempotency key was
   * used before with the same request (409 with another request). Nothing is queued unless everything holds,
   * and nothing is answered before the execution is committed.
   */
  async submit(actor: Principal, req: ExecuteRequest, options: SubmitOptions = {}) {
    authorize(actor, 'submit', 'submitting an execution');
    if (options.task === undefined) this.refuseOutsideManager();
    if (options.task === undefined && options.idempotencyKey?.startsWith(TASK_KEY_PREFIX)) {
      throw new ValidationError('invalid Idempotency-Key', [
        {
          path: 'header.Idempotency-Key',
          message: `must not begin with '${TASK_KEY_PREFIX}', kept for the Manager's tasks`,
        },
      ]);
    }
    this.submission.checkSignature(req, options.signature);
    const key = options.idempotencyKey;
    let idempotency: { key: string; bodyHash: string } | undefined;
    if (key !== undefined) {
      if (key.length > MAX_IDEMPOTENCY_KEY_CHARS) {
        throw new ValidationError('invalid Idempotency-Key', [
          { path: 'header.Idempotency-Key', message: `must be at most ${MAX_IDEMPOTENCY_KEY_CHARS} characters` },
        ]);
      }
      const text = options.requestText ?? JSON.stringify(req);
      idempotency = { key, bodyHash: createHash('sha256').update(text).digest('hex') };
      const seen = this.d.store.executions.findIdempotency(key);
      if (seen && seen.bodyHash !== idempotency.bodyHash) {
        throw new AgentError('conflict', `Idempotency-Key ${key} was already used with a different body`, {
          details: { execution_id: seen.executionId },
        });
      }
      if (seen) return { created: false, execution: this.accepted(this.d.store.executions.get(seen.executionId)!) };
    }
    // Checked first and reported with the package's or the parameters' problems: one answer lists them all.
    const callbackProblems =
      req.callback_url === undefined
        ? []
        : await callbackUrlProblems(req.callback_url, '$.callback_url', this.d.callbackEgress ?? DEFAULT_EGRESS_POLICY);
    let resolvedPackage: ReturnType<Submission['resolve']>;
    try {
      resolvedPackage = this.submission.resolve(req);
    } catch (err) {
      if (!(err instanceof ValidationError) || callbackProblems.length === 0) throw err;
      throw new ValidationError(err.message, [...err.problems, ...callbackProblems], { details: err.details });
    }
    const { wpk, json, inline } = resolvedPackage;
    const resolved = resolveParameters(wpk.spec.parameters ?? {}, req.parameters ?? {});
    const problems = [...resolved.problems, ...callbackProblems];
    if (problems.length) {
      const what = resolved.problems.length ? 'the parameters are invalid' : 'the callback_url cannot be used';
      throw new ValidationError(`${what}: ${problems.length} problem(s)`, problems);
    }
    const { execution, stored } = this.d.engine.submit({
      wpk,
      packageJson: json,
      params: resolved.values,
      dryRun: req.dry_run === true,
      rollbackOnFailure: req.rollback_on_failure,
      submittedBy: actor.name,
      idempotency,
      callbackUrl: req.callback_url,
      task: options.task,
    });
    await stored;
    // Registered once the execution is stored: a submission that was not accepted replaces nothing.
    if (inline) this.d.catalog.register(workflowIdOf(wpk), wpk, json, options.signature ?? null);
    return { created: true, execution: this.accepted(execution) };
  }

  /** MANAGER_ONLY: work comes from the Manager, so nothing else starts an execution. */
  private refuseOutsideManager(): void {
    if (this.d.managerOnly) {
      throw new AgentError('forbidden', 'this agent takes its work from its Manager only (MANAGER_ONLY=true)', {
        retryable: false,
      });
    }
  }

  get(actor: Principal, id: string) {
    authorize(actor, 'read', 'reading executions');
    const e = this.mustGet(id);
    return {
      ...toRecord(e, this.d.store.steps.of(id)),
      deliveries: this.d.store.outbox.ofExecution(id).map(deliveryView),
    };
  }

  /** Newest first; `status` repeats or takes a comma list; `since`/`until` bound the creation time. */
  list(actor: Principal, q: ListQuery) {
    authorize(actor, 'read', 'reading executions');
    const problems: Problem[] = [];
    const statuses = parseStatuses(q.status, problems);
    const since = q.since === undefined ? undefined : parseTime(q.since, 'query.since', problems);
    const until = q.until === undefined ? undefined : parseTime(q.until, 'query.until', problems);
    const before = q.cursor === undefined ? undefined : decodeCursor(q.cursor, problems);
    const limit = q.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
      problems.push({ path: 'query.limit', message: `must be an integer from 1 to ${MAX_LIST_LIMIT}` });
    if (problems.length) throw new ValidationError('invalid query', problems);
    const rows = this.d.store.executions.list({
      statuses,
      workflowId: q.workflow_id,
      since,
      until,
      before,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    return {
      executions: page.map(toSummary),
      next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1].seq) : null,
    };
  }

  /**
   * Executions created since `since` (a duration such as `24h`, or RFC 3339; default 24h): how many in each
   * status, and p50/p95 of the ended runs' durations per workflow (service/overview.ts).
   */
  overview(actor: Principal, q: { since?: string }, now = Date.now()) {
    authorize(actor, 'read', 'reading executions');
    const problems: Problem[] = [];
    const since = parseTime(q.since ?? '24h', 'query.since', problems, now);
    if (problems.length) throw new ValidationError('invalid query', problems);
    const rows = this.d.store.executions.created(since!, OVERVIEW_MAX_EXECUTIONS + 1);
    const truncated = rows.length > OVERVIEW_MAX_EXECUTIONS;
    return overviewOf(rows.slice(0, OVERVIEW_MAX_EXECUTIONS), since!, new Date(now).toISOString(), truncated);
  }

  /** Cancels one's own execution; another's needs the operator role. */
  cancel(actor: Principal, id: string) {
    authorize(actor, 'cancel', 'cancelling an execution');
    if (!may(actor, 'cancel_any')) {
      const owner = this.d.store.executions.get(id)?.submittedBy;
      if (owner !== undefined && owner !== actor.name) {
        throw new AgentError(
          'forbidden',
          `execution ${id} was submitted by ${owner ?? 'someone else'}; cancelling another's execution needs the operator role`,
          { details: { needed_role: 'operator', role: actor.role } },
        );
      }
    }
    const e = this.d.engine.cancel(id);
    return {
      execution_id: e.id,
      status: e.status,
      message: e.status === 'cancelled' ? 'cancelled' : 'cancel requested; the running step is being aborted',
    };
  }

  rollback(actor: Principal, id: string) {
    authorize(actor, 'rollback', 'rolling back an execution');
    const e = this.d.engine.rollback(id, actor.name);
    return {
      execution_id: e.id,
      status: e.status,
      rollback: { status: e.rollbackStatus, trigger: e.rollbackTrigger, requested_by: e.rollbackRequestedBy },
    };
  }

  /**
   * A new execution of a finished one's package, from `from_step` on (the step that failed by default): the
   * steps before it are not run again and their outcomes are kept (service/retry.ts). It runs as the
   * original did (dry run or not, rollback on failure or not), submitted by the caller.
   */
  async retry(actor: Principal, id: string, req: RetryRequest) {
    authorize(actor, 'retry', 'retrying an execution');
    this.refuseOutsideManager();
    const { original, wpk, steps, parameters, missingSecrets } = this.d.engine.retryBasis(id);
    const plan = planRetry(original, steps, wpk.spec.handlers, req);
    const given = req.parameters ?? {};
    const problems: Problem[] = missingSecrets
      .filter((name) => !(name in given))
      .map((name) => ({
        path: `$.parameters.${name}`,
        message: `is a secret of execution ${id} that this agent no longer holds (it restarted since): give it again`,
      }));
    const resolved = resolveParameters(wpk.spec.parameters ?? {}, { ...parameters, ...given });
    // A missing secret is also a missing required parameter: one problem for it is enough.
    problems.push(...resolved.problems.filter((p) => !problems.some((q) => q.path === p.path)));
    if (problems.length) {
      throw new ValidationError(`the parameters are invalid: ${problems.length} problem(s)`, problems);
    }
    this.submission.checkRerun(wpk);
    const { execution, stored } = this.d.engine.submit({
      wpk,
      params: resolved.values,
      dryRun: original.dryRun,
      rollbackOnFailure: original.rollbackOnFailure,
      submittedBy: actor.name,
      retry: { of: original, fromStep: plan.fromStep, kept: plan.kept },
      // Its results go where the original's went.
      callbackUrl: original.callbackUrl ?? undefined,
    });
    await stored;
    return { ...this.accepted(execution), retry_of: id, from_step: plan.fromStep, steps_kept: plan.kept.length };
  }

  // --- logs and events ---------------------------------------------------------

  logs(actor: Principal, id: string, q: LogQuery) {
    authorize(actor, 'read', 'reading logs');
    this.mustExist(id);
    const since = q.since ?? 0;
    const logs = this.d.store.logs.page(id, { since, limit: q.limit ?? 1000, step: q.step });
    return { execution_id: id, logs, next_since: logs.length ? logs[logs.length - 1].seq : since };
  }

  /**
   * Follows an execution's log: the stored lines after `since`, then new ones, until the execution's work in
   * this agent ends (`end` gets its status then). `open` is called once the request is known to be good (the
   * caller opens its stream there) and gives the sink. Returns the function that stops following.
   */
  followLogs(
    actor: Principal,
    id: string,
    q: LogQuery,
    open: () => { line: (l: LogLine) => void; end: (status: ExecutionStatus | null) => void },
  ): () => void {
    authorize(actor, 'read', 'reading logs');
    this.mustExist(id);
    const sink = open();
    const { engine, store } = this.d;
    let stopFollowing = () => {};
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      stop();
      sink.end(store.executions.statusOf(id) ?? null);
    };
    const stop = () => {
      stopFollowing();
      engine.bus.off(`end:${id}`, end);
    };
    engine.bus.once(`end:${id}`, end);
    const step = q.step;
    stopFollowing = follow<LogLine>(
      {
        page: (since, limit) => store.logs.page(id, { since, limit, step }),
        subscribe: (push) => {
          engine.bus.on(`log:${id}`, push);
          return () => engine.bus.off(`log:${id}`, push);
        },
      },
      q.since ?? 0,
      sink.line,
      step === undefined ? undefined : (l) => l.step === step,
    );
    if (!engine.isLive(id)) end();
    return stop;
  }

  /** A page of the journal after `since`, oldest first, and the newest seq (to follow from now on). */
  events(actor: Principal, q: EventQuery) {
    authorize(actor, 'read', 'reading events');
    const filter = this.eventFilter(q);
    const since = q.since ?? 0;
    const lastSeq = this.d.store.journal.lastSeq();
    const events = this.d.store.journal.page({ ...filter, since, limit: q.limit ?? 1000 });
    return { events, next_since: events.length ? events[events.length - 1].seq : since, last_seq: lastSeq };
  }

  /**
   * Follows the journal from `since`: stored events, then each new one once committed. `open` is called once
   * the request is known to be good (the caller opens its stream there) and gives the sink, as for
   * followLogs. Returns the stop function.
   */
  followEvents(actor: Principal, q: EventQuery, open: () => (e: JournalEvent) => void): () => void {
    authorize(actor, 'read', 'reading events');
    const filter = this.eventFilter(q);
    const deliver = open();
    const { journal } = this.d.store;
    return follow<JournalEvent>(
      {
        page: (since, limit) => journal.page({ ...filter, since, limit }),
        subscribe: (push) => journal.subscribe(push),
      },
      q.since ?? 0,
      deliver,
      (e) => eventMatches(e, filter),
    );
  }

  /** Lines of the audit log after `since`. */
  audit(actor: Principal, q: { since?: number; limit?: number; actor?: string; execution_id?: string }) {
    authorize(actor, 'audit', 'reading the audit log');
    const since = q.since ?? 0;
    const rows = this.d.store.audit.list({ since, limit: q.limit ?? 100, actor: q.actor, executionId: q.execution_id });
    return {
      entries: rows,
      next_since: rows.length ? rows[rows.length - 1].seq : since,
    };
  }

  // ---------------------------------------------------------------------------

  private eventFilter(q: EventQuery): { executionId?: string; workflowId?: string; types?: EventType[] } {
    const problems: Problem[] = [];
    const types = parseEventTypes(q.types, problems);
    if (problems.length) throw new ValidationError('invalid query', problems);
    return { executionId: q.execution_id, workflowId: q.workflow_id, types };
  }

  /** The answer to an accepted submission. */
  private accepted(e: { id: string; status: ExecutionStatus; workflowId: string; dryRun: boolean }) {
    return { execution_id: e.id, status: e.status, workflow_id: e.workflowId, dry_run: e.dryRun };
  }

  private mustGet(id: string) {
    const e = this.d.store.executions.get(id);
    if (!e) throw notFound(id);
    return e;
  }

  /** As mustGet, for a caller that needs only to know the execution is there (reads just its status). */
  private mustExist(id: string): void {
    if (this.d.store.executions.statusOf(id) === undefined) throw notFound(id);
  }

  private async adapterViews() {
    const out: Record<string, unknown> = {};
    for (const a of this.d.registry.list()) {
      const health = await adapterHealth(a);
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
}

/** An adapter's own health check; one that throws is not ready. */
function adapterHealth(a: Adapter): Promise<AdapterHealth> {
  return a.health
    ? a.health().catch((err: Error) => ({ ready: false, message: err.message }))
    : Promise.resolve({ ready: true });
}

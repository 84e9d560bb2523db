/**
 * The engine: accepts executions into a bounded queue, runs them with bounded
 * concurrency, rolls back on failure or on request, recovers after a restart
 * and drains on shutdown. Every state change is written to the store first.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AgentError, type ErrorRecord } from '../../../../adapters/errors.js';
import { evaluateCondition } from '../../../../adapters/shared/conditions.js';
import { lookup, parsePath } from '../../../../adapters/shared/paths.js';
import type { AdapterRegistry } from '../adapter-registry.js';
import type { Metrics } from '../metrics.js';
import type { ExecutionRow, LogTally, StepRow, Store } from '../store/store.js';
import { workflowIdOf, type WhenClause, type Wpk } from '../wpk/types.js';
import { ExecutionLog, UNLIMITED_LOG, type LogLimits } from './execution-log.js';
import { Interrupt } from './interrupts.js';
import { MASK, Redactor } from './redact.js';
import { Fifo, IoTurns } from './queue.js';
import { planRollback, type CompletedStep, type RollbackEntry } from './rollback.js';
import { prepareInputs, runStep, type StepRunnerDeps } from './step-runner.js';
import { renderValue, type Scope } from './templates.js';
import { nowIso } from './clock.js';

export const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed']);
const ROLLBACK_FROM = new Set(['failed', 'cancelled', 'completed']);
/** Per-attempt timeout of a rollback step that sets none, in a package without timeoutSeconds. */
export const ROLLBACK_STEP_TIMEOUT_SECONDS = 600;
/** Secret values are kept in memory for this many recent executions, for manual rollbacks. */
const SECRETS_KEPT = 10_000;

export interface EngineOptions {
  maxConcurrent: number;
  maxQueued: number;
  shutdownGraceMs: number;
  /** Lines and bytes each execution may log (absent: unbounded; the agent passes its configuration). */
  logLimits?: LogLimits;
  /** Largest step output as JSON, in bytes (absent: unbounded). */
  maxOutputBytes?: number;
}

export interface SubmitRequest {
  wpk: Wpk;
  /** The package as JSON text, when the caller has it already. */
  packageJson?: string;
  params: Record<string, unknown>;
  dryRun: boolean;
  rollbackOnFailure?: boolean;
  idempotency?: { key: string; bodyHash: string };
  /** Name of the token that submitted it (the audit log's actor). */
  submittedBy?: string;
}

interface Live {
  id: string;
  wpk: Wpk;
  row: Pick<ExecutionRow, 'workflow_name' | 'created_at'>;
  dryRun: boolean;
  rollbackOnFailure: boolean;
  redactor: Redactor;
  log: ExecutionLog;
  controller: AbortController;
  scope: Scope & { steps: Record<string, { status: string; outputs?: unknown }> };
  completed: CompletedStep[];
  startedMs: number;
}

/** A queued execution stays this small: its Live (abort controller, log, scope) is built when it starts. */
interface Queued {
  id: string;
  row: Pick<ExecutionRow, 'id' | 'workflow_name' | 'created_at' | 'dry_run' | 'rollback_on_failure'>;
  wpk: Wpk;
  params: Record<string, unknown>;
  /** Known for a new execution (it has logged nothing); a requeued one asks the store when it starts. */
  logTally?: LogTally;
}

export class Engine {
  readonly bus = new EventEmitter();
  private readonly queue = new Fifo<Queued>();
  private readonly queued = new Map<string, Queued>();
  private readonly turns = new IoTurns();
  private readonly live = new Map<string, Live>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly secrets = new Map<string, Record<string, unknown>>();
  private running = 0;
  private draining = false;
  private readonly deps: StepRunnerDeps;
  private readonly logLimits: LogLimits;

  constructor(
    private readonly store: Store,
    private readonly registry: AdapterRegistry,
    private readonly metrics: Metrics,
    private readonly options: EngineOptions,
  ) {
    this.bus.setMaxListeners(0);
    this.logLimits = options.logLimits ?? UNLIMITED_LOG;
    this.deps = { registry, store, metrics, maxOutputBytes: options.maxOutputBytes ?? Infinity };
  }

  get activeCount(): number {
    return this.running;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /** Every API request tells the engine, so that background work yields to it (see IoTurns). */
  noteApiRequest(): void {
    this.turns.noteRequest();
  }

  /** True while the execution is queued, running or rolling back in this process. */
  isLive(id: string): boolean {
    return this.live.has(id) || this.queued.has(id);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Stores a new execution and queues it. `stored` resolves once the insert is committed: an API
   * answer waits for it. The execution itself never starts before that commit (its first write
   * shares or follows it).
   */
  submit(req: SubmitRequest): { row: ExecutionRow; stored: Promise<void> } {
    if (this.draining)
      throw new AgentError(
        'rate_limited',
        'the agent is shutting down and accepts no new executions; retry on another instance',
        { status: 503 },
      );
    // Only an execution that has to wait counts against the queue: with a free slot it starts at once.
    if (this.running >= this.options.maxConcurrent && this.queue.length >= this.options.maxQueued) {
      throw new AgentError(
        'rate_limited',
        `the queue is full (${this.options.maxQueued} executions waiting); retry later`,
      );
    }
    const id = randomUUID();
    const defs = req.wpk.spec.parameters ?? {};
    const secretNames = Object.keys(defs).filter((k) => defs[k].secret);
    const shown = { ...req.params };
    for (const k of secretNames) if (k in shown) shown[k] = MASK;
    const now = nowIso();
    const row: Omit<ExecutionRow, 'seq' | 'current_step' | 'steps_completed' | 'dropped_log_lines'> = {
      id,
      workflow_id: workflowIdOf(req.wpk),
      workflow_name: req.wpk.metadata.name,
      status: 'pending',
      dry_run: req.dryRun ? 1 : 0,
      rollback_on_failure: (req.rollbackOnFailure ?? req.wpk.spec.rollback?.enabled ?? false) ? 1 : 0,
      parameters: JSON.stringify(shown),
      secret_params: JSON.stringify(secretNames),
      package: req.packageJson ?? JSON.stringify(req.wpk),
      steps_total: req.wpk.spec.handlers.length,
      error: null,
      rollback_status: null,
      rollback_trigger: null,
      created_at: now,
      started_at: null,
      finished_at: null,
      submitted_by: req.submittedBy ?? null,
    };
    const steps = req.wpk.spec.handlers.map((h, idx) => emptyStep(id, 'main', idx, h.name, h.adapter, h.action, null));
    const stored = this.store.insertExecution(row, steps, req.idempotency);
    // An execution whose insert did not commit was never accepted: it must not run. (The catch also keeps a
    // caller that does not wait, such as a test, from seeing an unhandled rejection.)
    stored.catch(() => {
      if (this.queued.delete(id)) this.queue.remove((q) => q.id === id);
      this.live.get(id)?.controller.abort(new Interrupt('cancelled', 'the execution could not be stored'));
    });
    this.rememberSecrets(id, req.params, secretNames);
    this.enqueue({ id, row, wpk: req.wpk, params: req.params, logTally: { lines: 0, bytes: 0, dropped: 0 } });
    return { row: { ...row, seq: 0, current_step: null, steps_completed: 0, dropped_log_lines: 0 }, stored };
  }

  cancel(id: string): ExecutionRow {
    const row = this.mustGet(id);
    if (this.queued.has(id)) {
      this.queue.remove((q) => q.id === id);
      this.queued.delete(id);
      this.metrics.queueDepth.set(this.queue.length);
      const now = nowIso();
      for (const s of this.store.getSteps(id))
        if (s.status === 'pending') this.store.updateStep(id, s.phase, s.idx, { status: 'cancelled' });
      this.store.updateExecution(id, {
        status: 'cancelled',
        finished_at: now,
        error: JSON.stringify({ type: 'cancelled', message: 'cancelled before it started', step: null }),
      });
      this.logOnce(id, 'warn', 'execution cancelled before it started');
      this.metrics.runs.inc({ workflow_name: this.metrics.workflowLabel(row.workflow_name), status: 'cancelled' });
      this.bus.emit(`end:${id}`);
      return this.store.getExecution(id)!;
    }
    // A started execution may still read pending for the moment before its first step.
    const live = this.live.get(id);
    if (!live || !(row.status === 'running' || row.status === 'pending'))
      throw new AgentError(
        'conflict',
        `execution ${id} is ${row.status}; only pending or running executions can be cancelled`,
      );
    live.log.write('warn', 'cancel requested');
    live.controller.abort(new Interrupt('cancelled', 'execution was cancelled'));
    return { ...row, status: 'running' };
  }

  /** Starts a manual rollback (POST /rollback/{id}). */
  rollback(id: string): ExecutionRow {
    if (this.draining)
      throw new AgentError(
        'rate_limited',
        'the agent is shutting down and starts no rollback; retry on another instance or after the restart',
        { status: 503 },
      );
    const row = this.mustGet(id);
    if (!ROLLBACK_FROM.has(row.status) || this.live.has(id)) {
      throw new AgentError(
        'conflict',
        `execution ${id} is ${row.status}; rollback needs a failed, cancelled or completed execution`,
      );
    }
    const live = this.restore(row);
    const plan = planRollback(live.wpk, live.completed, this.registry);
    if (plan.length === 0)
      throw new AgentError(
        'conflict',
        `execution ${id} has nothing to roll back: no succeeded step has a compensation and the package has no rollback handlers`,
      );
    this.live.set(id, live);
    this.store.updateExecution(id, { status: 'rolling_back', rollback_status: 'running', rollback_trigger: 'manual' });
    this.track(this.rollbackThenEnd(live, 'manual', plan));
    return this.store.getExecution(id)!;
  }

  /** wpk-spec.md §8: requeue pending, fail interrupted runs, finish deferred or interrupted rollbacks. */
  recover(): { requeued: number; interrupted: number; rollbacks: number } {
    let requeued = 0;
    let interrupted = 0;
    let rollbacks = 0;
    // Read every list before changing anything: a requeued execution starts running at once and a
    // recovered rollback turns its execution rolling_back, and neither must be recovered a second time.
    const [pending, running, failed, rollingBack] = ['pending', 'running', 'failed', 'rolling_back'].map((s) =>
      this.store.executionsWithStatus(s),
    );
    for (const row of pending) {
      const missing = this.missingSecrets(row);
      if (missing.length) {
        this.failRecovered(
          row,
          this.restore(row),
          `secret parameters (${missing.join(', ')}) are not kept across restarts; submit the execution again`,
        );
        continue;
      }
      this.logOnce(row.id, 'info', 'requeued after agent restart');
      this.enqueue({ id: row.id, row, wpk: JSON.parse(row.package) as Wpk, params: this.paramsOf(row) });
      requeued++;
    }
    for (const row of running) {
      const live = this.restore(row);
      this.failRecovered(row, live, 'the agent stopped while this execution was running');
      interrupted++;
      if (row.rollback_on_failure) rollbacks += this.startRecoveredRollback(row.id, 'automatic');
    }
    for (const row of failed)
      if (row.rollback_status === 'pending') rollbacks += this.startRecoveredRollback(row.id, 'automatic');
    for (const row of rollingBack)
      rollbacks += this.startRecoveredRollback(row.id, (row.rollback_trigger as 'manual') ?? 'automatic', true);
    return { requeued, interrupted, rollbacks };
  }

  /** Stops taking work, lets running steps finish within the grace period, then interrupts the rest. */
  async shutdown(): Promise<void> {
    this.draining = true; // queued executions stay queued (and cancellable) and pending in the store
    const all = Promise.allSettled([...this.tasks]);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.shutdownGraceMs)));
    await Promise.race([all, grace]);
    clearTimeout(timer);
    for (const live of this.live.values())
      live.controller.abort(new Interrupt('shutdown', 'the agent shut down while this step ran'));
    await Promise.allSettled([...this.tasks]);
  }

  // --- running -------------------------------------------------------------

  private enqueue(q: Queued): void {
    this.queued.set(q.id, q);
    this.queue.push(q);
    this.metrics.queueDepth.set(this.queue.length);
    this.pump();
  }

  private pump(): void {
    while (!this.draining && this.running < this.options.maxConcurrent && this.queue.length > 0) {
      const q = this.queue.shift()!;
      this.queued.delete(q.id);
      const live = this.makeLive(q.row, q.wpk, q.params, q.logTally);
      this.live.set(live.id, live);
      this.metrics.queueDepth.set(this.queue.length);
      this.running++;
      this.metrics.active.inc();
      this.track(
        this.runExecution(live).finally(() => {
          this.running--;
          this.metrics.active.dec();
          this.live.delete(live.id);
          this.bus.emit(`end:${live.id}`);
          this.pump();
        }),
      );
    }
  }

  private track(task: Promise<void>): void {
    const t: Promise<void> = task
      .catch((err: unknown) => {
        this.bus.emit('internal_error', err);
      })
      .finally(() => this.tasks.delete(t));
    this.tasks.add(t);
  }

  private async runExecution(live: Live): Promise<void> {
    const { id, wpk } = live;
    // Start after the accepting request has been answered, and let I/O in between steps: under a burst,
    // accepting work comes first and the bounded queue absorbs it.
    await this.turns.wait();
    // Shutting down before anything ran: it stays pending in the store and is queued again on the next start.
    if (this.draining) return;
    live.startedMs = performance.now();
    const timeoutSeconds = wpk.spec.timeoutSeconds;
    const deadlineAt = timeoutSeconds ? Date.now() + timeoutSeconds * 1000 : undefined;
    const deadline = timeoutSeconds
      ? setTimeout(
          () => live.controller.abort(new Interrupt('deadline', `the workflow deadline of ${timeoutSeconds}s passed`)),
          timeoutSeconds * 1000,
        )
      : undefined;
    // Everything recorded so far ("running", earlier steps' outputs) is committed before an action with
    // side effects starts: a crash after that point means interrupted and compensated, never "run it again".
    this.store.updateExecution(
      id,
      { status: 'running', started_at: nowIso() },
      { deferred: true, critical: !live.dryRun },
    );
    const beforeSideEffect = () => this.store.flushBeforeSideEffect();
    live.log.write(
      'info',
      `execution started${live.dryRun ? ' (dry run)' : ''}: ${workflowIdOf(wpk)}, ${wpk.spec.handlers.length} steps`,
    );
    let failure: ErrorRecord | undefined;
    let status = 'completed';
    const prepared = prepareInputs(this.deps, wpk.spec.handlers);
    try {
      for (const [idx, step] of wpk.spec.handlers.entries()) {
        if (idx > 0) {
          const turn = this.turns.next();
          if (turn) await turn;
        }
        if (this.draining) {
          failure = { type: 'interrupted', message: 'the agent shut down before this step started', step: step.name };
          status = 'failed';
          this.markRest(id, idx, 'cancelled');
          break;
        }
        if (step.when && !this.whenHolds(live, live.scope, step.name, step.when)) {
          live.scope.steps[step.name] = { status: 'skipped' };
          this.store.updateStep(id, 'main', idx, { status: 'skipped', finished_at: nowIso() });
          continue;
        }
        const target = {
          executionId: id,
          phase: 'main' as const,
          idx,
          dryRun: live.dryRun,
          log: live.log,
          redactor: live.redactor,
          signal: live.controller.signal,
          deadlineAt,
          beforeSideEffect,
          prepared: prepared[idx],
        };
        const result = await runStep(this.deps, target, step, live.scope);
        if (result.ok) {
          live.scope.steps[step.name] = { status: 'succeeded', outputs: result.outputs };
          live.completed.push({ name: step.name, input: result.input, outputs: result.outputs });
          continue;
        }
        live.scope.steps[step.name] = {
          status: result.error.type === 'cancelled' ? 'cancelled' : 'failed',
          outputs: {},
        };
        const stopping = live.controller.signal.aborted || step.onFailure !== 'continue';
        if (!stopping) {
          live.log.write('warn', 'onFailure: continue; going on with the next step', step.name);
          continue;
        }
        failure = { type: result.error.type, message: live.redactor.text(result.error.message), step: step.name };
        status = result.error.type === 'cancelled' ? 'cancelled' : 'failed';
        this.markRest(id, idx + 1, 'cancelled');
        break;
      }
    } finally {
      clearTimeout(deadline);
    }
    const deferRollback = status === 'failed' && live.rollbackOnFailure && failure?.type === 'interrupted';
    this.store.updateExecution(
      id,
      {
        status,
        finished_at: nowIso(),
        error: failure ? JSON.stringify(failure) : null,
        rollback_status: deferRollback ? 'pending' : null,
      },
      // A dry run changed nothing: should its final status be lost in a crash, recovery's interrupted is harmless.
      { deferred: true, critical: !live.dryRun },
    );
    live.log.write(
      status === 'completed' ? 'info' : 'error',
      `execution ${status}${failure ? `: ${failure.type}: ${failure.message}` : ''}`,
    );
    const workflow = this.metrics.workflowLabel(live.row.workflow_name);
    this.metrics.runs.inc({ workflow_name: workflow, status });
    if (status === 'completed') this.metrics.success.inc({ workflow_name: workflow });
    else this.metrics.failure.inc({ workflow_name: workflow, error_type: failure?.type ?? 'internal_error' });
    this.metrics.duration.observe({ workflow_name: workflow }, (performance.now() - live.startedMs) / 1000);

    if (status === 'failed' && live.rollbackOnFailure && !deferRollback) {
      const plan = planRollback(wpk, live.completed, this.registry);
      if (plan.length === 0) {
        live.log.write('info', 'rollback enabled, but nothing to roll back');
        this.store.updateExecution(id, { rollback_status: 'nothing_to_do' });
        return;
      }
      live.controller = new AbortController();
      this.store.updateExecution(id, {
        status: 'rolling_back',
        rollback_status: 'running',
        rollback_trigger: 'automatic',
      });
      await this.runRollback(live, plan, 'automatic');
    }
  }

  /** Evaluates a `when` against `scope` (a rollback step's scope adds `error`). */
  private whenHolds(live: Live, scope: Scope, stepName: string, when: WhenClause): boolean {
    const path = parsePath(when.variable);
    // A dry run has only example outputs: a condition on them says nothing, so the plan shows the step.
    if (live.dryRun && path?.[0] === 'steps' && path[2] === 'outputs') {
      live.log.write(
        'info',
        `dry run: when ${when.variable} ${when.operator} … depends on outputs only a real run has; showing the step as if it holds`,
        stepName,
      );
      return true;
    }
    const found = path ? lookup(scope, path) : { found: false as const, at: when.variable };
    let expected: unknown;
    try {
      expected = renderValue(when.value, scope);
    } catch {
      expected = undefined;
    }
    const holds = evaluateCondition(when.operator, found.found ? found.value : undefined, expected, found.found, (m) =>
      live.log.write('warn', m, stepName),
    );
    if (!holds) {
      const actual = found.found ? JSON.stringify(found.value) : 'absent';
      live.log.write(
        'info',
        `skipped: when ${when.variable} (${actual}) ${when.operator}${when.value === undefined ? '' : ` ${JSON.stringify(expected)}`} is false`,
        stepName,
      );
    }
    return holds;
  }

  private markRest(id: string, fromIdx: number, status: string): void {
    const steps = this.store.getSteps(id);
    for (const s of steps)
      if (s.phase === 'main' && s.idx >= fromIdx && s.status === 'pending')
        this.store.updateStep(id, 'main', s.idx, { status });
  }

  private async rollbackThenEnd(
    live: Live,
    trigger: 'manual' | 'automatic',
    plan: RollbackEntry[],
    resume = false,
  ): Promise<void> {
    this.metrics.active.inc();
    try {
      await this.runRollback(live, plan, trigger, resume);
    } finally {
      this.metrics.active.dec();
      this.live.delete(live.id);
      this.bus.emit(`end:${live.id}`);
    }
  }

  /** Runs every rollback step, keeps going past failures, records each outcome. */
  private async runRollback(live: Live, plan: RollbackEntry[], trigger: string, resume = false): Promise<void> {
    const { id } = live;
    const previous = resume
      ? new Map(
          this.store
            .getSteps(id)
            .filter((s) => s.phase === 'rollback')
            .map((s) => [s.idx, s]),
        )
      : undefined;
    if (!resume)
      this.store.replaceSteps(
        id,
        'rollback',
        plan.map((e, idx) => emptyStep(id, 'rollback', idx, e.def.name, e.def.adapter, e.def.action, e.forStep)),
      );
    live.log.write('warn', `rollback started (${trigger}${live.dryRun ? ', dry run' : ''}): ${plan.length} step(s)`);
    const row = this.store.getExecution(id)!;
    const err = row.error ? (JSON.parse(row.error) as ErrorRecord) : undefined;
    const scope: Scope = {
      ...live.scope,
      error: { type: err?.type ?? null, message: err?.message ?? null, step: err?.step ?? null },
    };
    let failed = 0;
    for (const [idx, entry] of plan.entries()) {
      const before = previous?.get(idx);
      if (before && before.status !== 'pending') {
        if (before.status !== 'succeeded' && before.status !== 'skipped') failed++;
        continue;
      }
      if (this.draining) {
        live.log.write('warn', 'agent shutting down: rollback resumes on the next start');
        return;
      }
      if (entry.when && !this.whenHolds(live, scope, entry.def.name, entry.when)) {
        this.store.updateStep(id, 'rollback', idx, { status: 'skipped', finished_at: nowIso() });
        continue;
      }
      const target = {
        executionId: id,
        phase: 'rollback' as const,
        idx,
        dryRun: live.dryRun,
        log: live.log,
        redactor: live.redactor,
        signal: live.controller.signal,
        beforeSideEffect: () => this.store.flushBeforeSideEffect(),
      };
      // A compensation that hangs must not pin the execution in rolling_back: without its own timeout,
      // each attempt gets the workflow's deadline, or ROLLBACK_STEP_TIMEOUT_SECONDS.
      const def = {
        ...entry.def,
        timeoutSeconds: entry.def.timeoutSeconds ?? live.wpk.spec.timeoutSeconds ?? ROLLBACK_STEP_TIMEOUT_SECONDS,
      };
      const result = await runStep(this.deps, target, def, scope);
      if (!result.ok && result.error.type === 'interrupted') {
        this.store.updateStep(id, 'rollback', idx, { status: 'abandoned' });
        live.log.write('warn', 'agent shutting down: rollback resumes on the next start');
        return;
      }
      if (!result.ok) failed++;
    }
    const status = failed === 0 ? 'rolled_back' : 'rollback_failed';
    this.store.updateExecution(id, {
      status,
      rollback_status: failed === 0 ? 'succeeded' : 'failed',
      finished_at: nowIso(),
    });
    live.log.write(
      failed ? 'error' : 'info',
      failed
        ? `rollback finished: ${failed} of ${plan.length} step(s) failed`
        : `rollback finished: all ${plan.length} step(s) succeeded`,
    );
    this.metrics.rollbacks.inc({ workflow_name: this.metrics.workflowLabel(live.row.workflow_name), result: status });
  }

  // --- restoring state from the store ----------------------------------------

  private startRecoveredRollback(id: string, trigger: 'manual' | 'automatic', resume = false): number {
    const row = this.store.getExecution(id)!;
    const live = this.restore(row);
    const plan = planRollback(live.wpk, live.completed, this.registry);
    if (plan.length === 0) {
      this.store.updateExecution(id, { rollback_status: 'nothing_to_do' });
      return 0;
    }
    const missing = this.missingSecrets(row);
    if (missing.length)
      live.log.write(
        'warn',
        `secret parameters (${missing.join(', ')}) are not kept across restarts; rollback steps that read them will fail with template_error`,
      );
    if (!resume)
      this.store.updateExecution(id, { status: 'rolling_back', rollback_status: 'running', rollback_trigger: trigger });
    else {
      for (const s of this.store.getSteps(id))
        if (s.phase === 'rollback' && s.status === 'running')
          this.store.updateStep(id, 'rollback', s.idx, { status: 'abandoned' });
      live.log.write('warn', 'resuming the rollback interrupted by an agent restart');
    }
    this.live.set(id, live);
    this.track(this.rollbackThenEnd(live, trigger, plan, resume));
    return 1;
  }

  private failRecovered(row: ExecutionRow, live: Live, message: string): void {
    const now = nowIso();
    const main = this.store.getSteps(row.id).filter((s) => s.phase === 'main');
    // A step's start is recorded lazily, so the step in flight is the one marked running or, failing
    // that, the first pending one of a run that had started: it may or may not have done its work.
    const inFlight =
      row.status === 'running'
        ? (main.find((s) => s.status === 'running') ?? main.find((s) => s.status === 'pending'))
        : undefined;
    for (const s of main) {
      if (s === inFlight)
        this.store.updateStep(row.id, 'main', s.idx, {
          status: 'abandoned',
          finished_at: now,
          error: JSON.stringify({ type: 'interrupted', message }),
        });
      else if (s.status === 'pending' || s.status === 'running')
        this.store.updateStep(row.id, 'main', s.idx, { status: 'cancelled' });
    }
    const error: ErrorRecord = { type: 'interrupted', message, step: inFlight?.name ?? null };
    this.store.updateExecution(row.id, { status: 'failed', finished_at: now, error: JSON.stringify(error) });
    live.log.write('error', `execution failed: interrupted: ${message}`);
    this.metrics.runs.inc({ workflow_name: this.metrics.workflowLabel(row.workflow_name), status: 'failed' });
    this.metrics.failure.inc({
      workflow_name: this.metrics.workflowLabel(row.workflow_name),
      error_type: 'interrupted',
    });
  }

  private missingSecrets(row: ExecutionRow): string[] {
    const names = JSON.parse(row.secret_params) as string[];
    const kept = this.secrets.get(row.id) ?? {};
    const given = JSON.parse(row.parameters) as Record<string, unknown>;
    return names.filter((n) => n in given && !(n in kept));
  }

  /** Rebuilds the in-memory view of a stored execution (secret values only if this process still has them). */
  private restore(row: ExecutionRow): Live {
    const live = this.makeLive(row, JSON.parse(row.package) as Wpk, this.paramsOf(row));
    for (const s of this.store.getSteps(row.id)) {
      if (s.phase !== 'main') continue;
      const outputs = s.outputs ? JSON.parse(s.outputs) : {};
      if (s.status !== 'pending') live.scope.steps[s.name] = { status: s.status, outputs };
      if (s.status === 'succeeded')
        live.completed.push({ name: s.name, input: s.input ? JSON.parse(s.input) : {}, outputs });
    }
    return live;
  }

  /** Stored parameters with the secret values this process still holds (absent ones stay absent). */
  private paramsOf(row: ExecutionRow): Record<string, unknown> {
    const params: Record<string, unknown> = {
      ...(JSON.parse(row.parameters) as Record<string, unknown>),
      ...this.secrets.get(row.id),
    };
    for (const n of JSON.parse(row.secret_params) as string[]) if (params[n] === MASK) delete params[n];
    return params;
  }

  /** One log line for an execution that has no Live right now. */
  private logOnce(id: string, level: 'info' | 'warn', message: string): void {
    new ExecutionLog(this.store, this.bus, id, new Redactor([]), this.logLimits, this.store.logTally(id)).write(
      level,
      message,
    );
  }

  private makeLive(
    row: Pick<ExecutionRow, 'id' | 'workflow_name' | 'created_at' | 'dry_run' | 'rollback_on_failure'>,
    wpk: Wpk,
    params: Record<string, unknown>,
    logTally = this.store.logTally(row.id),
  ): Live {
    const defs = wpk.spec.parameters ?? {};
    const redactor = new Redactor(
      Object.keys(defs)
        .filter((k) => defs[k].secret)
        .map((k) => params[k]),
    );
    return {
      id: row.id,
      wpk,
      row,
      dryRun: row.dry_run === 1,
      rollbackOnFailure: row.rollback_on_failure === 1,
      redactor,
      log: new ExecutionLog(this.store, this.bus, row.id, redactor, this.logLimits, logTally),
      controller: new AbortController(),
      scope: {
        params,
        steps: {},
        execution: { id: row.id, dry_run: row.dry_run === 1 },
        workflow: { name: wpk.metadata.name, version: wpk.metadata.version },
      },
      completed: [],
      startedMs: performance.now(),
    };
  }

  private rememberSecrets(id: string, params: Record<string, unknown>, names: string[]): void {
    const kept = Object.fromEntries(names.filter((n) => n in params).map((n) => [n, params[n]]));
    if (Object.keys(kept).length === 0) return;
    this.secrets.set(id, kept);
    if (this.secrets.size > SECRETS_KEPT) this.secrets.delete(this.secrets.keys().next().value!);
  }

  private mustGet(id: string): ExecutionRow {
    const row = this.store.getExecution(id);
    if (!row) throw new AgentError('not_found', `execution ${id} not found`);
    return row;
  }
}

function emptyStep(
  executionId: string,
  phase: StepRow['phase'],
  idx: number,
  name: string,
  adapter: string,
  action: string,
  forStep: string | null,
): StepRow {
  return {
    execution_id: executionId,
    phase,
    idx,
    name,
    adapter,
    action,
    status: 'pending',
    attempts: 0,
    for_step: forStep,
    input: null,
    outputs: null,
    outputs_source: null,
    error: null,
    started_at: null,
    finished_at: null,
  };
}

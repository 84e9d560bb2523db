/**
 * The engine: accepts executions into a bounded queue (worker.ts), runs them (run-execution.ts), rolls back
 * on failure or on request (rollback.ts), recovers after a restart (recovery.ts) and drains on shutdown.
 * Every state change is written to the store, with its journal event, before anyone is told of it.
 */
import { EventEmitter } from 'node:events';
import { AgentError } from '../../../../adapters/errors.js';
import type { AdapterRegistry } from '../adapter-registry.js';
import { nowIso } from '../clock.js';
import { newExecutionId } from './ids.js';
import type { Metrics } from '../metrics.js';
import { pendingStep } from '../store/steps.js';
import type { Store } from '../store/store.js';
import { type Execution, type ExecutionStatus, type Step, type TaskRef, TERMINAL_STATUSES } from '../store/types.js';
import { workflowIdOf, type Wpk } from '../wpk/types.js';
import type { EngineContext } from './context.js';
import { type LogLimits, UNLIMITED_LOG } from './execution-log.js';
import { Interrupt } from './interrupts.js';
import { endBackgroundGroups } from './orphans.js';
import { type ExecutionHead, LiveFactory } from './live.js';
import { IoTurns } from './queue.js';
import { recover, type RecoverySummary } from './recovery.js';
import { MASK } from './redact.js';
import { planRollback, runRollback } from './rollback.js';
import { SecretVault } from './secret-vault.js';
import { type ResultPolicy, Results } from './results.js';
import { StateWriter } from './state.js';
import { runExecution } from './run-execution.js';
import { Worker } from './worker.js';

const ROLLBACK_FROM: ReadonlySet<ExecutionStatus> = new Set(['failed', 'cancelled', 'completed']);

export interface EngineOptions {
  maxConcurrent: number;
  maxQueued: number;
  shutdownGraceMs: number;
  /** Lines and bytes each execution may log (absent: unbounded; the agent passes its configuration). */
  logLimits?: LogLimits;
  /** Largest step output as JSON, in bytes (absent: unbounded). */
  maxOutputBytes?: number;
  /** Which status changes are delivered as results, and where (absent: none without a callback_url). */
  results?: ResultPolicy;
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
  /** A retry: the execution it starts from, and its main steps before `fromStep`, whose outcomes are kept. */
  retry?: RetryOf;
  /** Where its results are delivered, instead of RESULT_CALLBACK_URL (already checked by the service). */
  callbackUrl?: string;
  /** The Manager's task it runs (pull mode): its report is delivered when it ends. */
  task?: TaskRef;
}

export interface RetryOf {
  of: Pick<Execution, 'id' | 'workflowId'>;
  fromStep: string;
  /** The original's main steps before `fromStep`, in order (succeeded, skipped, or failed and gone past): not run again. */
  kept: Step[];
}

export class Engine {
  /**
   * `end:<id>` when an execution's work in this process ends; `log:<id>` with each log line; `internal_error`;
   * `background_started` with each process group a step leaves running.
   */
  readonly bus = new EventEmitter();
  /** Which status changes become deliveries (callbacks, pull-mode reports). */
  readonly results: Results;
  private readonly worker: Worker;
  private readonly ctx: EngineContext;
  private readonly lives: LiveFactory;
  private readonly vault = new SecretVault();
  private recovering = false;

  constructor(
    private readonly store: Store,
    registry: AdapterRegistry,
    private readonly metrics: Metrics,
    private readonly options: EngineOptions,
  ) {
    this.bus.setMaxListeners(0);
    this.results = new Results(store, options.results);
    const state = new StateWriter(store, this.results);
    this.worker = new Worker(
      options,
      (live) => runExecution(this.ctx, live),
      (id) => this.bus.emit(`end:${id}`),
      (err) => this.bus.emit('internal_error', err),
    );
    this.ctx = {
      store,
      state,
      registry,
      metrics,
      steps: {
        registry,
        state,
        metrics,
        maxOutputBytes: options.maxOutputBytes ?? Infinity,
        onBackgroundStarted: (p) => this.bus.emit('background_started', p),
      },
      turns: new IoTurns(),
      draining: () => this.worker.isDraining,
    };
    this.lives = new LiveFactory(store, this.bus, options.logLimits ?? UNLIMITED_LOG, this.vault);
    metrics.attachEngine({
      active: () => this.worker.active,
      queued: () => this.worker.queuedCount,
      overdue: () => this.worker.overdue(),
      limits: { concurrent: options.maxConcurrent, queued: options.maxQueued },
    });
  }

  /** Executions running or rolling back in this process: the one count /health and `active_workflows` read. */
  get activeCount(): number {
    return this.worker.active;
  }

  get queuedCount(): number {
    return this.worker.queuedCount;
  }

  get isDraining(): boolean {
    return this.worker.isDraining;
  }

  /** True while a restart's recovery runs (recover()). */
  get isRecovering(): boolean {
    return this.recovering;
  }

  /** Every API request tells the engine, so that background work yields to it (see IoTurns). */
  noteApiRequest(): void {
    this.ctx.turns.noteRequest();
  }

  /** True while the execution is queued, running or rolling back in this process. */
  isLive(id: string): boolean {
    return this.worker.isLive(id);
  }

  /**
   * Stores a new execution, with its `execution.created` event, and queues it. `stored` resolves once the
   * insert is committed: an API answer waits for it. The execution itself never starts before that commit
   * (its first write shares or follows it).
   */
  submit(req: SubmitRequest): { execution: Execution; stored: Promise<void> } {
    this.worker.admit();
    const id = newExecutionId();
    const defs = req.wpk.spec.parameters ?? {};
    const secretParams = Object.keys(defs).filter((k) => defs[k].secret);
    const parameters = { ...req.params };
    for (const k of secretParams) if (k in parameters) parameters[k] = MASK;
    const head: ExecutionHead = {
      id,
      workflowId: workflowIdOf(req.wpk),
      workflowName: req.wpk.metadata.name,
      dryRun: req.dryRun,
      rollbackOnFailure: req.rollbackOnFailure ?? req.wpk.spec.rollback?.enabled ?? false,
      status: 'pending',
      secretParams,
      retryOf: req.retry?.of.id ?? null,
      callbackUrl: req.callbackUrl ?? null,
      task: req.task ?? null,
    };
    const createdAt = nowIso();
    const submittedBy = req.submittedBy ?? null;
    const stepsTotal = req.wpk.spec.handlers.length;
    const { retry } = req;
    const events = [
      this.store.journal.prepare({
        type: 'execution.created',
        execution_id: id,
        workflow_id: head.workflowId,
        data: {
          workflow_name: head.workflowName,
          dry_run: head.dryRun,
          rollback_on_failure: head.rollbackOnFailure,
          steps_total: stepsTotal,
          submitted_by: submittedBy,
          ...(retry && { retry_of: retry.of.id, from_step: retry.fromStep }),
        },
      }),
    ];
    if (retry) {
      events.push(
        this.store.journal.prepare({
          type: 'execution.retried',
          execution_id: retry.of.id,
          workflow_id: retry.of.workflowId,
          data: { retry_id: id, from_step: retry.fromStep },
        }),
      );
    }
    const steps = req.wpk.spec.handlers.map((h, idx) =>
      retry && idx < retry.kept.length ? keptStep(id, retry.of.id, retry.kept[idx]) : pendingStep(id, 'main', idx, h),
    );
    const stored = this.store.executions.insert(
      {
        ...head,
        parameters,
        packageJson: req.packageJson ?? JSON.stringify(req.wpk),
        stepsTotal,
        createdAt,
        submittedBy,
        retryOf: retry?.of.id,
        callbackUrl: req.callbackUrl,
        task: req.task,
      },
      steps,
      req.idempotency,
      events,
    );
    // An execution whose insert did not commit was never accepted: it must not run. (The catch also keeps a
    // caller that does not wait, such as a test, from seeing an unhandled rejection.)
    stored.catch(() => {
      this.worker.unqueue(id);
      this.worker.live(id)?.controller.abort(new Interrupt('cancelled', 'the execution could not be stored'));
    });
    this.vault.remember(id, req.params, secretParams);
    const logTally = { lines: 0, bytes: 0, dropped: 0 };
    this.worker.enqueue({ id, start: () => this.lives.make(head, req.wpk, req.params, logTally) });
    const execution: Execution = {
      ...head,
      seq: 0,
      parameters,
      currentStep: null,
      stepsCompleted: 0,
      stepsTotal,
      error: null,
      rollbackStatus: null,
      rollbackTrigger: null,
      rollbackRequestedBy: null,
      createdAt,
      startedAt: null,
      finishedAt: null,
      submittedBy,
      droppedLogLines: 0,
      retriedBy: null,
    };
    return { execution, stored };
  }

  /** Aborts a running execution, or cancels a queued one before it starts. */
  cancel(id: string): Execution {
    if (this.recovering) this.refuseWhileBusy('cancels nothing');
    const e = this.mustGet(id);
    if (this.worker.unqueue(id)) {
      const message = 'cancelled before it started';
      const log = this.lives.log(id);
      const handlers = this.store.executions.packageOf(id).spec.handlers;
      handlers.forEach((h, idx) => this.ctx.state.stepNotStarted(e, 'main', idx, h.name, 'not_run', message));
      this.ctx.state.status(e, 'pending', 'cancelled', {
        finishedAt: nowIso(),
        error: { type: 'cancelled', message, step: null },
      });
      log.write('warn', `execution ${message}`);
      this.metrics.runEnded(e.workflowName, 'cancelled', {});
      this.bus.emit(`end:${id}`);
      return this.store.executions.get(id)!;
    }
    // A started execution may still read pending for the moment before its first step.
    const live = this.worker.live(id);
    if (!live || !(e.status === 'running' || e.status === 'pending')) {
      throw new AgentError(
        'conflict',
        `execution ${id} is ${e.status}; only pending or running executions can be cancelled`,
      );
    }
    live.log.write('warn', 'cancel requested');
    live.controller.abort(new Interrupt('cancelled', 'execution was cancelled'));
    return { ...e, status: 'running' };
  }

  /** Starts a manual rollback of a failed, cancelled or completed execution. */
  rollback(id: string, requestedBy?: string): Execution {
    this.refuseWhileBusy('starts no rollback');
    const e = this.mustGet(id);
    if (!ROLLBACK_FROM.has(e.status) || this.worker.isLive(id)) {
      throw new AgentError(
        'conflict',
        `execution ${id} is ${e.status}; rollback needs a failed, cancelled or completed execution`,
      );
    }
    const live = this.lives.restore(e);
    if (e.retriedBy !== null) {
      // The steps its retry kept are the retry's to undo now; the others (run again by the retry) are still its own.
      const kept = new Set(
        this.store.steps
          .of(e.retriedBy)
          .filter((s) => s.phase === 'main' && s.outputsSource === 'reused')
          .map((s) => s.name),
      );
      live.completed = live.completed.filter((c) => !kept.has(c.name));
      if (live.completed.length === 0 && kept.size > 0) {
        throw new AgentError(
          'conflict',
          `execution ${id} was retried by ${e.retriedBy}, which kept the outcomes of its steps: roll back ${e.retriedBy} instead`,
          { details: { retried_by: e.retriedBy } },
        );
      }
    }
    const plan = planRollback(live.wpk, live.completed, this.ctx.registry);
    if (plan.length === 0) {
      throw new AgentError(
        'conflict',
        `execution ${id} has nothing to roll back: no succeeded step has a compensation and the package has no rollback handlers`,
      );
    }
    this.worker.runNow(live, async () => {
      await runRollback(this.ctx, live, { trigger: 'manual', requestedBy, plan });
    });
    return this.store.executions.get(id)!;
  }

  /**
   * What a retry of `id` starts from: the execution, its package and main steps, and its parameters with the
   * secret values this process still holds (`missingSecrets`: those it no longer does). Refused while the
   * execution runs or a rollback of it is under way or waiting, and once it has been retried: the retry owns
   * the outcomes of its steps then.
   */
  retryBasis(id: string): {
    original: Execution;
    wpk: Wpk;
    steps: Step[];
    parameters: Record<string, unknown>;
    missingSecrets: string[];
  } {
    this.refuseWhileBusy('starts no retry');
    const e = this.mustGet(id);
    if (!TERMINAL_STATUSES.has(e.status) || this.worker.isLive(id)) {
      throw new AgentError('conflict', `execution ${id} is ${e.status}; retry it once it has ended`);
    }
    if (e.rollbackStatus === 'pending' || e.rollbackStatus === 'running') {
      throw new AgentError(
        'conflict',
        `the rollback of execution ${id} is ${e.rollbackStatus}; retry it once the rollback has ended`,
      );
    }
    if (e.retriedBy !== null) {
      throw new AgentError(
        'conflict',
        `execution ${id} was retried already, by ${e.retriedBy}: retry that one instead`,
        {
          details: { retried_by: e.retriedBy },
        },
      );
    }
    return {
      original: e,
      wpk: this.store.executions.packageOf(id),
      steps: this.store.steps.of(id).filter((s) => s.phase === 'main'),
      parameters: this.vault.parameters(e),
      missingSecrets: this.vault.missing(e),
    };
  }

  /**
   * What a restart finds (recovery.ts). The queue holds while it works: a submission is stored and queued
   * and starts once recovery is done; cancels and rollbacks are refused with 503 until then.
   */
  async recover(): Promise<RecoverySummary> {
    this.recovering = true;
    this.worker.pause(true);
    try {
      return await recover({
        ctx: this.ctx,
        lives: this.lives,
        vault: this.vault,
        worker: this.worker,
        requeue: (e) => {
          const wpk = this.store.executions.packageOf(e.id);
          this.worker.enqueue({ id: e.id, start: () => this.lives.make(e, wpk, this.vault.parameters(e)) });
        },
      });
    } finally {
      this.recovering = false;
      this.worker.pause(false);
    }
  }

  /**
   * Stops taking work, lets running steps finish within the grace period, then interrupts the rest; then ends
   * the processes steps left running (shell.start), which never outlive the agent.
   */
  async shutdown(): Promise<void> {
    await this.worker.shutdown(this.options.shutdownGraceMs);
    await endBackgroundGroups(this.store, this.store.backgroundProcesses.list());
  }

  private refuseWhileBusy(what: string): void {
    if (this.worker.isDraining) {
      throw new AgentError(
        'rate_limited',
        `the agent is shutting down and ${what}; retry on another instance or after the restart`,
        { status: 503 },
      );
    }
    if (this.recovering) {
      throw new AgentError(
        'rate_limited',
        `the agent is recovering after a restart and ${what} yet; retry in a moment`,
        {
          status: 503,
        },
      );
    }
  }

  private mustGet(id: string): Execution {
    const e = this.store.executions.get(id);
    if (!e) throw new AgentError('not_found', `execution ${id} not found`);
    return e;
  }
}

/** A main step of a retry that is not run again: the original's outcome, marked as kept from it. */
function keptStep(executionId: string, originalId: string, s: Step): Step {
  return {
    ...s,
    executionId,
    outputsSource: s.status === 'succeeded' ? 'reused' : s.outputsSource,
    reason: `${s.status} in execution ${originalId}; not run again${s.reason ? ` (${s.reason})` : ''}`,
    processes: [],
  };
}

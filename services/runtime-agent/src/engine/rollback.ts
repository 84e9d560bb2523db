/**
 * Rollback, a saga: the compensations of the steps that succeeded, newest first, then the workflow-level
 * rollback handlers in order. `runRollback` is the one entry point, whoever started it: the engine after a
 * failure (automatic), a user (manual) or recovery after a restart (recovered, or resuming one under way).
 */
import type { Outputs } from '../../../../adapters/contract.js';
import type { AdapterRegistry } from '../adapter-registry.js';
import { nowIso } from '../clock.js';
import { pendingStep } from '../store/steps.js';
import type { RollbackTrigger, Step } from '../store/types.js';
import type { WhenClause, Wpk } from '../wpk/types.js';
import type { EngineContext } from './context.js';
import { type Live, stepTarget } from './live.js';
import { endBackgroundGroups } from './orphans.js';
import { runStep, type StepDef } from './step-runner.js';
import type { Scope } from './templates.js';
import { skipReason } from './when.js';

/** Per-attempt timeout of a rollback step that sets none, in a package without timeoutSeconds. */
export const ROLLBACK_STEP_TIMEOUT_SECONDS = 600;

export interface CompletedStep {
  name: string;
  input: Record<string, unknown>;
  outputs: Outputs;
}

export interface RollbackEntry {
  def: StepDef;
  /** The main step this compensates; null for workflow-level handlers. */
  forStep: string | null;
  when?: WhenClause;
  /** False when the package says this compensation must not run twice (it is then not rerun after a crash). */
  idempotent: boolean;
}

/** `completed` is in completion order; the plan undoes it newest first. */
export function planRollback(wpk: Wpk, completed: CompletedStep[], registry: AdapterRegistry): RollbackEntry[] {
  const plan: RollbackEntry[] = [];
  const byName = new Map(wpk.spec.handlers.map((h) => [h.name, h]));
  for (const done of [...completed].reverse()) {
    const step = byName.get(done.name);
    if (!step || step.rollback === 'none') continue;
    const name = `${step.name}:rollback`;
    if (step.rollback) {
      const rb = step.rollback;
      plan.push({
        def: {
          name,
          adapter: rb.adapter ?? step.adapter,
          action: rb.action,
          with: rb.with,
          timeoutSeconds: rb.timeoutSeconds,
          retries: rb.retries,
        },
        forStep: step.name,
        idempotent: rb.idempotent !== false,
      });
      continue;
    }
    const found = registry.find(step.adapter, step.action);
    const comp = found.ok ? found.spec.compensate?.(done.input, done.outputs) : undefined;
    if (comp)
      plan.push({
        def: { name, adapter: comp.adapter ?? step.adapter, action: comp.action, with: comp.with, literal: true },
        forStep: step.name,
        idempotent: true,
      });
  }
  for (const h of wpk.spec.rollback?.handlers ?? []) {
    plan.push({
      def: {
        name: h.name,
        adapter: h.adapter,
        action: h.action,
        with: h.with,
        timeoutSeconds: h.timeoutSeconds,
        retries: h.retries,
      },
      forStep: null,
      when: h.when,
      idempotent: h.idempotent !== false,
    });
  }
  return plan;
}

export interface RollbackRequest {
  trigger: RollbackTrigger;
  /** Who asked for a manual rollback. */
  requestedBy?: string;
  /** Go on with a plan already stored (a rollback a restart interrupted), rather than start a new one. */
  resume?: boolean;
  /** The plan, when the caller already made it to see whether there is anything to roll back. */
  plan?: RollbackEntry[];
}

/** What a finished step of a stored plan counts as when a rollback resumes. */
const DONE: Partial<Record<Step['status'], 'succeeded' | 'skipped' | 'failed'>> = {
  succeeded: 'succeeded',
  skipped: 'skipped',
  failed: 'failed',
  cancelled: 'failed',
  not_run: 'failed',
};

/**
 * Plans and runs the rollback of `live`, recording every compensation's outcome; keeps going past failures.
 * Everything up to the first compensation happens synchronously, so the execution reads rolling_back as soon
 * as this is called. Returns false when there is nothing to roll back (and records that).
 */
export async function runRollback(ctx: EngineContext, live: Live, request: RollbackRequest): Promise<boolean> {
  const { id } = live;
  const plan = request.plan ?? planRollback(live.wpk, live.completed, ctx.registry);
  if (plan.length === 0) {
    live.log.write('info', 'rollback enabled, but nothing to roll back');
    await endStartedGroups(ctx, live);
    ctx.state.nothingToRollBack(live);
    return false;
  }
  const previous = request.resume
    ? new Map(
        ctx.store.steps
          .of(id)
          .filter((s) => s.phase === 'rollback')
          .map((s) => [s.idx, s]),
      )
    : undefined;
  if (!request.resume) {
    ctx.store.steps.replace(
      id,
      'rollback',
      plan.map((e, idx) => pendingStep(id, 'rollback', idx, e.def, e.forStep)),
    );
  }
  ctx.state.rollbackStarted(live, live.status, request.trigger, plan.length, {
    requestedBy: request.requestedBy,
    resumed: request.resume,
  });
  live.status = 'rolling_back';
  live.controller = new AbortController();
  const how = `${request.trigger}${live.dryRun ? ', dry run' : ''}`;
  live.log.write(
    'warn',
    request.resume
      ? `resuming the rollback (${how}) interrupted by an agent restart: ${plan.length} step(s)`
      : `rollback started (${how}): ${plan.length} step(s)`,
  );
  const err = ctx.store.executions.get(id)?.error;
  const scope: Scope = {
    ...live.scope,
    error: { type: err?.type ?? null, message: err?.message ?? null, step: err?.step ?? null },
  };
  const count = { succeeded: 0, skipped: 0, failed: 0 };
  for (const [idx, entry] of plan.entries()) {
    const before = previous?.get(idx);
    const done = before && DONE[before.status];
    if (done) {
      count[done]++;
      continue;
    }
    // Interrupted by a restart: compensations are meant to be idempotent and run again, unless one says not.
    if (before && before.status !== 'pending' && !entry.idempotent) {
      live.log.write(
        'warn',
        'this compensation was interrupted by an agent restart and is marked idempotent: false, so it is not run again',
        entry.def.name,
      );
      ctx.state.stepFinished(
        live,
        'rollback',
        idx,
        entry.def.name,
        { status: 'abandoned', attempt: before.attempts, durationMs: 0 },
        { finishedAt: nowIso() },
        {},
      );
      count.failed++;
      continue;
    }
    if (ctx.draining()) {
      live.log.write('warn', 'agent shutting down: rollback resumes on the next start');
      return true;
    }
    const reason = entry.when ? skipReason(live, scope, entry.def.name, entry.when) : undefined;
    if (reason !== undefined) {
      ctx.state.stepNotStarted(live, 'rollback', idx, entry.def.name, 'skipped', reason);
      count.skipped++;
      continue;
    }
    const target = stepTarget(live, 'rollback', idx, { beforeSideEffect: () => ctx.store.flushBeforeSideEffect() });
    // A compensation that hangs must not pin the execution in rolling_back: without its own timeout,
    // each attempt gets the workflow's deadline, or ROLLBACK_STEP_TIMEOUT_SECONDS.
    const def = {
      ...entry.def,
      timeoutSeconds: entry.def.timeoutSeconds ?? live.wpk.spec.timeoutSeconds ?? ROLLBACK_STEP_TIMEOUT_SECONDS,
    };
    const result = await runStep(ctx.steps, target, def, scope);
    if (!result.ok && result.error.type === 'interrupted') {
      live.log.write('warn', 'agent shutting down: rollback resumes on the next start, and runs this step again');
      return true;
    }
    count[result.ok ? 'succeeded' : 'failed']++;
  }
  await endStartedGroups(ctx, live);
  // A rollback that follows its run's failure is part of that run; one asked for by hand later is not, so the
  // run's own end (and duration) stays as it was; the compensations carry their own times.
  const runEnd = request.trigger === 'manual' ? undefined : nowIso();
  ctx.state.rollbackFinished(live, { ...count, steps: plan.length }, runEnd);
  const result = count.failed === 0 ? 'rolled_back' : 'rollback_failed';
  live.status = result;
  const parts = [`${count.succeeded} succeeded`];
  if (count.skipped) parts.push(`${count.skipped} skipped`);
  if (count.failed) parts.push(`${count.failed} failed`);
  live.log.write(count.failed ? 'error' : 'info', `rollback finished: ${parts.join(', ')} of ${plan.length} step(s)`);
  ctx.metrics.rollbackEnded(live.workflowName, request.trigger, result);
  return true;
}

/**
 * Ends the process groups the execution's steps left running (shell.start) that are still there: called when
 * the execution ends other than completed, and when a rollback has run its compensations.
 */
export async function endStartedGroups(ctx: EngineContext, live: Live): Promise<void> {
  const left = ctx.store.backgroundProcesses.of(live.id);
  if (left.length === 0) return;
  live.log.write(
    'info',
    `stopping ${left.length} process group(s) this execution left running (pid ${left.map((p) => p.pid).join(', ')})`,
  );
  await endBackgroundGroups(ctx.store, left);
}

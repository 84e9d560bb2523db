/**
 * One execution from its start to its end: for each step, `when` → runStep → record; then, after a failure,
 * the automatic rollback. Every state change goes through the StateWriter, with its journal event.
 */
import type { ErrorRecord } from '../../../../adapters/errors.js';
import { nowIso } from '../clock.js';
import type { ExecutionStatus, Step } from '../store/types.js';
import { workflowIdOf } from '../wpk/types.js';
import type { EngineContext } from './context.js';
import { Interrupt } from './interrupts.js';
import { type Live, stepTarget } from './live.js';
import { endStartedGroups, runRollback } from './rollback.js';
import { prepareInputs, runStep } from './step-runner.js';
import { skipReason } from './when.js';

export async function runExecution(ctx: EngineContext, live: Live): Promise<void> {
  const { wpk } = live;
  // Start after the accepting request has been answered, and let I/O in between steps: under a burst,
  // accepting work comes first and the bounded queue absorbs it.
  await ctx.turns.wait();
  // Shutting down before anything ran: it stays pending in the store and is queued again on the next start.
  if (ctx.draining()) return;
  live.startedMs = performance.now();
  const timeoutSeconds = wpk.spec.timeoutSeconds;
  if (timeoutSeconds) live.deadlineMs = live.startedMs + timeoutSeconds * 1000;
  const deadlineAt = timeoutSeconds ? Date.now() + timeoutSeconds * 1000 : undefined;
  const deadline = timeoutSeconds
    ? setTimeout(
        () => live.controller.abort(new Interrupt('deadline', `the workflow deadline of ${timeoutSeconds}s passed`)),
        timeoutSeconds * 1000,
      )
    : undefined;
  // Everything recorded so far ("running", earlier steps' outputs) is committed before an action with
  // side effects starts: a crash after that point means interrupted and compensated, never "run it again".
  ctx.state.status(live, 'pending', 'running', { startedAt: nowIso() }, { deferred: true, critical: !live.dryRun });
  live.status = 'running';
  const beforeSideEffect = () => ctx.store.flushBeforeSideEffect();
  live.log.write(
    'info',
    `execution started${live.dryRun ? ' (dry run)' : ''}: ${workflowIdOf(wpk)}, ${wpk.spec.handlers.length} steps`,
  );
  let failure: ErrorRecord | undefined;
  let status: ExecutionStatus = 'completed';
  const kept = live.retryOf === null ? undefined : keptSteps(ctx, live);
  const prepared = prepareInputs(ctx.steps, wpk.spec.handlers);
  try {
    for (const [idx, step] of wpk.spec.handlers.entries()) {
      const keptStep = kept?.get(idx);
      if (keptStep) {
        keep(live, keptStep);
        continue;
      }
      if (idx > 0) await ctx.turns.wait();
      if (ctx.draining()) {
        failure = { type: 'interrupted', message: 'the agent shut down before this step started', step: step.name };
        status = 'failed';
        notRun(ctx, live, idx, 'the agent shut down before this step started');
        break;
      }
      const reason = step.when ? skipReason(live, live.scope, step.name, step.when) : undefined;
      if (reason !== undefined) {
        live.scope.steps[step.name] = { status: 'skipped' };
        ctx.state.stepNotStarted(live, 'main', idx, step.name, 'skipped', reason);
        continue;
      }
      const target = stepTarget(live, 'main', idx, { deadlineAt, beforeSideEffect, prepared: prepared[idx] });
      const result = await runStep(ctx.steps, target, step, live.scope);
      if (result.ok) {
        live.scope.steps[step.name] = { status: 'succeeded', outputs: result.outputs };
        live.completed.push({ name: step.name, input: result.input, outputs: result.outputs });
        continue;
      }
      live.scope.steps[step.name] = { status: result.error.type === 'cancelled' ? 'cancelled' : 'failed', outputs: {} };
      const stopping = live.controller.signal.aborted || step.onFailure !== 'continue';
      if (!stopping) {
        live.log.write('warn', 'onFailure: continue; going on with the next step', step.name);
        continue;
      }
      failure = { type: result.error.type, message: live.redactor.text(result.error.message), step: step.name };
      status = result.error.type === 'cancelled' ? 'cancelled' : 'failed';
      notRun(ctx, live, idx + 1, `the execution stopped at step '${step.name}' (${status})`);
      break;
    }
  } finally {
    clearTimeout(deadline);
  }
  // Interrupted by a shutdown: the rollback waits for the next start, where recovery runs it.
  const deferRollback = status === 'failed' && live.rollbackOnFailure && failure?.type === 'interrupted';
  const rollsBack = status === 'failed' && live.rollbackOnFailure && !deferRollback;
  // What it left running has lost its purpose (a shutdown ends every such process anyway; a rollback ends
  // them once its compensations ran).
  if (status !== 'completed' && !rollsBack && failure?.type !== 'interrupted') await endStartedGroups(ctx, live);
  ctx.state.status(
    live,
    'running',
    status,
    { finishedAt: nowIso(), error: failure ?? null, rollbackStatus: deferRollback ? 'pending' : null },
    // A dry run changed nothing: should its final status be lost in a crash, recovery's interrupted is harmless.
    { deferred: true, critical: !live.dryRun },
  );
  live.status = status;
  live.log.write(
    status === 'completed' ? 'info' : 'error',
    `execution ${status}${failure ? `: ${failure.type}: ${failure.message}` : ''}`,
  );
  let ended: ExecutionStatus = status;
  if (rollsBack) {
    await runRollback(ctx, live, { trigger: 'automatic' });
    // A rollback the agent's shutdown interrupted resumes on the next start (rollbacks_total counts it there).
    const after = (live as Live).status;
    if (after !== 'rolling_back') ended = after;
  }
  // Counted once, in the status the run ended in: after the automatic rollback that followed a failure.
  ctx.metrics.runEnded(live.workflowName, ended, {
    seconds: (performance.now() - live.startedMs) / 1000,
    errorType: failure?.type,
  });
}

/**
 * A retry's steps that are not run again: the main steps its submit stored with the original's outcome (every
 * other main step of an execution that has not started is pending), read from the store so that a retry
 * queued again after a restart keeps them too.
 */
function keptSteps(ctx: EngineContext, live: Live): Map<number, Step> {
  const kept = new Map<number, Step>();
  for (const s of ctx.store.steps.of(live.id)) if (s.phase === 'main' && s.status !== 'pending') kept.set(s.idx, s);
  if (kept.size > 0) {
    live.log.write('info', `retry of ${live.retryOf}: ${kept.size} step(s) kept from it, not run again`);
  }
  return kept;
}

/** A kept step's outcome is this execution's: later steps read its outputs, and a rollback undoes it. */
function keep(live: Live, s: Step): void {
  const outputs = s.outputs ?? {};
  live.scope.steps[s.name] = { status: s.status, outputs };
  if (s.status === 'succeeded') live.completed.push({ name: s.name, input: s.input ?? {}, outputs });
}

/** The main steps from `fromIdx` on never started: each is recorded not_run, with why. */
function notRun(ctx: EngineContext, live: Live, fromIdx: number, reason: string): void {
  const handlers = live.wpk.spec.handlers;
  for (let idx = fromIdx; idx < handlers.length; idx++) {
    ctx.state.stepNotStarted(live, 'main', idx, handlers[idx].name, 'not_run', reason);
  }
}

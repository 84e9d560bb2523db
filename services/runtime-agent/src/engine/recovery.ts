/**
 * What a restart finds in the store, and what it does with it: processes that outlived the agent are ended
 * first; then pending executions are queued again, executions that were running are failed as interrupted
 * (and rolled back when enabled), and rollbacks that were waiting or under way are run.
 */
import { nowIso } from '../clock.js';
import type { Execution, RollbackTrigger } from '../store/types.js';
import type { EngineContext } from './context.js';
import type { Live, LiveFactory } from './live.js';
import { endBackgroundGroups, endOrphanedGroups } from './orphans.js';
import { planRollback, runRollback } from './rollback.js';
import type { SecretVault } from './secret-vault.js';
import type { Worker } from './worker.js';

export interface RecoverySummary {
  requeued: number;
  interrupted: number;
  rollbacks: number;
  /** Processes of interrupted steps that were still running, and were ended. */
  orphans: number;
}

export interface RecoveryDeps {
  ctx: EngineContext;
  lives: LiveFactory;
  vault: SecretVault;
  worker: Worker;
  /** Queues a stored pending execution again. */
  requeue(e: Execution): void;
}

export async function recover(d: RecoveryDeps): Promise<RecoverySummary> {
  const { store } = d.ctx;
  const summary: RecoverySummary = { requeued: 0, interrupted: 0, rollbacks: 0, orphans: 0 };
  // Read every list before changing anything, and before the first await: a requeued execution starts
  // running at once and a recovered rollback turns its execution rolling_back, and neither must be
  // recovered a second time; an execution submitted while the orphans are ended is queued by its submit
  // and must not be queued again here.
  const pending = store.executions.withStatus('pending');
  const running = store.executions.withStatus('running');
  const waiting = store.executions.withRollbackPending();
  const rollingBack = store.executions.withStatus('rolling_back');
  const groups = [...running, ...rollingBack].flatMap((e) => store.steps.of(e.id).flatMap((s) => s.processes));
  // Processes steps left running (shell.start) belonged to the agent that was killed: they end with it.
  const background = store.backgroundProcesses.list();
  summary.orphans = (await endOrphanedGroups(groups)) + (await endBackgroundGroups(store, background));

  for (const e of pending) {
    const missing = d.vault.missing(e);
    if (missing.length) {
      failInterrupted(
        d,
        e,
        d.lives.restore(e),
        `secret parameters (${missing.join(', ')}) are not kept across restarts; submit the execution again`,
      );
      continue;
    }
    d.lives.log(e.id).write('info', 'requeued after agent restart');
    d.requeue(e);
    summary.requeued++;
  }
  for (const e of running) {
    const live = d.lives.restore(e);
    failInterrupted(d, e, live, 'the agent stopped while this execution was running');
    summary.interrupted++;
    if (e.rollbackOnFailure) summary.rollbacks += startRollback(d, live, 'recovered', false);
  }
  for (const e of waiting) summary.rollbacks += startRollback(d, d.lives.restore(e), 'recovered', false);
  for (const e of rollingBack) {
    summary.rollbacks += startRollback(d, d.lives.restore(e), e.rollbackTrigger ?? 'automatic', true);
  }
  return summary;
}

/** Starts (or resumes) a rollback in a slot of its own; 0 when there is nothing to roll back. */
function startRollback(d: RecoveryDeps, live: Live, trigger: RollbackTrigger, resume: boolean): number {
  const plan = planRollback(live.wpk, live.completed, d.ctx.registry);
  if (plan.length === 0) {
    d.ctx.state.nothingToRollBack(live);
    return 0;
  }
  const e = d.ctx.store.executions.get(live.id)!;
  const missing = d.vault.missing(e);
  if (missing.length) {
    live.log.write(
      'warn',
      `secret parameters (${missing.join(', ')}) are not kept across restarts; rollback steps that read them will fail with template_error`,
    );
  }
  d.worker.runNow(live, async () => {
    await runRollback(d.ctx, live, { trigger, resume, plan });
  });
  return 1;
}

/**
 * Fails an execution the restart interrupted. A step's start is recorded lazily, so the step in flight is
 * the one marked running or, failing that, the first pending one of a run that had started: it may or may
 * not have done its work, and is marked abandoned. The steps after it never ran.
 */
function failInterrupted(d: RecoveryDeps, e: Execution, live: Live, message: string): void {
  const { state, store, metrics } = d.ctx;
  const now = nowIso();
  const main = store.steps.of(e.id).filter((s) => s.phase === 'main');
  const inFlight =
    e.status === 'running'
      ? (main.find((s) => s.status === 'running') ?? main.find((s) => s.status === 'pending'))
      : undefined;
  for (const s of main) {
    if (s === inFlight) {
      state.stepFinished(
        live,
        'main',
        s.idx,
        s.name,
        { status: 'abandoned', attempt: s.attempts, durationMs: 0, error: { type: 'interrupted', message } },
        { finishedAt: now, error: { type: 'interrupted', message }, processes: [] },
        { deferred: true },
      );
    } else if (s.status === 'pending' || s.status === 'running') {
      state.stepNotStarted(live, 'main', s.idx, s.name, 'not_run', message);
    }
  }
  state.status(live, e.status, 'failed', {
    finishedAt: now,
    error: { type: 'interrupted', message, step: inFlight?.name ?? null },
  });
  live.status = 'failed';
  live.log.write('error', `execution failed: interrupted: ${message}`);
  // Counted now, as failed: a recovered rollback that follows is counted by workflow_rollbacks_total.
  metrics.runEnded(e.workflowName, 'failed', { errorType: 'interrupted' });
}

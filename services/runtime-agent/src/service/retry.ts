/**
 * Where a retry starts and what it keeps. A retry is a new execution of the package a finished one ran: the
 * main steps before `from_step` are not run again, and their outcomes (outputs, and for a later rollback
 * their compensations) are the retry's. Its parameters are the original's, with `parameters` laid over them.
 */
import { AgentError, type Problem, ValidationError } from '../../../../adapters/errors.js';
import type { Execution, Step } from '../store/types.js';
import type { WpkStep } from '../wpk/types.js';

export interface RetryRequest {
  /** The first step to run again (default: the step that failed; the first step after a rollback). */
  from_step?: string;
  /** Parameters to change; the others keep the original's values. */
  parameters?: Record<string, unknown>;
}

export interface RetryPlan {
  fromStep: string;
  /** The original's main steps before `fromStep`, in order: not run again. */
  kept: Step[];
}

/** Outcomes a later step can build on: succeeded, skipped, or failed where the package says to go on. */
function keepable(s: Step, def: Pick<WpkStep, 'onFailure'>): boolean {
  return s.status === 'succeeded' || s.status === 'skipped' || (s.status === 'failed' && def.onFailure === 'continue');
}

/**
 * The plan for retrying `original` (a finished execution, not rolling back, not retried before) whose main
 * steps are `steps`, or the 4xx that says why it cannot start where asked.
 */
export function planRetry(
  original: Execution,
  steps: Step[],
  handlers: Array<Pick<WpkStep, 'name' | 'onFailure'>>,
  req: RetryRequest,
): RetryPlan {
  const id = original.id;
  const names = handlers.map((h) => h.name);
  // After a rollback the effects of the steps are undone: nothing can be kept, every step runs again.
  const undone = original.rollbackStatus === 'succeeded' || original.rollbackStatus === 'failed';
  const fromStep = req.from_step ?? (undone ? names[0] : firstUnfinished(original, steps, handlers));
  if (fromStep === undefined) {
    throw new ValidationError('nothing to retry', [
      {
        path: '$.from_step',
        message: `execution ${id} completed every step: name the step to run again from (${names.join(', ')})`,
      },
    ]);
  }
  const fromIdx = names.indexOf(fromStep);
  if (fromIdx < 0) {
    const problem: Problem = {
      path: '$.from_step',
      message: `is not a step of ${original.workflowId}; its steps: ${names.join(', ')}`,
    };
    throw new ValidationError('invalid retry request', [problem]);
  }
  if (undone && fromIdx > 0) {
    throw new AgentError(
      'conflict',
      `execution ${id} was rolled back: the effects of its steps before '${fromStep}' were undone, so their outputs cannot be kept; retry from its first step, '${names[0]}'`,
      { details: { rollback_status: original.rollbackStatus } },
    );
  }
  const kept = steps.slice(0, fromIdx);
  const unfinished = kept.find((s) => !keepable(s, handlers[s.idx]));
  if (unfinished) {
    throw new AgentError(
      'conflict',
      `step '${unfinished.name}' comes before '${fromStep}' and ended ${unfinished.status} in execution ${id}: retry from '${unfinished.name}' or an earlier step`,
      { details: { step: unfinished.name, status: unfinished.status } },
    );
  }
  return { fromStep, kept };
}

/** The step that failed (or was cancelled), else the first main step that did not finish. */
function firstUnfinished(
  original: Execution,
  steps: Step[],
  handlers: Array<Pick<WpkStep, 'onFailure'>>,
): string | undefined {
  return original.error?.step ?? steps.find((s) => !keepable(s, handlers[s.idx]))?.name;
}

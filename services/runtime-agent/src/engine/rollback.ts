/**
 * The rollback plan (wpk-spec.md §5), a saga: compensations of the steps that
 * succeeded, newest first, then the workflow-level rollback handlers in order.
 */
import type { Outputs } from '../../../../adapters/contract.js';
import type { AdapterRegistry } from '../adapter-registry.js';
import type { WhenClause, Wpk } from '../wpk/types.js';
import type { StepDef } from './step-runner.js';

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
      });
      continue;
    }
    const found = registry.find(step.adapter, step.action);
    const comp = found.ok ? found.spec.compensate?.(done.input, done.outputs) : undefined;
    if (comp)
      plan.push({
        def: { name, adapter: comp.adapter ?? step.adapter, action: comp.action, with: comp.with, literal: true },
        forStep: step.name,
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
    });
  }
  return plan;
}

import type { StepContext } from '../contract.js';
import { lockKey } from './locks.js';
import type { Target } from './output-schemas.js';

/**
 * What the first attempt of a write recorded (the object as it was, the replica count, the restart
 * stamp), by execution and step. A retry whose earlier attempt's write may have landed (the answer
 * was lost, a 5xx after the change, a timeout) reuses it instead of recording the already-changed
 * object as "previous". In memory only: an agent restart starts over. Forgotten when the step
 * succeeds or fails for good; bounded in size.
 */
export class AttemptMemory {
  private readonly entries = new Map<string, { target: string; value: unknown }>();

  constructor(private readonly max = 1000) {}

  private static key(ctx: Pick<StepContext, 'executionId' | 'step'>): string {
    return `${ctx.executionId}\u0000${ctx.step}`;
  }

  /** What an earlier attempt of this step recorded for this target (never in a dry run, never on attempt 1). */
  recall<T>(ctx: Pick<StepContext, 'executionId' | 'step' | 'attempt' | 'dryRun'>, t: Target): T | undefined {
    if (ctx.dryRun || ctx.attempt <= 1) return undefined;
    const e = this.entries.get(AttemptMemory.key(ctx));
    return e && e.target === lockKey(t) ? (e.value as T) : undefined;
  }

  remember(ctx: Pick<StepContext, 'executionId' | 'step' | 'dryRun'>, t: Target, value: unknown): void {
    if (ctx.dryRun) return;
    const key = AttemptMemory.key(ctx);
    this.entries.delete(key);
    this.entries.set(key, { target: lockKey(t), value });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  forget(ctx: Pick<StepContext, 'executionId' | 'step'>): void {
    this.entries.delete(AttemptMemory.key(ctx));
  }

  get size(): number {
    return this.entries.size;
  }
}

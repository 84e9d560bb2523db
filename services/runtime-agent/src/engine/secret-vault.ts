/**
 * Secret parameter values are never stored: the store keeps `***`. The vault keeps the real values in
 * memory for recent executions, so that a queued execution, or a manual rollback, still has them. After a
 * restart they are gone, and what needs them says so.
 */
import type { Execution } from '../store/types.js';
import { MASK } from './redact.js';

/** Executions whose secret values are kept (the oldest are forgotten first). */
export const SECRETS_KEPT = 10_000;

export class SecretVault {
  private readonly kept = new Map<string, Record<string, unknown>>();

  remember(executionId: string, params: Record<string, unknown>, names: string[]): void {
    const values = Object.fromEntries(names.filter((n) => n in params).map((n) => [n, params[n]]));
    if (Object.keys(values).length === 0) return;
    this.kept.set(executionId, values);
    if (this.kept.size > SECRETS_KEPT) this.kept.delete(this.kept.keys().next().value!);
  }

  /** Secret parameters the execution was given whose values this process no longer has. */
  missing(e: Pick<Execution, 'id' | 'secretParams' | 'parameters'>): string[] {
    const kept = this.kept.get(e.id) ?? {};
    return e.secretParams.filter((n) => n in e.parameters && !(n in kept));
  }

  /** The stored parameters with the secret values this process still holds (absent ones stay absent). */
  parameters(e: Pick<Execution, 'id' | 'secretParams' | 'parameters'>): Record<string, unknown> {
    const params: Record<string, unknown> = { ...e.parameters, ...this.kept.get(e.id) };
    for (const n of e.secretParams) if (params[n] === MASK) delete params[n];
    return params;
  }
}

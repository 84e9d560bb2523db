/** Retry delays (docs/wpk-format.md, Retries): delayMs * backoff^(attempt-1), capped by maxDelayMs. */
import type { RetryPolicy } from '../wpk/types.js';

export const DEFAULT_RETRY = { delayMs: 1000, backoff: 2, maxDelayMs: 60_000 } as const;

/** Delay before attempt `attempt + 1`, after `attempt` attempts failed. */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const delay = policy.delayMs ?? DEFAULT_RETRY.delayMs;
  const backoff = policy.backoff ?? DEFAULT_RETRY.backoff;
  const cap = policy.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  return Math.min(cap, Math.round(delay * backoff ** (attempt - 1)));
}

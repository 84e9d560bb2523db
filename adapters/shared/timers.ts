/**
 * The longest delay a Node timer takes: anything longer fires at once (with a
 * TimeoutOverflowWarning), so a step with `timeoutSeconds: 1e10` would time
 * out immediately. Schemas cap timeouts and delays here instead.
 */
export const MAX_TIMER_MS = 2_147_483_647;
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

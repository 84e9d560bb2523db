/**
 * Exponential backoff with full jitter: before the n-th retry a random wait up to base · 2^(n-1), capped at
 * `maxMs` ("Exponential Backoff And Jitter", AWS architecture blog). Many agents that lost the same peer do
 * not all come back at the same moment.
 */
export function fullJitterMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt - 1), 30));
  return Math.floor(random() * ceiling);
}

/** One accepted status: an exact code (`404`) or a class (`'5xx'`). */
export type StatusPattern = number | string;

export const DEFAULT_EXPECT_STATUS: readonly StatusPattern[] = ['2xx'];

/**
 * True when `status` matches one of `patterns`. The input schema already
 * guarantees each string is `^[1-5]xx$`, so a class is just its first digit.
 */
export function statusMatches(status: number, patterns: readonly StatusPattern[]): boolean {
  const statusClass = Math.floor(status / 100);
  for (const p of patterns) {
    if (typeof p === 'number' ? p === status : p.charCodeAt(0) - 48 === statusClass) return true;
  }
  return false;
}

/** `2xx, 404` for messages. */
export function formatExpected(patterns: readonly StatusPattern[]): string {
  return patterns.join(', ');
}

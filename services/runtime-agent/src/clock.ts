let lastMs = Number.NaN;
let lastIso = '';

/**
 * The timestamps of records, events and log lines: ISO 8601 in UTC, to the millisecond. A step writes
 * several (its record, its events, its log lines) within the same millisecond, so the text of the last
 * millisecond is kept: formatting a date costs more than comparing two numbers (`npm run bench -- engine`).
 */
export function nowIso(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** The timestamps of records, events and log lines: ISO 8601 in UTC, to the millisecond. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** Timestamps of records and log lines. Several per step fall in the same millisecond, so the text is made once per millisecond. */
let lastMs = -1;
let lastIso = '';

/** `new Date().toISOString()`, reused within the same millisecond. */
export function nowIso(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

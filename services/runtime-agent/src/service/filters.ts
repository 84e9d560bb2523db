/** What list filters mean: statuses, time bounds and cursors, checked once for every surface. */
import type { Problem } from '../../../../adapters/errors.js';
import { EVENT_TYPES, EXECUTION_STATUSES, type EventType, type ExecutionStatus } from '../store/types.js';

/** The most executions one list page may ask for. */
export const MAX_LIST_LIMIT = 500;

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(\d{1,9})([smhdw])$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** The text of a time bound (parseTime): for request schemas, which check the form before anything runs. */
export const TIME_PATTERN = `^(?:${DURATION.source.slice(1, -1)}|${RFC3339.source.slice(1, -1)})$`;

/** A value of a list filter: one of `allowed`, or several joined by commas. */
export function listPattern(allowed: readonly string[]): string {
  const one = `(?:${allowed.map((a) => a.replace(/\./g, '\\.')).join('|')})`;
  return `^${one}(?:,${one})*$`;
}

/**
 * A point in time as an ISO string: RFC 3339 (`2026-12-06T15:00:00Z`), or a duration before `now` (`90s`,
 * `15m`, `1h`, `2d`, `1w`). Undefined, with a problem, when it is neither.
 */
export function parseTime(raw: string, at: string, problems: Problem[], now = Date.now()): string | undefined {
  const d = DURATION.exec(raw);
  if (d) return new Date(now - Number(d[1]) * UNIT_MS[d[2]]).toISOString();
  if (RFC3339.test(raw)) {
    const ms = Date.parse(raw);
    if (!Number.isNaN(ms)) return new Date(ms).toISOString();
  }
  problems.push({
    path: at,
    message: 'must be an RFC 3339 time (2026-12-06T15:00:00Z) or a duration (30s, 15m, 1h, 2d, 1w)',
  });
  return undefined;
}

/** Values given once or more, each possibly a comma list (`status=failed&status=cancelled`, `status=failed,cancelled`). */
export function listValues(raw: string | string[] | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  return (Array.isArray(raw) ? raw : [raw])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

export function parseStatuses(raw: string | string[] | undefined, problems: Problem[]): ExecutionStatus[] | undefined {
  return oneOf(raw, EXECUTION_STATUSES, 'query.status', problems);
}

export function parseEventTypes(raw: string | string[] | undefined, problems: Problem[]): EventType[] | undefined {
  return oneOf(raw, EVENT_TYPES, 'query.types', problems);
}

function oneOf<T extends string>(
  raw: string | string[] | undefined,
  allowed: readonly T[],
  at: string,
  problems: Problem[],
): T[] | undefined {
  const values = listValues(raw);
  if (values === undefined) return undefined;
  const bad = values.filter((v) => !allowed.includes(v as T));
  if (bad.length || values.length === 0) {
    problems.push({
      path: at,
      message: `must be one or more of: ${allowed.join(', ')} (got ${bad.join(', ') || 'nothing'})`,
    });
    return undefined;
  }
  return values as T[];
}

/** A list cursor: the seq of the last execution of the previous page, opaque to clients. */
export function encodeCursor(seq: number): string {
  return Buffer.from(String(seq)).toString('base64url');
}

export function decodeCursor(cursor: string, problems: Problem[]): number | undefined {
  const seq = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (Number.isInteger(seq) && seq >= 1) return seq;
  problems.push({ path: 'query.cursor', message: 'is not a cursor this agent gave out' });
  return undefined;
}

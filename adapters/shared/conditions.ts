/**
 * One condition evaluator and one operator set for WPK `when` and FlowRunner
 * `conditionData` (docs/wpk-format.md#conditions). Never throws: a bad regex is false and
 * reported through `onWarning`.
 */
export const OPERATORS = [
  'equals',
  'not_equals',
  'greater_than',
  'less_than',
  'greater_equals',
  'less_equals',
  'contains',
  'starts_with',
  'ends_with',
  'matches_regex',
  'exists',
  'not_exists',
  'is_number',
  'is_text',
  'is_boolean',
  'is_array',
  'is_true',
  'is_false',
] as const;

export type Operator = (typeof OPERATORS)[number];

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function toText(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function looseEquals(a: unknown, b: unknown): boolean {
  const na = toNumber(a);
  const nb = toNumber(b);
  if (na !== undefined && nb !== undefined) return na === nb;
  if (typeof a === 'boolean' || typeof b === 'boolean') return toText(a).toLowerCase() === toText(b).toLowerCase();
  return toText(a) === toText(b);
}

function compare(a: unknown, b: unknown, test: (x: number, y: number) => boolean): boolean {
  const na = toNumber(a);
  const nb = toNumber(b);
  return na !== undefined && nb !== undefined && test(na, nb);
}

const regexes = new Map<string, RegExp>();

/** A compiled pattern, reused (a flow evaluates the same condition many times a second). */
function regex(source: string): RegExp {
  let r = regexes.get(source);
  if (!r) {
    r = new RegExp(source);
    if (regexes.size >= 256) regexes.clear();
    regexes.set(source, r);
  }
  return r;
}

/**
 * Evaluates `actual <operator> expected`. `exists` is about presence:
 * `present` is false when the variable's path did not resolve.
 */
export function evaluateCondition(
  operator: Operator,
  actual: unknown,
  expected: unknown,
  present: boolean,
  onWarning: (message: string) => void = () => {},
): boolean {
  switch (operator) {
    case 'equals':
      return looseEquals(actual, expected);
    case 'not_equals':
      return !looseEquals(actual, expected);
    case 'greater_than':
      return compare(actual, expected, (x, y) => x > y);
    case 'less_than':
      return compare(actual, expected, (x, y) => x < y);
    case 'greater_equals':
      return compare(actual, expected, (x, y) => x >= y);
    case 'less_equals':
      return compare(actual, expected, (x, y) => x <= y);
    case 'contains':
      if (Array.isArray(actual)) return actual.some((item) => looseEquals(item, expected));
      return toText(actual).includes(toText(expected));
    case 'starts_with':
      return toText(actual).startsWith(toText(expected));
    case 'ends_with':
      return toText(actual).endsWith(toText(expected));
    case 'matches_regex':
      try {
        return regex(toText(expected)).test(toText(actual));
      } catch (err) {
        onWarning(
          `invalid regular expression ${JSON.stringify(toText(expected))}: ${(err as Error).message}; condition is false`,
        );
        return false;
      }
    case 'exists':
      return present && actual !== undefined && actual !== null;
    case 'not_exists':
      return !present || actual === undefined || actual === null;
    case 'is_number':
      return toNumber(actual) !== undefined;
    case 'is_text':
      return typeof actual === 'string';
    case 'is_boolean':
      return typeof actual === 'boolean' || (typeof actual === 'string' && /^(true|false)$/i.test(actual));
    case 'is_array':
      return Array.isArray(actual);
    case 'is_true':
      return actual === true || (typeof actual === 'string' && actual.toLowerCase() === 'true') || actual === 1;
    case 'is_false':
      return actual === false || (typeof actual === 'string' && actual.toLowerCase() === 'false') || actual === 0;
  }
}

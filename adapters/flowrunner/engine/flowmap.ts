/**
 * Flowmaps (docs/flowrunner.md#flowmaps): request, condition and loop steps. Unknown fields
 * (`visualLayout`, …) are ignored; `schemaVersion` absent, "1.0" or any 1.x
 * means the same execution model. Problems are listed FastAPI-style.
 */
import { OPERATORS, type Operator } from '../../shared/conditions.js';
import { HEADER_NAME, type FieldProblem } from './config.js';

export interface ConditionData {
  variable: string;
  operator: Operator;
  value?: unknown;
}

export interface RequestStep {
  type: 'request';
  id: string;
  name?: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  extract: Record<string, string>;
  onFailure: 'stop' | 'continue';
  retries?: { count: number; delayMs: number };
  assertions: ConditionData[];
}

export interface ConditionStep {
  type: 'condition';
  id: string;
  name?: string;
  conditionData?: ConditionData;
  /** Deprecated JS-like string: never evaluated (it would be code), so it counts as false with a warning. */
  condition?: string;
  then: Step[];
  else: Step[];
}

export interface LoopStep {
  type: 'loop';
  id: string;
  name?: string;
  source: string;
  loopVariable: string;
  steps: Step[];
}

export type Step = RequestStep | ConditionStep | LoopStep;

export interface Flowmap {
  id?: string;
  name?: string;
  description?: string;
  headers: Record<string, string>;
  staticVars: Record<string, unknown>;
  steps: Step[];
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
const MAX_DEPTH = 16;
/** Steps in one flowmap, nested ones included: each request step has its own stats and metric series. */
export const MAX_STEPS = 500;
/** Nesting of a body or staticVars: deeper values would overflow the stack when copied or rendered. */
export const MAX_VALUE_DEPTH = 32;
const HEADER_VALUE_FORBIDDEN = /[\r\n\0]/;

/** Whether `v` nests deeper than `max` (iterative: a hostile value cannot overflow the stack here). */
function tooDeep(v: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d >= max) return true;
    for (const y of Array.isArray(x) ? x : Object.values(x)) stack.push([y, d + 1]);
  }
  return false;
}

type Loc = Array<string | number>;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function headerMap(v: unknown, loc: Loc, problems: FieldProblem[]): Record<string, string> {
  const out = stringMap(v, loc, problems);
  for (const [k, x] of Object.entries(out)) {
    if (!HEADER_NAME.test(k))
      problems.push({ loc: [...loc, k], msg: 'Value error, not a valid HTTP header name', type: 'value_error' });
    else if (HEADER_VALUE_FORBIDDEN.test(x))
      problems.push({
        loc: [...loc, k],
        msg: 'Value error, a header value may not contain CR, LF or NUL',
        type: 'value_error',
      });
  }
  return out;
}

function stringMap(v: unknown, loc: Loc, problems: FieldProblem[]): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) {
    problems.push({ loc, msg: 'Input should be a valid dictionary', type: 'dict_type' });
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'string') out[k] = x;
    else if (typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
    else problems.push({ loc: [...loc, k], msg: 'Input should be a valid string', type: 'string_type' });
  }
  return out;
}

function conditionData(v: unknown, loc: Loc, problems: FieldProblem[]): ConditionData | undefined {
  if (!isObject(v)) {
    problems.push({ loc, msg: 'Input should be a valid dictionary', type: 'dict_type' });
    return undefined;
  }
  const n = problems.length;
  if (typeof v.variable !== 'string' || v.variable === '')
    problems.push({ loc: [...loc, 'variable'], msg: 'Field required', type: 'missing' });
  if (typeof v.operator !== 'string' || !(OPERATORS as readonly string[]).includes(v.operator)) {
    problems.push({
      loc: [...loc, 'operator'],
      msg: `Input should be ${OPERATORS.map((o) => `'${o}'`).join(', ')}`,
      type: 'enum',
    });
  }
  if (v.operator === 'matches_regex' && typeof v.value === 'string' && !v.value.includes('{{')) {
    try {
      new RegExp(v.value);
    } catch (err) {
      problems.push({
        loc: [...loc, 'value'],
        msg: `Value error, invalid regular expression: ${(err as Error).message}`,
        type: 'value_error',
      });
    }
  }
  return problems.length === n
    ? { variable: v.variable as string, operator: v.operator as Operator, value: v.value }
    : undefined;
}

function steps(v: unknown, loc: Loc, problems: FieldProblem[], ids: Set<string>, depth: number): Step[] {
  if (!Array.isArray(v)) {
    problems.push({
      loc,
      msg: v === undefined ? 'Field required' : 'Input should be a valid list',
      type: v === undefined ? 'missing' : 'list_type',
    });
    return [];
  }
  if (depth > MAX_DEPTH) {
    problems.push({ loc, msg: `steps may nest at most ${MAX_DEPTH} levels deep`, type: 'value_error' });
    return [];
  }
  const out: Step[] = [];
  v.forEach((raw, i) => {
    const s = step(raw, [...loc, i], problems, ids, depth);
    if (s) out.push(s);
  });
  return out;
}

function step(raw: unknown, loc: Loc, problems: FieldProblem[], ids: Set<string>, depth: number): Step | undefined {
  if (!isObject(raw)) {
    problems.push({ loc, msg: 'Input should be a valid dictionary', type: 'dict_type' });
    return undefined;
  }
  const n = problems.length;
  const id = raw.id;
  if (typeof id !== 'string' || id === '')
    problems.push({ loc: [...loc, 'id'], msg: 'Field required', type: 'missing' });
  // Step ids become metric labels and context keys: short and printable.
  else if (id.length > 128 || [...id].some((c) => c.charCodeAt(0) < 0x20))
    problems.push({ loc: [...loc, 'id'], msg: 'Value error, at most 128 printable characters', type: 'value_error' });
  else if (ids.has(id))
    problems.push({ loc: [...loc, 'id'], msg: `Value error, duplicate step id '${id}'`, type: 'value_error' });
  else ids.add(id);
  const name = typeof raw.name === 'string' ? raw.name : undefined;
  switch (raw.type) {
    case undefined:
      problems.push({ loc: [...loc, 'type'], msg: 'Field required', type: 'missing' });
      return undefined;
    case 'request': {
      const method = typeof raw.method === 'string' ? raw.method.toUpperCase() : raw.method === undefined ? 'GET' : '';
      if (!METHODS.has(method))
        problems.push({
          loc: [...loc, 'method'],
          msg: `Input should be ${[...METHODS].map((m) => `'${m}'`).join(', ')}`,
          type: 'enum',
        });
      if (typeof raw.url !== 'string')
        problems.push({
          loc: [...loc, 'url'],
          msg: raw.url === undefined ? 'Field required' : 'Input should be a valid string',
          type: raw.url === undefined ? 'missing' : 'string_type',
        });
      const onFailure = raw.onFailure ?? 'stop';
      if (onFailure !== 'stop' && onFailure !== 'continue')
        problems.push({ loc: [...loc, 'onFailure'], msg: "Input should be 'stop' or 'continue'", type: 'enum' });
      let retries: RequestStep['retries'];
      if (raw.retries !== undefined) {
        const r = raw.retries as Record<string, unknown>;
        if (
          !isObject(r) ||
          !Number.isInteger(r.count) ||
          (r.count as number) < 0 ||
          (r.count as number) > 10 ||
          (r.delayMs !== undefined && (!Number.isInteger(r.delayMs) || (r.delayMs as number) < 0))
        ) {
          problems.push({
            loc: [...loc, 'retries'],
            msg: 'Input should be { count: 0..10, delayMs: integer >= 0 }',
            type: 'value_error',
          });
        } else retries = { count: r.count as number, delayMs: (r.delayMs as number | undefined) ?? 500 };
      }
      const assertions: ConditionData[] = [];
      if (raw.assertions !== undefined) {
        if (!Array.isArray(raw.assertions))
          problems.push({ loc: [...loc, 'assertions'], msg: 'Input should be a valid list', type: 'list_type' });
        else
          raw.assertions.forEach((a, i) => {
            const c = conditionData(a, [...loc, 'assertions', i], problems);
            if (c) assertions.push(c);
          });
      }
      const extract = stringMap(raw.extract, [...loc, 'extract'], problems);
      const headers = headerMap(raw.headers, [...loc, 'headers'], problems);
      if (raw.body !== undefined && tooDeep(raw.body, MAX_VALUE_DEPTH))
        problems.push({
          loc: [...loc, 'body'],
          msg: `Value error, nested more than ${MAX_VALUE_DEPTH} levels deep`,
          type: 'value_error',
        });
      if (problems.length !== n) return undefined;
      return {
        type: 'request',
        id: id as string,
        name,
        method,
        url: raw.url as string,
        headers,
        body: raw.body,
        extract,
        onFailure: onFailure as 'stop' | 'continue',
        retries,
        assertions,
      };
    }
    case 'condition': {
      let cd: ConditionData | undefined;
      if (raw.conditionData !== undefined && raw.conditionData !== null)
        cd = conditionData(raw.conditionData, [...loc, 'conditionData'], problems);
      else if (typeof raw.condition !== 'string')
        problems.push({ loc: [...loc, 'conditionData'], msg: 'Field required', type: 'missing' });
      const then = steps(raw.then ?? [], [...loc, 'then'], problems, ids, depth + 1);
      const els = steps(raw.else ?? [], [...loc, 'else'], problems, ids, depth + 1);
      if (problems.length !== n) return undefined;
      return {
        type: 'condition',
        id: id as string,
        name,
        conditionData: cd,
        condition: typeof raw.condition === 'string' ? raw.condition : undefined,
        then,
        else: els,
      };
    }
    case 'loop': {
      if (typeof raw.source !== 'string' || raw.source.trim() === '')
        problems.push({ loc: [...loc, 'source'], msg: 'Field required', type: 'missing' });
      const loopVariable = raw.loopVariable ?? 'item';
      if (typeof loopVariable !== 'string' || !/^[A-Za-z_][\w-]*$/.test(loopVariable))
        problems.push({
          loc: [...loc, 'loopVariable'],
          msg: 'Input should be a valid variable name',
          type: 'value_error',
        });
      const body = steps(raw.steps, [...loc, 'steps'], problems, ids, depth + 1);
      if (problems.length !== n) return undefined;
      return {
        type: 'loop',
        id: id as string,
        name,
        source: raw.source as string,
        loopVariable: loopVariable as string,
        steps: body,
      };
    }
    default:
      problems.push({ loc: [...loc, 'type'], msg: "Input should be 'request', 'condition' or 'loop'", type: 'enum' });
      return undefined;
  }
}

/** A flowmap from `raw`, or every problem with its location. */
export function parseFlowmap(
  raw: unknown,
  loc: Loc = ['body', 'flowmap'],
): { ok: true; flowmap: Flowmap } | { ok: false; problems: FieldProblem[] } {
  if (raw === undefined || raw === null)
    return { ok: false, problems: [{ loc, msg: 'Field required', type: 'missing' }] };
  if (!isObject(raw))
    return { ok: false, problems: [{ loc, msg: 'Input should be a valid dictionary', type: 'dict_type' }] };
  const problems: FieldProblem[] = [];
  const version = raw.schemaVersion;
  const oneX =
    (typeof version === 'string' && /^1(\.\d+)*$/.test(version)) ||
    (typeof version === 'number' && version >= 1 && version < 2);
  if (version !== undefined && !oneX) {
    problems.push({
      loc: [...loc, 'schemaVersion'],
      msg: `unsupported schemaVersion ${JSON.stringify(version)}; this engine runs 1.x`,
      type: 'value_error',
    });
  }
  const headers = headerMap(raw.headers, [...loc, 'headers'], problems);
  let staticVars: Record<string, unknown> = {};
  if (raw.staticVars !== undefined && raw.staticVars !== null) {
    if (!isObject(raw.staticVars))
      problems.push({ loc: [...loc, 'staticVars'], msg: 'Input should be a valid dictionary', type: 'dict_type' });
    else if (tooDeep(raw.staticVars, MAX_VALUE_DEPTH))
      problems.push({
        loc: [...loc, 'staticVars'],
        msg: `Value error, nested more than ${MAX_VALUE_DEPTH} levels deep`,
        type: 'value_error',
      });
    else staticVars = raw.staticVars;
  }
  const ids = new Set<string>();
  const parsed = steps(raw.steps, [...loc, 'steps'], problems, ids, 0);
  if (ids.size > MAX_STEPS)
    problems.push({
      loc: [...loc, 'steps'],
      msg: `Value error, at most ${MAX_STEPS} steps (nested ones included), got ${ids.size}`,
      type: 'value_error',
    });
  if (Array.isArray(raw.steps) && raw.steps.length === 0)
    problems.push({
      loc: [...loc, 'steps'],
      msg: 'List should have at least 1 item after validation, not 0',
      type: 'too_short',
    });
  if (problems.length) return { ok: false, problems };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    ok: true,
    flowmap: {
      id: str(raw.id),
      name: str(raw.name),
      description: str(raw.description),
      headers,
      staticVars,
      steps: parsed,
    },
  };
}

/** Every request step, in every branch and loop body (for metrics labels and dry runs). */
export function requestSteps(list: Step[]): RequestStep[] {
  const out: RequestStep[] = [];
  for (const s of list) {
    if (s.type === 'request') out.push(s);
    else if (s.type === 'condition') out.push(...requestSteps(s.then), ...requestSteps(s.else));
    else out.push(...requestSteps(s.steps));
  }
  return out;
}

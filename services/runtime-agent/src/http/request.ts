/**
 * Request bodies and query strings, checked by compiled JSON Schemas (declared with TypeBox, so one
 * declaration gives the check and the type). Unknown fields and query parameters are refused, and every
 * problem is listed with its path (`$.field` in a body, `query.name` in a query string).
 */
import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import type { Context } from 'koa';
import { type Problem, ValidationError } from '../../../../adapters/errors.js';
import { listPattern, TIME_PATTERN } from '../service/filters.js';
import { makeAjv, toProblems, type ValidateFunction } from '../wpk/ajv.js';
import { readJson } from './body.js';

const ajv = makeAjv(false);

/** A query parameter given at most once. */
export const Once = <T extends TSchema>(schema: T) => Type.Optional(schema);
/**
 * A query parameter that may repeat (`status=a&status=b`), each value one of `allowed` or several of them
 * joined by commas; it always arrives as a list.
 */
export const Repeated = (allowed: readonly string[]) =>
  Type.Optional(
    Type.Array(
      Type.String({
        pattern: listPattern(allowed),
        description: `one or more of: ${allowed.join(', ')} (repeated, or joined by commas)`,
      }),
    ),
  );
/** A point in time: RFC 3339, or a duration back from now (`1h`). */
export const QueryTime = () =>
  Type.String({
    pattern: TIME_PATTERN,
    description: 'an RFC 3339 time (2026-12-06T15:00:00Z) or a duration (30s, 15m, 1h, 2d, 1w)',
  });
/** A non-negative integer in a query string (digits only: no sign, exponent or hex). */
export const QueryInt = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });
/** `true` or `false` in a query string. */
export const QueryBool = () => Type.Unsafe<'true' | 'false'>({ type: 'string', enum: ['true', 'false'] });

interface Compiled<T extends TObject> {
  schema: T;
  check: ValidateFunction;
  /** Properties whose values the query string carries as text and the schema reads as integers. */
  integers: Set<string>;
  arrays: Set<string>;
}

function compile<T extends TObject>(schema: T): Compiled<T> {
  const props = schema.properties as Record<string, TSchema>;
  return {
    schema,
    check: ajv.compile(schema),
    integers: new Set(Object.keys(props).filter((k) => props[k].type === 'integer')),
    arrays: new Set(Object.keys(props).filter((k) => props[k].type === 'array')),
  };
}

/** A checker of a request part, with the schema it checks against (for the OpenAPI document). */
export type Checker<T extends TObject, F> = F & { schema: T };

/** A checker of `ctx.query` against `schema` (an object schema whose properties are all optional). */
export function querySchema<T extends TObject>(schema: T): Checker<T, (ctx: Context) => Static<T>> {
  const c = compile(Type.Object(schema.properties, { additionalProperties: false }) as unknown as T);
  const check = (ctx: Context): Static<T> => {
    // No prototype: a parameter named __proto__ is just an unknown parameter.
    const query: Record<string, unknown> = Object.create(null);
    const repeated: Problem[] = [];
    for (const [k, v] of Object.entries(ctx.query)) {
      if (v === undefined) continue;
      if (c.arrays.has(k)) query[k] = Array.isArray(v) ? v : [v];
      else if (Array.isArray(v) && Object.hasOwn(c.schema.properties, k))
        repeated.push({ path: `query.${k}`, message: 'must be given once' });
      else if (c.integers.has(k) && typeof v === 'string' && /^\d{1,15}$/.test(v)) query[k] = Number(v);
      else query[k] = v;
    }
    const valid = c.check(query);
    if (!valid || repeated.length) {
      const problems = queryProblems(valid ? [] : toProblems(c.check.errors), c.schema).filter(
        (p) => !repeated.some((r) => r.path === p.path),
      );
      throw new ValidationError('invalid query', [...repeated, ...problems]);
    }
    return query as Static<T>;
  };
  return Object.assign(check, { schema: c.schema });
}

/** For routes that take no query parameters: any one given is refused as unknown. */
export const NoQuery = querySchema(Type.Object({}));

/**
 * `$.limit` → `query.limit` (a repeated parameter's index is dropped); an unknown parameter is named with
 * what is allowed, and a value that fails a pattern is told what the parameter takes.
 */
function queryProblems(problems: Problem[], schema: TObject): Problem[] {
  const seen = new Set<string>();
  return problems.flatMap((p) => {
    const name = p.path
      .replace(/^\$\.?/, '')
      .replace(/\[\d+\]$/, '')
      .replace(/^\["(.*)"\]$/, '$1');
    const prop = (schema.properties as Record<string, TSchema>)[name];
    const described = (prop?.items ?? prop)?.description as string | undefined;
    let message = p.message;
    if (message.startsWith('unknown field')) message = message.replace('unknown field', 'unknown query parameter');
    else if (message.startsWith('must match pattern') && described) message = `must be ${described}`;
    const key = `${name}\u0000${message}`;
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ path: `query.${name}`, message }];
  });
}

/** Reads the JSON body and checks it against `schema`; answers the value and the raw bytes. */
export function bodySchema<T extends TObject>(
  schema: T,
  options: { allowEmpty?: boolean } = {},
): Checker<T, (ctx: Context, limitBytes: number) => Promise<{ value: Static<T>; raw: Buffer }>> & {
  optional: boolean;
} {
  const c = compile(schema);
  const check = async (ctx: Context, limitBytes: number) => {
    const { value, raw } = await readJson(ctx, limitBytes, options.allowEmpty);
    if (!c.check(value)) throw new ValidationError('invalid request body', toProblems(c.check.errors));
    return { value: value as Static<T>, raw };
  };
  return Object.assign(check, { schema, optional: options.allowEmpty === true });
}

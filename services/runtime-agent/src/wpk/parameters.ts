/** Typed package parameters: checking definitions, applying defaults, rejecting unknown ones. */
import type { Problem } from '../../../../adapters/errors.js';
import { jsonPath } from '../../../../adapters/shared/paths.js';
import { PACKAGE_LIMITS, type WpkParam } from './types.js';

function typeOk(type: WpkParam['type'], v: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
  }
}

/** Why `value` does not satisfy `spec`, or undefined when it does. Never echoes secret values. */
export function checkValue(spec: WpkParam, value: unknown): string | undefined {
  if (!typeOk(spec.type, value)) return `must be ${spec.type === 'integer' ? 'an integer' : `of type ${spec.type}`}`;
  if (Array.isArray(spec.enum) && !spec.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    return `must be one of: ${spec.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  }
  if (spec.pattern !== undefined && typeof value === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(spec.pattern);
    } catch {
      return undefined; // reported on the definition
    }
    if (!re.test(value)) return `must match ${spec.pattern}`;
  }
  if (typeof value === 'number') {
    if (spec.minimum !== undefined && value < spec.minimum) return `must be >= ${spec.minimum}`;
    if (spec.maximum !== undefined && value > spec.maximum) return `must be <= ${spec.maximum}`;
  }
  return undefined;
}

/** Problems in the parameter definitions themselves (bad regex, default of the wrong type). */
export function checkDefinitions(params: Record<string, WpkParam>): Problem[] {
  const problems: Problem[] = [];
  for (const [name, spec] of Object.entries(params)) {
    // A definition that is not an object is reported by the schema; there is nothing to check inside it.
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) continue;
    const at = ['spec', 'parameters', name];
    if (spec.pattern !== undefined) {
      try {
        new RegExp(spec.pattern);
      } catch (err) {
        problems.push({
          path: jsonPath([...at, 'pattern']),
          message: `is not a valid regular expression: ${(err as Error).message}`,
        });
      }
    }
    if (spec.default !== undefined) {
      const why = checkValue(spec, spec.default);
      if (why) problems.push({ path: jsonPath([...at, 'default']), message: why });
    }
    for (const [i, e] of (Array.isArray(spec.enum) ? spec.enum : []).entries()) {
      if (!typeOk(spec.type, e))
        problems.push({ path: jsonPath([...at, 'enum', i]), message: `must be of type ${spec.type}` });
    }
  }
  return problems;
}

export interface ResolvedParameters {
  values: Record<string, unknown>;
  problems: Problem[];
}

/** Applies defaults, rejects unknown and missing parameters, checks every value. */
export function resolveParameters(defs: Record<string, WpkParam>, given: Record<string, unknown>): ResolvedParameters {
  const problems: Problem[] = [];
  const values: Record<string, unknown> = {};
  const declared = Object.keys(defs);
  const names = Object.keys(given);
  // No package declares more: one problem, rather than one per name (each listing the declared ones).
  if (names.length > PACKAGE_LIMITS.maxParameters) {
    problems.push({
      path: '$.parameters',
      message: `has ${names.length} entries; at most ${PACKAGE_LIMITS.maxParameters} parameters are allowed (a package declares at most ${PACKAGE_LIMITS.maxParameters})`,
    });
    return { values, problems };
  }
  for (const name of names) {
    if (!Object.hasOwn(defs, name)) {
      const hint = declared.length ? `declared: ${declared.join(', ')}` : 'the package declares no parameters';
      problems.push({ path: jsonPath(['parameters', name]), message: `unknown parameter; ${hint}` });
    }
  }
  for (const [name, spec] of Object.entries(defs)) {
    const value = Object.hasOwn(given, name) ? given[name] : spec.default; // own keys only: 'toString' is not given by every object
    if (value === undefined) {
      if (spec.required) problems.push({ path: jsonPath(['parameters', name]), message: 'is required' });
      continue;
    }
    const why = checkValue(spec, value);
    if (why) problems.push({ path: jsonPath(['parameters', name]), message: why });
    else values[name] = value;
  }
  return { values, problems };
}

/** Ajv set-up and one translation of Ajv errors into problems with JSON paths. */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { Problem } from '../../../../adapters/errors.js';
import type { JsonSchema } from '../../../../adapters/contract.js';
import { jsonPath, type PathSegment } from '../../../../adapters/shared/paths.js';
import { isTemplateBranch } from './schema.js';

export type { Ajv2020, ValidateFunction };

/** `useDefaults` fills action defaults into rendered inputs; static checks leave packages untouched. */
export function makeAjv(useDefaults: boolean): Ajv2020 {
  return new Ajv2020({ allErrors: true, verbose: true, strict: true, useDefaults, allowUnionTypes: true });
}

function pointerSegments(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describe(e: ErrorObject): { at: PathSegment[]; message: string } {
  const at = pointerSegments(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { at: [...at, String(p.missingProperty)], message: 'is required' };
    case 'additionalProperties': {
      const allowed = Object.keys(((e.parentSchema as JsonSchema)?.properties as object) ?? {});
      const hint = allowed.length ? `; allowed: ${allowed.join(', ')}` : '';
      return { at: [...at, String(p.additionalProperty)], message: `unknown field${hint}` };
    }
    case 'enum':
      return {
        at,
        message: `must be one of: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'const':
      return { at, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'type':
      return { at, message: `must be ${Array.isArray(p.type) ? p.type.join(' or ') : String(p.type)}` };
    case 'maxItems':
      return { at, message: `has too many items: at most ${String(p.limit)} allowed` };
    case 'maxProperties':
      return { at, message: `has too many entries: at most ${String(p.limit)} allowed` };
    case 'not': {
      const req = ((e.schema as JsonSchema)?.required as string[] | undefined) ?? [];
      return { at, message: req.length > 1 ? `${req.join(' and ')} cannot be used together` : 'is not allowed here' };
    }
    case 'propertyNames':
      return { at: [...at, String(p.propertyName)], message: 'is not an allowed name' };
    default:
      return { at, message: e.message ?? `fails ${e.keyword}` };
  }
}

/**
 * Ajv errors as problems under `base`. Noise from the template escape hatch
 * (`anyOf: [real, template]`) and from `if`/`anyOf` wrappers is dropped so
 * each problem reads like one sentence.
 */
export function toProblems(errors: ErrorObject[] | null | undefined, base: PathSegment[] = []): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    if (e.keyword === 'if') continue;
    if (isTemplateBranch(e.parentSchema)) continue;
    if (e.keyword === 'anyOf' && ((e.schema as JsonSchema[]) ?? []).some(isTemplateBranch)) continue;
    const { at, message } = describe(e);
    const path = jsonPath([...base, ...at]);
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

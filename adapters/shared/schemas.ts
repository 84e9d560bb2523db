/**
 * TypeBox builders for the JSON Schema forms that TypeBox's own builders would write another way:
 * where the other way validates differently or reports its errors less plainly.
 */
import { type SchemaOptions, type Static, type TSchema, type TUnsafe, Type } from '@sinclair/typebox';

export type JsonTypeName = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/**
 * A value of any of `types`, as one JSON Schema type list, which Ajv reports as one error ("must be
 * object or array"); a Union would be an anyOf with an error per branch. `T` is its static type.
 */
export function TypeList<T>(types: JsonTypeName[], options: SchemaOptions = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ ...options, type: types });
}

/** One of `values`, as a JSON Schema enum ("must be one of: …"); a Union of literals would be an anyOf. */
export function StringEnum<const V extends readonly string[]>(
  values: V,
  options: SchemaOptions = {},
): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ ...options, enum: [...values] });
}

/**
 * An object whose every value matches `value` (additionalProperties). TypeBox's Record matches keys
 * with the pattern ^(.*)$ instead, which leaves a key holding a line break unchecked.
 */
export function Dictionary<T extends TSchema>(
  value: T,
  options: SchemaOptions = {},
): TUnsafe<Record<string, Static<T>>> {
  return Type.Unsafe<Record<string, Static<T>>>({ ...options, type: 'object', additionalProperties: value });
}

/** `value` or null. */
export function Nullable<T extends TSchema>(value: T) {
  return Type.Union([value, Type.Null()]);
}

/** An optional boolean that is false unless given. */
export function Flag(description: string) {
  return Type.Optional(Type.Boolean({ description, default: false }));
}

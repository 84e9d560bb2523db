import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package that is required when first used instead of imported at start, for libraries only
 * some steps need: an agent that never runs such a step does not hold them (docs/operations.md#memory).
 * Synchronous, so constructors can use it; `T` is the package's type, `typeof import('name')`.
 */
export function lazyRequire<T>(name: string): () => T {
  let lib: T | undefined;
  return () => {
    lib ??= require(name) as T;
    return lib;
  };
}

/** Limits on a command's payload before its schema is checked. */
import type { Problem } from '../../../../adapters/errors.js';

/**
 * The path of the first value nested deeper than `maxDepth` (MAX_JSON_DEPTH, as for HTTP bodies), or
 * undefined. Iterative: a hostile payload cannot exhaust the stack here.
 */
export function tooDeep(value: unknown, maxDepth: number): string | undefined {
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: value, depth: 0, path: '$' }];
  while (stack.length) {
    const { v, depth, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > maxDepth) return path;
    if (Array.isArray(v)) v.forEach((item, i) => stack.push({ v: item, depth: depth + 1, path: `${path}[${i}]` }));
    else for (const [k, item] of Object.entries(v)) stack.push({ v: item, depth: depth + 1, path: `${path}.${k}` });
  }
  return undefined;
}

/** The problem for a payload nested too deeply. */
export function depthProblem(path: string, maxDepth: number): Problem {
  return { path, message: `is nested deeper than ${maxDepth} levels (MAX_JSON_DEPTH)` };
}

/**
 * Reference checks of templates (docs/wpk-format.md, Templates): every `${{ }}` and `when.variable`
 * names a declared parameter, a step that runs earlier, or a known field.
 */
import type { Problem } from '../../../../adapters/errors.js';
import { jsonPath, parsePath, type PathSegment } from '../../../../adapters/shared/paths.js';
import { scanTemplates, walkStrings } from '../engine/templates.js';

export interface RefContext {
  params: ReadonlySet<string>;
  /** Every step name in the package. */
  allSteps: ReadonlySet<string>;
  /** Steps whose outputs exist when this one runs. */
  earlier: ReadonlySet<string>;
  /** Rollback steps may read `error.*`. */
  inRollback: boolean;
}

const FIELDS: Record<string, string[]> = {
  execution: ['id', 'dry_run'],
  workflow: ['name', 'version'],
  error: ['type', 'message', 'step'],
};

/** Why a path is not a valid reference here, or undefined when it is. */
export function checkReference(path: PathSegment[], ctx: RefContext): string | undefined {
  const [root, second, third] = path;
  switch (root) {
    case 'params':
      if (typeof second !== 'string') return 'expected params.<name>';
      return ctx.params.has(second) ? undefined : `unknown parameter '${second}'`;
    case 'steps':
      if (typeof second !== 'string') return 'expected steps.<name>.outputs… or steps.<name>.status';
      if (!ctx.allSteps.has(second)) return `unknown step '${second}'`;
      if (!ctx.earlier.has(second)) return `step '${second}' does not run before this point`;
      if (third === 'status' && path.length === 3) return undefined;
      if (third === 'outputs') return undefined;
      return `expected steps.${second}.outputs… or steps.${second}.status`;
    case 'execution':
    case 'workflow':
    case 'error':
      if (root === 'error' && !ctx.inRollback) return 'error.* is only available in rollback steps';
      return path.length === 2 && FIELDS[root].includes(String(second))
        ? undefined
        : `expected one of: ${FIELDS[root].map((f) => `${root}.${f}`).join(', ')}`;
    default:
      return `unknown root '${String(root)}'; expected params, steps, execution, workflow${ctx.inRollback ? ' or error' : ''}`;
  }
}

/** Checks every template inside `value` (found at `at`). */
export function checkTemplates(value: unknown, at: PathSegment[], ctx: RefContext, problems: Problem[]): void {
  walkStrings(value, at, (s, where) => {
    if (!s.includes('${{')) return;
    const scan = scanTemplates(s);
    for (const part of scan.parts) {
      if (!part.path) {
        problems.push({
          path: jsonPath(where),
          message: `malformed expression \${{ ${part.expr} }}: expected a path like params.name`,
        });
        continue;
      }
      const why = checkReference(part.path, ctx);
      if (why) problems.push({ path: jsonPath(where), message: `\${{ ${part.expr} }}: ${why}` });
    }
    if (scan.unterminated)
      problems.push({ path: jsonPath(where), message: "unterminated '${{': expected a closing '}}'" });
  });
}

/** Checks a `when` clause's variable path and value templates. */
export function checkWhen(
  when: { variable: string; value?: unknown },
  at: PathSegment[],
  ctx: RefContext,
  problems: Problem[],
): void {
  const path = typeof when.variable === 'string' ? parsePath(when.variable) : undefined; // not a string: the schema says so
  const why = path ? checkReference(path, ctx) : 'is not a path like params.name or steps.step.outputs.key';
  if (why) problems.push({ path: jsonPath([...at, 'variable']), message: why });
  checkTemplates(when.value, [...at, 'value'], ctx, problems);
}

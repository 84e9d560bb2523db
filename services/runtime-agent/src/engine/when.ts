/** A step's `when`: evaluated against the execution's scope, with the reason when it does not hold. */
import { evaluateCondition } from '../../../../adapters/shared/conditions.js';
import { lookup, parsePath } from '../../../../adapters/shared/paths.js';
import type { WhenClause } from '../wpk/types.js';
import type { Live } from './live.js';
import { renderValue, type Scope } from './templates.js';

/** Undefined when the step runs; otherwise why it is skipped (also written to the log). */
export function skipReason(live: Live, scope: Scope, stepName: string, when: WhenClause): string | undefined {
  const path = parsePath(when.variable);
  // A dry run has only example outputs: a condition on them says nothing, so the plan shows the step.
  if (live.dryRun && path?.[0] === 'steps' && path[2] === 'outputs') {
    live.log.write(
      'info',
      `dry run: when ${when.variable} ${when.operator} … depends on outputs only a real run has; showing the step as if it holds`,
      stepName,
    );
    return undefined;
  }
  const found = path ? lookup(scope, path) : { found: false as const, at: when.variable };
  let expected: unknown;
  try {
    expected = renderValue(when.value, scope);
  } catch {
    expected = undefined;
  }
  const holds = evaluateCondition(when.operator, found.found ? found.value : undefined, expected, found.found, (m) =>
    live.log.write('warn', m, stepName),
  );
  if (holds) return undefined;
  const actual = found.found ? JSON.stringify(found.value) : 'absent';
  const reason = `when ${when.variable} (${actual}) ${when.operator}${when.value === undefined ? '' : ` ${JSON.stringify(expected)}`} is false`;
  live.log.write('info', `skipped: ${reason}`, stepName);
  return reason;
}

/** Holds what an action really returned to the output schema it declares. */
import assert from 'node:assert/strict';
import {
  type ActionSpec,
  type Outputs,
  type StepContext,
  USE_EXAMPLE_OUTPUT,
  type UseExampleOutput,
} from '../../../adapters/contract.js';
import { makeAjv, type ValidateFunction } from '../../../services/runtime-agent/src/wpk/ajv.js';

const ajv = makeAjv(false);
const validators = new WeakMap<object, ValidateFunction>();

/** What is wrong with `out` as an output of `spec` (its output schema says), or undefined. */
export function outputProblems(spec: ActionSpec, out: unknown): string | undefined {
  let validate = validators.get(spec.output);
  if (!validate) {
    validate = ajv.compile(spec.output);
    validators.set(spec.output, validate);
  }
  return validate(out) ? undefined : ajv.errorsText(validate.errors);
}

/** `out` as a real output of `spec`: outputs (not the example's stand-in) that match its output schema. */
export function realOutput<I, O extends Outputs>(spec: ActionSpec<I, O>, out: O | UseExampleOutput): O {
  assert.notEqual(out, USE_EXAMPLE_OUTPUT, `${spec.id} answered USE_EXAMPLE_OUTPUT, not outputs`);
  const problems = outputProblems(spec, out);
  assert.equal(problems, undefined, `the outputs of ${spec.id} do not match its output schema: ${problems}`);
  return out as O;
}

/** Runs `spec` (not in a dry run) and returns its outputs, checked by `realOutput`. */
export async function runChecked<I, O extends Outputs>(spec: ActionSpec<I, O>, ctx: StepContext, input: I): Promise<O> {
  return realOutput(spec, await spec.run(ctx, input));
}

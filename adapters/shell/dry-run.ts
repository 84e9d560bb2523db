import { type StepContext, USE_EXAMPLE_OUTPUT, type UseExampleOutput } from '../contract.js';
import { planLaunch } from './launch.js';
import type { RunOutput } from './output.js';
import type { RunInput } from './run-input.js';
import type { ShellSettings } from './settings.js';

/** `run` in a dry run: refuses what the real run would refuse and logs what it would start, which it does not. */
export function dryRun(settings: ShellSettings, ctx: StepContext, input: RunInput): RunOutput | UseExampleOutput {
  const launch = planLaunch(settings, input);
  const parts = [`dry run: would run ${JSON.stringify([launch.file, ...launch.args])}`];
  if (launch.cwd !== undefined) parts.push(`in ${JSON.stringify(launch.cwd)}`);
  if (input.env !== undefined) parts.push(`with env keys ${JSON.stringify(Object.keys(input.env))}`);
  if (input.stdin !== undefined) parts.push(`with ${Buffer.byteLength(input.stdin)} bytes of stdin`);
  if (input.timeoutSeconds !== undefined) parts.push(`timeout ${input.timeoutSeconds}s`);
  ctx.log.info(parts.join(', '));
  // The example output, shaped like what `parse` would give, so later steps can read it.
  if (input.parse === 'json') return { exitCode: 0, stdout: '', stderr: '', json: null };
  if (input.parse === 'lines') return { exitCode: 0, stdout: '', stderr: '', lines: [] };
  return USE_EXAMPLE_OUTPUT;
}

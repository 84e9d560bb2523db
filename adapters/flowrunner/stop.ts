import { Type } from '@sinclair/typebox';
import { performance } from 'node:perf_hooks';
import { defineAction, USE_EXAMPLE_OUTPUT } from '../contract.js';
import { EXAMPLE_OUTPUTS, outputsOf, RunOutputs } from './outputs.js';
import type { BackgroundRuns } from './runs.js';

const StopInput = Type.Object(
  { run_id: Type.String({ description: 'The run_id `start` returned.', minLength: 1 }) },
  { additionalProperties: false },
);

/** Whether the run was found, and then its final numbers. */
const StopOutput = Type.Composite(
  [Type.Object({ found: Type.Boolean(), run_id: Type.String() }), Type.Partial(RunOutputs)],
  { additionalProperties: false },
);

export function createStopAction(runs: BackgroundRuns) {
  return defineAction({
    id: 'stop',
    description:
      'Stops a background run started by `start` (in-flight requests are aborted; its traffic control is removed and post_stop run) and outputs its final numbers; an unknown or ended run is not an error (found: false, or its final numbers).',
    mutates: true,
    supportsDryRun: true,
    input: StopInput,
    output: StopOutput,
    exampleOutput: { found: true, run_id: '00000000-0000-4000-8000-000000000000', ...EXAMPLE_OUTPUTS },
    async run(ctx, input) {
      if (ctx.dryRun) {
        ctx.log.info(`dry run: would stop background flow run ${input.run_id}`);
        return USE_EXAMPLE_OUTPUT;
      }
      const run = runs.get(input.run_id);
      if (!run) {
        ctx.log.warn(
          `no background flow run ${input.run_id} in this agent (it ended with an agent restart, or never existed); nothing to stop`,
        );
        return { found: false, run_id: input.run_id };
      }
      // The traffic control is removed and post_stop has run once this resolves.
      await run.flow.stop();
      runs.remove(run.id);
      runs.prune();
      const out = outputsOf(run.flow.runner.snapshot(), ((run.endedAt ?? performance.now()) - run.startedAt) / 1000);
      ctx.log.info(
        `stopped background flow run ${run.id} (${run.name}): ${out.requests} requests, ${out.errors} errors, p95 ${out.p95_ms} ms`,
      );
      return { found: true, run_id: run.id, ...out };
    },
  });
}

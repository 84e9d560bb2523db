import { Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import type { EgressPolicy } from '../shared/egress.js';
import { checkFlowDestinations } from './egress-check.js';
import { createRunner } from './engine/index.js';
import { dryRunPlan, FlowInputProperties, flowmapSecrets, prepare } from './inputs.js';
import type { BackgroundRuns } from './runs.js';
import type { FlowLog } from './control.js';

const StartInput = Type.Object(
  {
    ...FlowInputProperties,
    name: Type.Optional(
      Type.String({ description: 'A name for logs and the run listing.', minLength: 1, maxLength: 100 }),
    ),
    durationSeconds: Type.Optional(
      Type.Integer({
        description: 'End by itself after this long (default: runs until stopped).',
        minimum: 1,
        maximum: 604_800,
      }),
    ),
  },
  { additionalProperties: false },
);

const StartOutput = Type.Object(
  {
    run_id: Type.String({ description: 'what `stop` takes' }),
    name: Type.String(),
  },
  { additionalProperties: false },
);

export function createStartAction(
  flowmapsRoot: string,
  runs: BackgroundRuns,
  egress: EgressPolicy,
  agentLog?: FlowLog,
  threads = 1,
) {
  return defineAction({
    id: 'start',
    description:
      'Starts a flowmap in the background (optionally bounded by durationSeconds) and outputs its run_id; the default compensation stops it.',
    mutates: true,
    supportsDryRun: true,
    secretsIn: (input) => flowmapSecrets(input.flowmap),
    input: StartInput,
    output: StartOutput,
    exampleOutput: { run_id: '00000000-0000-4000-8000-000000000000', name: 'background-traffic' },
    compensate: (_input, out) => ({ action: 'stop', with: { run_id: out.run_id } }),
    async run(ctx, input) {
      if (ctx.dryRun) return dryRunPlan(ctx, input, flowmapsRoot, egress);
      const { config, flowmap } = prepare(input, flowmapsRoot);
      await checkFlowDestinations(config, flowmap, egress);
      const name = input.name ?? flowmap.name ?? flowmap.id ?? 'flow';
      // The run outlives the step: its log lines go to the agent's own log, tagged with the run id.
      let runId = '';
      const log: FlowLog | undefined =
        agentLog && ((level, message) => agentLog(level, `[flow run ${runId}] ${message}`));
      const runner = createRunner(config, flowmap, {
        log,
        egress,
        threads,
        limit: input.durationSeconds !== undefined ? { durationMs: input.durationSeconds * 1000 } : undefined,
      });
      const run = runs.add(name, runner);
      runId = run.id;
      runner.start();
      ctx.log.info(
        `started background flow run ${run.id} (${name}): ${config.sim_users} user(s) against ${config.flow_target_url}${input.durationSeconds ? ` for ${input.durationSeconds}s` : ' until stopped'}`,
      );
      return { run_id: run.id, name };
    },
  });
}

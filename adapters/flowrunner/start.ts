import { Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import { checkFlowDestinations } from './egress-check.js';
import { createRunner } from './engine/index.js';
import { dryRunPlan, FlowInputProperties, flowmapSecrets, prepare } from './inputs.js';
import type { FlowLog } from './control.js';
import { type StepFlowSettings, startStepFlow } from './step-flow.js';

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

export function createStartAction(settings: StepFlowSettings) {
  const { flowmapsRoot, runs, egress, threads, container, log: agentLog } = settings;
  return defineAction({
    id: 'start',
    description:
      'Starts a flowmap in the background (optionally bounded by durationSeconds) and outputs its run_id; the default compensation stops it. With the container-control file, pre_start and the traffic control of config run before it, and the end of the run removes them and runs post_stop.',
    mutates: true,
    supportsDryRun: true,
    secretsIn: (input) => flowmapSecrets(input.flowmap),
    input: StartInput,
    output: StartOutput,
    exampleOutput: { run_id: '00000000-0000-4000-8000-000000000000', name: 'background-traffic' },
    compensate: (_input, out) => ({ action: 'stop', with: { run_id: out.run_id } }),
    async run(ctx, input) {
      if (ctx.dryRun) return dryRunPlan(ctx, input, flowmapsRoot, egress, container);
      const { config, flowmap, shaping } = prepare(input, flowmapsRoot, container);
      await checkFlowDestinations(config, flowmap, egress);
      const name = input.name ?? flowmap.name ?? flowmap.id ?? 'flow';
      runs.checkRoom();
      if (ctx.signal.aborted) throw ctx.signal.reason;
      // The run outlives the step: its log lines go to the agent's own log, tagged with the run id.
      let runId = '';
      const log: FlowLog | undefined =
        agentLog && ((level, message) => agentLog(level, `[flow run ${runId}] ${message}`));
      const create = () =>
        createRunner(config, flowmap, {
          log,
          egress,
          threads,
          limit: input.durationSeconds !== undefined ? { durationMs: input.durationSeconds * 1000 } : undefined,
        });
      const flow = await startStepFlow(
        create,
        settings,
        shaping,
        `the background run of step '${ctx.step}' in execution ${ctx.executionId} (stop it with the flowrunner stop action)`,
      );
      let run: ReturnType<typeof runs.add>;
      try {
        run = runs.add(name, flow);
      } catch (err) {
        await flow.stop();
        throw err;
      }
      runId = run.id;
      if (ctx.signal.aborted) {
        // Cancelled while pre_start ran: nothing of the run is left.
        await flow.stop();
        runs.remove(run.id);
        throw ctx.signal.reason;
      }
      ctx.log.info(
        `started background flow run ${run.id} (${name}): ${config.sim_users} user(s) against ${config.flow_target_url}${input.durationSeconds ? ` for ${input.durationSeconds}s` : ' until stopped'}`,
      );
      return { run_id: run.id, name };
    },
  });
}

import { performance } from 'node:perf_hooks';
import { type Static, Type } from '@sinclair/typebox';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { checkFlowDestinations } from './egress-check.js';
import { createRunner } from './engine/index.js';
import { dryRunPlan, FlowInputProperties, flowmapSecrets, prepare } from './inputs.js';
import { EXAMPLE_OUTPUTS, outputsOf, RunOutputs } from './outputs.js';
import { type StepFlowSettings, startStepFlow } from './step-flow.js';

export const Thresholds = Type.Object(
  {
    maxErrorRate: Type.Optional(
      Type.Number({ description: 'Failed requests / requests, 0..1.', minimum: 0, maximum: 1 }),
    ),
    maxP95Ms: Type.Optional(Type.Number({ description: '95th percentile latency in ms.', minimum: 0 })),
    maxAssertionsFailed: Type.Optional(Type.Integer({ description: 'Failed assertions.', minimum: 0 })),
  },
  {
    description:
      'Fail the step (and so trigger rollback) when the numbers are over these; the numbers are in the error details.',
    additionalProperties: false,
  },
);
export type Thresholds = Static<typeof Thresholds>;

const RunInput = Type.Object(
  {
    ...FlowInputProperties,
    durationSeconds: Type.Optional(Type.Integer({ description: 'Run this long.', minimum: 1, maximum: 86_400 })),
    iterations: Type.Optional(
      Type.Integer({
        description: 'Each user runs the flow this many times (the run also ends at durationSeconds if given).',
        minimum: 1,
        maximum: 1_000_000,
      }),
    ),
    failWhen: Type.Optional(Thresholds),
  },
  {
    additionalProperties: false,
    anyOf: [
      { required: ['durationSeconds'], properties: { durationSeconds: true } },
      { required: ['iterations'], properties: { iterations: true } },
    ],
  },
);

/** Which thresholds the run's numbers are over, as sentences. */
export function breaches(
  out: Pick<RunOutputs, 'error_rate' | 'p95_ms' | 'assertions_failed' | 'requests'>,
  t: Thresholds = {},
): string[] {
  const over: string[] = [];
  if (t.maxErrorRate !== undefined && out.error_rate > t.maxErrorRate)
    over.push(`error rate ${out.error_rate} > ${t.maxErrorRate}`);
  if (t.maxP95Ms !== undefined && out.p95_ms > t.maxP95Ms) over.push(`p95 ${out.p95_ms} ms > ${t.maxP95Ms} ms`);
  if (t.maxAssertionsFailed !== undefined && out.assertions_failed > t.maxAssertionsFailed)
    over.push(`${out.assertions_failed} failed assertions > ${t.maxAssertionsFailed}`);
  if (out.requests === 0 && Object.keys(t).length > 0) over.push('no request completed');
  return over;
}

/** The outputs, or the step's failure (which triggers rollback) when they are over the thresholds. */
export function gate<O extends Parameters<typeof breaches>[0]>(out: O, t: Thresholds | undefined): O {
  const over = breaches(out, t);
  if (over.length)
    throw new AgentError('adapter_error', `traffic check failed: ${over.join('; ')}`, {
      retryable: false,
      details: { outputs: out, breached: over },
    });
  return out;
}

/** Engine log lines into the execution log (debug lines only with config.debug). */
export function engineLog(ctx: StepContext) {
  return (level: 'debug' | 'info' | 'warn' | 'error', message: string) => ctx.log[level](message);
}

export function createRunAction(settings: StepFlowSettings) {
  const { flowmapsRoot, runs, egress, threads, container } = settings;
  return defineAction({
    id: 'run',
    description:
      'Runs a flowmap with simulated users until durationSeconds or iterations (per user); outputs requests, flows, errors, error_rate, rps, p50/p95/p99_ms and assertion counts to gate on. With the container-control file, pre_start and the traffic control of config run before it, and the end of the step removes them and runs post_stop.',
    mutates: true,
    supportsDryRun: true,
    secretsIn: (input) => flowmapSecrets(input.flowmap),
    input: RunInput,
    output: RunOutputs,
    exampleOutput: EXAMPLE_OUTPUTS,
    async run(ctx, input) {
      if (ctx.dryRun) return dryRunPlan(ctx, input, flowmapsRoot, egress, container);
      const { config, flowmap, shaping } = prepare(input, flowmapsRoot, container);
      await checkFlowDestinations(config, flowmap, egress);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const create = () =>
        createRunner(config, flowmap, {
          log: engineLog(ctx),
          egress,
          threads,
          limit: {
            durationMs: input.durationSeconds !== undefined ? input.durationSeconds * 1000 : undefined,
            iterations: input.iterations,
          },
        });
      const flow = await startStepFlow(
        create,
        settings,
        shaping,
        `the run of step '${ctx.step}' in execution ${ctx.executionId}`,
      );
      const t0 = performance.now();
      // Cancel, the step timeout and shutdown stop the run at once (load is not work to finish within the
      // grace period); its end, whatever the way, takes the traffic control away and runs post_stop.
      const onAbort = () => void flow.runner.stop();
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (ctx.signal.aborted) onAbort();
      const untrack = runs.track(flow);
      try {
        await flow.runner.done;
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
        untrack();
        await flow.release();
      }
      const runner = flow.runner;
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (runs.stopping)
        throw new AgentError('interrupted', 'the agent shut down while this flow ran; it was stopped at once', {
          retryable: false,
        });
      if (runner.status === 'error')
        throw new AgentError(
          'adapter_error',
          'the flow run failed: every simulated user ended with an unexpected error (see the log)',
          { retryable: false },
        );
      const out = outputsOf(runner.snapshot(), (performance.now() - t0) / 1000);
      ctx.log.info(
        `flowmap done: ${out.requests} requests, ${out.flows} flows (${out.flows_failed} failed), ${out.errors} errors (${(out.error_rate * 100).toFixed(2)}%), ${out.rps} req/s, p95 ${out.p95_ms} ms, ${out.assertions_failed} assertion(s) failed`,
      );
      return gate(out, input.failWhen);
    },
  });
}

/**
 * The distributed load actions: `run_distributed` runs one flowmap on N FlowRunner worker pods at once (the
 * Flow Manager's workers on Kubernetes), `sim_users` split across the pods (the remainder spread one each),
 * and `stop_distributed`, its compensation, stops their flows and scales them to 0. Their inputs, outputs
 * and dry run are here; how a run goes is in distributed-run.ts.
 */
import { type Static, Type } from '@sinclair/typebox';
import { defineAction, type StepContext, USE_EXAMPLE_OUTPUT } from '../contract.js';
import { AgentError } from '../errors.js';
import type { WorkerFleet } from '../k8s/workers/fleet.js';
import { WORKER_NAME } from '../k8s/workers/labels.js';
import { FlowInputProperties, flowmapSecrets, logPlan, prepare, rawFlowmap } from './inputs.js';
import { runFleet, stopAll } from './distributed-run.js';
import { Thresholds } from './run.js';

/** The worker Deployment a distributed run uses when the step names none. */
export const DEFAULT_WORKER = 'flowrunner-workers';

const DistributedInput = Type.Object(
  {
    ...FlowInputProperties,
    workers: Type.Integer({ description: 'Worker pods to spread sim_users over.', minimum: 1, maximum: 100 }),
    worker: Type.Optional(
      Type.String({
        description: `The workers' Deployment: reused when it is one of this agent's workers, created (FLOW_WORKER_IMAGE) when missing. Default ${DEFAULT_WORKER}.`,
        pattern: WORKER_NAME.source,
      }),
    ),
    durationSeconds: Type.Integer({ description: 'Run this long.', minimum: 1, maximum: 86_400 }),
    progressSeconds: Type.Optional(
      Type.Integer({ description: 'Report the fleet numbers this often (default 2).', minimum: 1, maximum: 3600 }),
    ),
    failWhen: Type.Optional(Thresholds),
  },
  { additionalProperties: false },
);
export type DistributedInput = Static<typeof DistributedInput>;

const Count = Type.Integer({ minimum: 0 });
const Ms = Type.Number({ minimum: 0 });
const DistributedOutputs = Type.Object(
  {
    worker: Type.String(),
    workers: Count,
    sim_users: Count,
    requests: Count,
    flows: Count,
    flows_failed: Count,
    errors: Count,
    errors_by_kind: Type.Record(Type.String(), Count),
    error_rate: Type.Number({ minimum: 0, maximum: 1 }),
    rps: Type.Number({ minimum: 0 }),
    p50_ms: Ms,
    p95_ms: Ms,
    p99_ms: Ms,
    max_ms: Ms,
    assertions_passed: Count,
    assertions_failed: Count,
    duration_seconds: Type.Number({ minimum: 0 }),
    pods: Type.Array(
      Type.Object(
        { pod: Type.String(), sim_users: Count, requests: Count, errors: Count, p95_ms: Ms },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type DistributedOutputs = Static<typeof DistributedOutputs>;

const EXAMPLE: DistributedOutputs = {
  worker: DEFAULT_WORKER,
  workers: 3,
  sim_users: 30,
  requests: 9000,
  flows: 3000,
  flows_failed: 0,
  errors: 0,
  errors_by_kind: {},
  error_rate: 0,
  rps: 300,
  p50_ms: 8,
  p95_ms: 25,
  p99_ms: 40,
  max_ms: 90,
  assertions_passed: 3000,
  assertions_failed: 0,
  duration_seconds: 30,
  pods: [],
};

/** `users` split over `n`: as equal as can be, the remainder one each to the first pods. */
export function splitUsers(users: number, n: number): number[] {
  const base = Math.floor(users / n);
  return Array.from({ length: n }, (_, i) => base + (i < users % n ? 1 : 0));
}

const StopInput = Type.Object(
  {
    worker: Type.Optional(Type.String({ pattern: WORKER_NAME.source })),
    scaleToZero: Type.Optional(Type.Boolean({ description: 'Also scale the workers to 0 (default true).' })),
  },
  { additionalProperties: false },
);

export function createDistributedActions(flowmapsRoot: string, fleet: WorkerFleet | undefined) {
  const needFleet = (): WorkerFleet => {
    if (!fleet)
      throw new AgentError(
        'adapter_error',
        'distributed runs need the Flow Manager, which this agent was built without',
      );
    return fleet;
  };
  const run = defineAction({
    id: 'run_distributed',
    description:
      'Runs a flowmap on N FlowRunner worker pods on Kubernetes for durationSeconds, sim_users split across them; outputs fleet totals (requests, errors, rps, p50/p95/p99_ms from the merged latency histograms) to gate on.',
    mutates: true,
    supportsDryRun: true,
    secretsIn: (input) => flowmapSecrets(input.flowmap),
    input: DistributedInput,
    output: DistributedOutputs,
    exampleOutput: EXAMPLE,
    compensate: (input) => ({ action: 'stop_distributed', with: { worker: input.worker ?? DEFAULT_WORKER } }),
    async run(ctx, input) {
      const { config, flowmap } = prepare(input, flowmapsRoot);
      const worker = input.worker ?? DEFAULT_WORKER;
      const shares = splitUsers(config.sim_users, input.workers);
      if (shares.some((s) => s === 0))
        throw new AgentError(
          'validation_error',
          `sim_users (${config.sim_users}) must be at least workers (${input.workers}): every pod runs at least one user`,
          { retryable: false },
        );
      if (ctx.dryRun) {
        ctx.log.info(
          `dry run: would run on ${input.workers} pod(s) of worker ${worker} for ${input.durationSeconds} s, users per pod: ${shares.join(', ')}`,
        );
        // The workers send the requests, under their own egress policy: this agent's is not judged here.
        logPlan(ctx, config, flowmap);
        return USE_EXAMPLE_OUTPUT;
      }
      return withWorker(ctx, worker, () =>
        runFleet(ctx, needFleet(), { ...input, worker }, shares, rawFlowmap(input, flowmapsRoot)),
      );
    },
  });
  const stop = defineAction({
    id: 'stop_distributed',
    description: "Stops a distributed run's flows on every worker pod and (by default) scales the workers to 0.",
    mutates: true,
    supportsDryRun: false,
    input: StopInput,
    output: Type.Object(
      { worker: Type.String(), pods_stopped: Count, scaled_to_zero: Type.Boolean() },
      { additionalProperties: false },
    ),
    exampleOutput: { worker: DEFAULT_WORKER, pods_stopped: 3, scaled_to_zero: true },
    async run(ctx, input) {
      const f = needFleet();
      const worker = input.worker ?? DEFAULT_WORKER;
      const pods = (await f.pods(ctx, worker)).filter((p) => p.ready);
      await stopAll(
        ctx,
        f,
        worker,
        pods.map((p) => p.name),
      );
      let scale = input.scaleToZero !== false;
      try {
        if (scale) await f.stop(ctx, { container_id: worker });
      } catch (err) {
        // A worker that is gone (deleted, or never made because the run failed first) has nothing to stop.
        if (!(err instanceof AgentError && err.type === 'not_found')) throw err;
        ctx.log.info(`worker ${worker} does not exist; nothing to stop`);
        scale = false;
      }
      ctx.log.info(
        `stopped the flows of ${pods.length} pod(s) of worker ${worker}${scale ? ' and scaled it to 0' : ''}`,
      );
      return { worker, pods_stopped: pods.length, scaled_to_zero: scale };
    },
  });
  return [run, stop];
}

/** The execution whose distributed run holds each worker (a start on a busy worker would take its pods over). */
const busy = new Map<string, string>();

async function withWorker<T>(ctx: StepContext, worker: string, work: () => Promise<T>): Promise<T> {
  const holder = busy.get(worker);
  if (holder !== undefined)
    throw new AgentError(
      'conflict',
      `worker ${worker} is running the distributed load of execution ${holder}; wait for it to end, or name another worker`,
      { retryable: false, details: { worker, execution_id: holder } },
    );
  busy.set(worker, ctx.executionId);
  try {
    return await work();
  } finally {
    busy.delete(worker);
  }
}

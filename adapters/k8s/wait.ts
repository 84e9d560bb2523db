import { isDeepStrictEqual } from 'node:util';
import { type Static, Type } from '@sinclair/typebox';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { lookup, parsePath } from '../shared/paths.js';
import { StringEnum } from '../shared/schemas.js';
import { describe, ObjectRefProperties, WORKLOAD_KINDS } from './kinds.js';
import { conditionMet, rollout, type Verdict } from './rollout.js';
import { isSecret, readOrAbsent, resolveTarget, type KObj, type Target } from './runtime.js';
import type { K8sApi } from './api.js';
import { waitUntil } from './wait-until.js';

/** `condition` values with a meaning of their own; any other is a status.conditions type. */
export const ROLLOUT_COMPLETE = 'RolloutComplete';
export const DELETED = 'Deleted';

const WaitInput = Type.Object(
  {
    ...ObjectRefProperties,
    condition: Type.Optional(
      Type.String({
        description: `A status.conditions type (Available, Ready, Complete, …), or ${ROLLOUT_COMPLETE}, or ${DELETED}.`,
        minLength: 1,
      }),
    ),
    conditionStatus: Type.Optional(
      StringEnum(['True', 'False', 'Unknown'], { description: "The condition's status to wait for.", default: 'True' }),
    ),
    path: Type.Optional(
      Type.String({
        description:
          'A path on the object (status.readyReplicas); with equals, wait for that value, else for any non-null value.',
        minLength: 1,
      }),
    ),
    equals: Type.Optional(Type.Unknown({ description: 'The value at path to wait for (compared as JSON).' })),
    timeoutSeconds: Type.Optional(
      Type.Integer({
        description: 'Give up after this long with timeout.',
        minimum: 1,
        maximum: 86400,
        default: 300,
      }),
    ),
    resyncSeconds: Type.Optional(
      Type.Integer({
        description: 'Re-read the object and restart the watch this often (missed events cannot stall the wait).',
        minimum: 1,
        maximum: 3600,
        default: 30,
      }),
    ),
  },
  {
    additionalProperties: false,
    oneOf: [
      { required: ['condition'], properties: { condition: true } },
      { required: ['path'], properties: { path: true } },
    ],
  },
);
type WaitInput = Static<typeof WaitInput>;

const WaitOutput = Type.Object(
  {
    met: Type.Boolean(),
    waitedSeconds: Type.Number({ minimum: 0 }),
    observed: Type.String({ description: 'the state the wait saw last' }),
  },
  { additionalProperties: false },
);
type WaitOutput = Static<typeof WaitOutput>;

function verdict(input: WaitInput, obj: KObj | undefined): Verdict {
  if (input.condition === DELETED)
    return {
      met: obj === undefined,
      observed: obj ? `exists (resourceVersion ${obj.metadata?.resourceVersion})` : 'deleted',
    };
  if (!obj) return { met: false, observed: 'does not exist' };
  if (input.condition === ROLLOUT_COMPLETE) return rollout(obj);
  if (input.condition) return conditionMet(obj, input.condition, input.conditionStatus ?? 'True');
  const found = lookup(obj, parsePath(input.path!) ?? []);
  const met =
    found.found && (input.equals === undefined ? found.value !== null : isDeepStrictEqual(found.value, input.equals));
  // A Secret's values never leave the agent, not even in what the wait observed.
  const shown = (v: unknown) => (isSecret(obj) ? '(value hidden)' : JSON.stringify(v));
  return { met, observed: found.found ? `${input.path} = ${shown(found.value)}` : `${input.path} is missing` };
}

function goal(input: WaitInput): string {
  if (input.condition === DELETED) return 'deleted';
  if (input.condition === ROLLOUT_COMPLETE) return 'rolled out';
  if (input.condition) return `${input.condition}=${input.conditionStatus ?? 'True'}`;
  if (input.equals === undefined) return `set at ${input.path}`;
  return `${input.path} = ${isSecret(input) ? '(value hidden)' : JSON.stringify(input.equals)}`;
}

/** A RolloutComplete wait on a kind that has no rollout fails before it starts. */
function checkGoal(input: WaitInput, t: Target): void {
  if (input.condition !== ROLLOUT_COMPLETE) return;
  if (!(WORKLOAD_KINDS as readonly string[]).includes(t.kind) || !t.apiVersion.startsWith('apps/')) {
    throw new AgentError(
      'validation_error',
      `${describe(t)} has no rollout (${ROLLOUT_COMPLETE} is for ${WORKLOAD_KINDS.join(', ')} of apps/v1); wait for a condition or a path instead`,
      { retryable: false },
    );
  }
}

export function createWaitAction(k8s: K8sApi) {
  return defineAction({
    id: 'wait',
    description: `Waits until an object meets a condition: a status condition (Available, Ready, …; as kubectl wait, not met while its observedGeneration is behind), ${ROLLOUT_COMPLETE} (as kubectl rollout status), ${DELETED}, or a path with a value. Watches with periodic resync; fails with timeout naming the last observed state.`,
    mutates: false,
    supportsDryRun: true,
    input: WaitInput,
    output: WaitOutput,
    exampleOutput: {
      met: true,
      waitedSeconds: 12,
      observed: 'Available=True (MinimumReplicasAvailable), Progressing=True (NewReplicaSetAvailable)',
    },
    // A dry run looks once and reports; it never blocks on a change the dry run did not make.
    run: (ctx, input) => (ctx.dryRun ? lookOnce(k8s, ctx, input) : wait(k8s, ctx, input)),
  });
}

async function lookOnce(k8s: K8sApi, ctx: StepContext, input: WaitInput): Promise<WaitOutput> {
  const clients = await k8s.clients();
  const t = await resolveTarget(ctx, clients, input);
  checkGoal(input, t);
  const v = verdict(input, await readOrAbsent(ctx, clients, t));
  if (v.invalid) throw new AgentError('validation_error', `${describe(t)}: ${v.invalid}`, { retryable: false });
  ctx.log.info(`dry run: looked once; ${describe(t)} is ${v.met ? '' : 'not yet '}${goal(input)} (${v.observed})`);
  return { met: v.met, waitedSeconds: 0, observed: v.observed };
}

async function wait(k8s: K8sApi, ctx: StepContext, input: WaitInput): Promise<WaitOutput> {
  if (input.path !== undefined && !parsePath(input.path))
    throw new AgentError(
      'validation_error',
      `path '${input.path}' is not a path like status.readyReplicas or status.conditions[0].type`,
      { retryable: false },
    );
  const clients = await k8s.clients();
  const t = await resolveTarget(ctx, clients, input);
  checkGoal(input, t);
  const timeoutMs = (input.timeoutSeconds ?? 300) * 1000;
  ctx.log.info(`waiting up to ${timeoutMs / 1000}s for ${describe(t)} to be ${goal(input)}`);
  const { verdict: v, waitedSeconds } = await waitUntil(ctx, clients, t, (obj) => verdict(input, obj), {
    timeoutMs,
    resyncSeconds: input.resyncSeconds ?? 30,
    goal: goal(input),
  });
  ctx.log.info(`${describe(t)} is ${goal(input)} after ${waitedSeconds}s (${v.observed})`);
  return { met: true, waitedSeconds, observed: v.observed };
}

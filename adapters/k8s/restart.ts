import { type Static, Type } from '@sinclair/typebox';
import { PatchStrategy } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { Nullable } from '../shared/schemas.js';
import { describe, KindOf, Name, Namespace, WORKLOAD_KINDS } from './kinds.js';
import {
  dryRunParam,
  FIELD_MANAGER,
  locked,
  objectPath,
  rawRequest,
  readObject,
  remembering,
  resolveTarget,
  type K8sRuntime,
  type KObj,
} from './runtime.js';

/** The annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

const RestartInput = Type.Object(
  { kind: KindOf(WORKLOAD_KINDS), namespace: Type.Optional(Namespace), name: Name },
  { additionalProperties: false },
);
type RestartInput = Static<typeof RestartInput>;

const Stamp = Type.String({ description: `the pod template's ${RESTARTED_AT}` });
const Generation = Nullable(Type.Integer());
const RestartOutput = Type.Object(
  {
    previousRestartedAt: Nullable(Stamp),
    restartedAt: Stamp,
    previousGeneration: Generation,
    generation: Generation,
  },
  { additionalProperties: false },
);
type RestartOutput = Static<typeof RestartOutput>;

/** What the first attempt of a restart wrote; a retry that finds it on the object does not restart again. */
interface RestartMemory {
  restartedAt: string;
  previousRestartedAt: string | null;
  previousGeneration: number | null;
}

const stampOf = (obj: KObj): string | null => obj.spec?.template?.metadata?.annotations?.[RESTARTED_AT] ?? null;

/**
 * RFC 3339 in seconds, as kubectl writes it; with milliseconds when that would repeat the previous
 * value (two restarts in one second), because an unchanged template would not roll out again.
 */
function restartStamp(previous: string | null): string {
  const now = new Date().toISOString();
  const seconds = now.replace(/\.\d{3}Z$/, 'Z');
  return seconds === previous ? now : seconds;
}

export function createRestartAction(rt: K8sRuntime) {
  return defineAction({
    id: 'restart',
    description:
      "Rollout restart of a Deployment, StatefulSet or DaemonSet, exactly as `kubectl rollout restart`: a strategic-merge patch of the pod template's restartedAt annotation. No default compensation (a restart cannot be undone).",
    mutates: true,
    supportsDryRun: true,
    input: RestartInput,
    output: RestartOutput,
    exampleOutput: {
      previousRestartedAt: null,
      restartedAt: '2026-01-01T00:00:00Z',
      previousGeneration: 4,
      generation: 5,
    },
    run: (ctx, input) => restart(rt, ctx, input),
  });
}

async function restart(rt: K8sRuntime, ctx: StepContext, input: RestartInput): Promise<RestartOutput> {
  const clients = rt.conn.clients();
  const t = await resolveTarget(ctx, clients, input);
  const path = await objectPath(ctx, clients, t);
  return locked(rt, ctx, t, () =>
    remembering(rt, ctx, async () => {
      const current = await readObject(ctx, clients, t);
      const remembered = rt.attempts.recall<RestartMemory>(ctx, t);
      if (remembered && stampOf(current) === remembered.restartedAt) {
        // Attempt 1's patch landed (its answer did not): the rollout is under way, a second one would restart the pods again.
        ctx.log.info(
          `${describe(t)} already carries ${RESTARTED_AT}=${remembered.restartedAt} from attempt 1; not restarting again`,
        );
        return { ...remembered, generation: current.metadata?.generation ?? null };
      }
      if (t.kind === 'Deployment' && current.spec?.paused) {
        throw new AgentError(
          'conflict',
          `${describe(t)} is paused; resume its rollout first (kubectl rollout resume), a restart would not roll out`,
          { retryable: false },
        );
      }
      const previousRestartedAt = stampOf(current);
      const previousGeneration = current.metadata?.generation ?? null;
      const restartedAt = restartStamp(previousRestartedAt);
      rt.attempts.remember(ctx, t, { restartedAt, previousRestartedAt, previousGeneration } satisfies RestartMemory);
      const patch = { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: restartedAt } } } } };
      const updated = await rawRequest<KObj>(ctx, clients, `PATCH ${describe(t)}`, {
        method: 'PATCH',
        path,
        query: { fieldManager: FIELD_MANAGER, dryRun: dryRunParam(ctx) },
        contentType: PatchStrategy.StrategicMergePatch,
        body: patch,
      });
      const generation = updated?.metadata?.generation ?? null;
      ctx.log.info(
        `${ctx.dryRun ? 'dry run (server-side, dryRun=All): would restart' : 'restarted'} ${describe(t)}: ${RESTARTED_AT}=${restartedAt}, generation ${previousGeneration ?? '?'} -> ${generation ?? '?'}`,
      );
      return { previousRestartedAt, restartedAt, previousGeneration, generation };
    }),
  );
}

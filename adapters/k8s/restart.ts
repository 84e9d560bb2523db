import { type Static, Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import { AgentError } from '../errors.js';
import { Nullable } from '../shared/schemas.js';
import type { K8sApi, Write } from './api.js';
import { describe, KindOf, Name, Namespace, WORKLOAD_KINDS } from './kinds.js';
import { FIELD_MANAGER, type KObj, PATCH_CONTENT_TYPES, rawRequest, readObject } from './runtime.js';

/** The annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

const RestartInput = Type.Object(
  { kind: KindOf(WORKLOAD_KINDS), namespace: Type.Optional(Namespace), name: Name },
  { additionalProperties: false },
);

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

export function createRestartAction(k8s: K8sApi) {
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
    run: (ctx, input) => k8s.write(ctx, input, restart),
  });
}

async function restart(w: Write): Promise<RestartOutput> {
  const { ctx, target: t } = w;
  const current = await readObject(ctx, w.clients, t);
  const remembered = w.recall<RestartMemory>();
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
  w.remember({ restartedAt, previousRestartedAt, previousGeneration } satisfies RestartMemory);
  const updated = await rawRequest<KObj>(ctx, w.clients, `PATCH ${describe(t)}`, {
    method: 'PATCH',
    path: w.path,
    query: { fieldManager: FIELD_MANAGER, dryRun: w.dryRun },
    contentType: PATCH_CONTENT_TYPES.strategic,
    body: { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: restartedAt } } } } },
  });
  const generation = updated?.metadata?.generation ?? null;
  w.logChange(
    { present: 'restart', past: 'restarted' },
    `: ${RESTARTED_AT}=${restartedAt}, generation ${previousGeneration ?? '?'} -> ${generation ?? '?'}`,
  );
  return { previousRestartedAt, restartedAt, previousGeneration, generation };
}

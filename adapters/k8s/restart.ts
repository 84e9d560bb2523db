import { PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { describe, kindSchema, nameSchema, namespaceSchema, WORKLOAD_KINDS } from './kinds.js';
import { call, dryRunParam, FIELD_MANAGER, header, locked, resolveTarget, type K8sRuntime } from './runtime.js';

/** The annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

export interface RestartInput {
  kind: (typeof WORKLOAD_KINDS)[number];
  namespace?: string;
  name: string;
}

export type RestartOutput = {
  previousRestartedAt: string | null;
  restartedAt: string;
  previousGeneration: number | null;
  generation: number | null;
};

type Workload = KubernetesObject & { spec?: { paused?: boolean; template?: { metadata?: { annotations?: Record<string, string> } } } };

/**
 * RFC 3339 in seconds, as kubectl writes it; with milliseconds when that would repeat the previous
 * value (two restarts in one second), because an unchanged template would not roll out again.
 */
function restartStamp(previous: string | null): string {
  const now = new Date().toISOString();
  const seconds = now.replace(/\.\d{3}Z$/, 'Z');
  return seconds === previous ? now : seconds;
}

export function restartAction(rt: K8sRuntime) {
  return defineAction<RestartInput, RestartOutput>({
    id: 'restart',
    description: "Rollout restart of a Deployment, StatefulSet or DaemonSet, exactly as `kubectl rollout restart`: a strategic-merge patch of the pod template's restartedAt annotation. No default compensation (a restart cannot be undone).",
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name'],
      properties: { kind: kindSchema(WORKLOAD_KINDS), namespace: namespaceSchema, name: nameSchema },
    },
    exampleOutput: { previousRestartedAt: null, restartedAt: '2026-01-01T00:00:00Z', previousGeneration: 4, generation: 5 },
    dryRun: (ctx, input) => restart(rt, ctx, input),
    run: (ctx, input) => restart(rt, ctx, input),
  });
}

async function restart(rt: K8sRuntime, ctx: StepContext, input: RestartInput): Promise<RestartOutput> {
  const clients = rt.conn.clients();
  const t = resolveTarget(clients, input);
  return locked(rt, ctx, t, async () => {
    const current = (await call(ctx, `GET ${describe(t)}`, () => clients.objects.read(header(t)))) as Workload;
    if (t.kind === 'Deployment' && current.spec?.paused) {
      throw new AgentError('conflict', `${describe(t)} is paused; resume its rollout first (kubectl rollout resume), a restart would not roll out`, { retryable: false });
    }
    const previousRestartedAt = current.spec?.template?.metadata?.annotations?.[RESTARTED_AT] ?? null;
    const restartedAt = restartStamp(previousRestartedAt);
    const patch = { ...header(t), spec: { template: { metadata: { annotations: { [RESTARTED_AT]: restartedAt } } } } };
    const updated = await call(ctx, `PATCH ${describe(t)}`, () => clients.objects.patch(patch, undefined, dryRunParam(ctx), FIELD_MANAGER, undefined, PatchStrategy.StrategicMergePatch));
    const generation = updated.metadata?.generation ?? null;
    ctx.log.info(`${ctx.dryRun ? 'dry run (server-side, dryRun=All): would restart' : 'restarted'} ${describe(t)}: ${RESTARTED_AT}=${restartedAt}, generation ${current.metadata?.generation ?? '?'} -> ${generation ?? '?'}`);
    return { previousRestartedAt, restartedAt, previousGeneration: current.metadata?.generation ?? null, generation };
  });
}

import { setHeaderOptions, PatchStrategy, type V1Scale } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import type { Clients } from './connection.js';
import { describe, kindSchema, nameSchema, namespaceSchema, SCALABLE_KINDS } from './kinds.js';
import { call, dryRunParam, FIELD_MANAGER, locked, resolveTarget, type K8sRuntime, type Target } from './runtime.js';

export interface ScaleInput {
  kind: (typeof SCALABLE_KINDS)[number];
  namespace?: string;
  name: string;
  replicas: number;
}

type ScaleCalls = { read: () => Promise<V1Scale>; patch: (body: unknown, dryRun?: string) => Promise<V1Scale> };

/** The scale subresource of each scalable kind, through AppsV1Api. */
function scaleCalls(clients: Clients, t: Target): ScaleCalls {
  const p = { name: t.name, namespace: t.namespace };
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  switch (t.kind) {
    case 'Deployment':
      return { read: () => clients.apps.readNamespacedDeploymentScale(p), patch: (body, dryRun) => clients.apps.patchNamespacedDeploymentScale({ ...p, body, dryRun, fieldManager: FIELD_MANAGER }, merge) };
    case 'StatefulSet':
      return { read: () => clients.apps.readNamespacedStatefulSetScale(p), patch: (body, dryRun) => clients.apps.patchNamespacedStatefulSetScale({ ...p, body, dryRun, fieldManager: FIELD_MANAGER }, merge) };
    default:
      return { read: () => clients.apps.readNamespacedReplicaSetScale(p), patch: (body, dryRun) => clients.apps.patchNamespacedReplicaSetScale({ ...p, body, dryRun, fieldManager: FIELD_MANAGER }, merge) };
  }
}

export function scaleAction(rt: K8sRuntime) {
  return defineAction<ScaleInput, { previousReplicas: number; replicas: number }>({
    id: 'scale',
    description: 'Sets the replica count of a Deployment, StatefulSet or ReplicaSet through the scale subresource; the default compensation restores previousReplicas.',
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name', 'replicas'],
      properties: {
        kind: kindSchema(SCALABLE_KINDS),
        namespace: namespaceSchema,
        name: nameSchema,
        replicas: { description: 'The new replica count.', type: 'integer', minimum: 0 },
      },
    },
    exampleOutput: { previousReplicas: 3, replicas: 0 },
    compensate: (input, out) => ({ action: 'scale', with: { kind: input.kind, namespace: input.namespace, name: input.name, replicas: out.previousReplicas } }),
    dryRun: (ctx, input) => scale(rt, ctx, input),
    run: (ctx, input) => scale(rt, ctx, input),
  });
}

async function scale(rt: K8sRuntime, ctx: StepContext, input: ScaleInput) {
  const clients = rt.conn.clients();
  const t = resolveTarget(clients, input);
  const calls = scaleCalls(clients, t);
  return locked(rt, ctx, t, async () => {
    const current = await call(ctx, `GET ${describe(t)} scale`, calls.read);
    const previousReplicas = current.spec?.replicas ?? 0;
    const updated = await call(ctx, `PATCH ${describe(t)} scale`, () => calls.patch({ spec: { replicas: input.replicas } }, dryRunParam(ctx)));
    const replicas = updated.spec?.replicas ?? input.replicas;
    ctx.log.info(`${ctx.dryRun ? 'dry run (server-side, dryRun=All): would scale' : 'scaled'} ${describe(t)} from ${previousReplicas} to ${replicas} replicas`);
    return { previousReplicas, replicas };
  });
}

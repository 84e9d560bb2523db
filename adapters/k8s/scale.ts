import { type Static, Type } from '@sinclair/typebox';
import type { V1Scale } from '@kubernetes/client-node';
import { defineAction } from '../contract.js';
import type { K8sApi, Write } from './api.js';
import type { Clients } from './connection.js';
import { describe, KindOf, Name, Namespace, SCALABLE_KINDS } from './kinds.js';
import { call, callOptions, FIELD_MANAGER, PATCH_CONTENT_TYPES, type Target } from './runtime.js';

const ScaleInput = Type.Object(
  {
    kind: KindOf(SCALABLE_KINDS),
    namespace: Type.Optional(Namespace),
    name: Name,
    replicas: Type.Integer({ description: 'The new replica count.', minimum: 0 }),
  },
  { additionalProperties: false },
);
type ScaleInput = Static<typeof ScaleInput>;

const ScaleOutput = Type.Object(
  {
    previousReplicas: Type.Integer({ minimum: 0 }),
    replicas: Type.Integer({ minimum: 0 }),
    namespace: Type.String({
      description:
        "The namespace the object is in (the input's, or the agent's own): the compensation scales back there.",
    }),
  },
  { additionalProperties: false },
);
type ScaleOutput = Static<typeof ScaleOutput>;

type ScaleCalls = { read: () => Promise<V1Scale>; patch: (body: unknown, dryRun?: string) => Promise<V1Scale> };

/** The scale subresource of each scalable kind, through AppsV1Api, each request carrying the step's signal. */
function scaleCalls(clients: Clients, t: Target, signal: AbortSignal): ScaleCalls {
  const p = { name: t.name, namespace: t.namespace! };
  const read = callOptions(clients, signal);
  const merge = callOptions(clients, signal, PATCH_CONTENT_TYPES.merge);
  switch (t.kind) {
    case 'Deployment':
      return {
        read: () => clients.apps.readNamespacedDeploymentScale(p, read),
        patch: (body, dryRun) =>
          clients.apps.patchNamespacedDeploymentScale({ ...p, body, dryRun, fieldManager: FIELD_MANAGER }, merge),
      };
    case 'StatefulSet':
      return {
        read: () => clients.apps.readNamespacedStatefulSetScale(p, read),
        patch: (body, dryRun) =>
          clients.apps.patchNamespacedStatefulSetScale({ ...p, body, dryRun, fieldManager: FIELD_MANAGER }, merge),
      };
    default:
      return {
        read: () => clients.apps.readNamespacedReplicaSetScale(p, read),
        patch: (body, dryRun) =>
          clients.apps.patchNamespacedReplicaSetScale({ ...p, body, dryRun, fieldManager: FIELD_MANAGER }, merge),
      };
  }
}

export function createScaleAction(k8s: K8sApi) {
  return defineAction({
    id: 'scale',
    description:
      'Sets the replica count of a Deployment, StatefulSet or ReplicaSet through the scale subresource; the default compensation restores previousReplicas.',
    mutates: true,
    supportsDryRun: true,
    input: ScaleInput,
    output: ScaleOutput,
    exampleOutput: { previousReplicas: 3, replicas: 0, namespace: 'default' },
    compensate: (input, out) => ({
      action: 'scale',
      with: {
        kind: input.kind,
        namespace: out.namespace ?? input.namespace,
        name: input.name,
        replicas: out.previousReplicas,
      },
    }),
    run: (ctx, input) => k8s.write(ctx, input, (w) => scale(w, input)),
  });
}

async function scale(w: Write, input: ScaleInput): Promise<ScaleOutput> {
  const { ctx, target: t } = w;
  const calls = scaleCalls(w.clients, t, ctx.signal);
  // A retry keeps the count attempt 1 found: its scale may have landed before the answer was lost.
  let previousReplicas = w.recall<{ previousReplicas: number }>()?.previousReplicas;
  if (previousReplicas !== undefined)
    ctx.log.info(`attempt ${ctx.attempt}: ${describe(t)} had ${previousReplicas} replicas before attempt 1`);
  else {
    const current = await call(ctx, `GET ${describe(t)} scale`, calls.read);
    previousReplicas = current.spec?.replicas ?? 0;
    w.remember({ previousReplicas });
  }
  const updated = await call(ctx, `PATCH ${describe(t)} scale`, () =>
    calls.patch({ spec: { replicas: input.replicas } }, w.dryRun),
  );
  const replicas = updated.spec?.replicas ?? input.replicas;
  w.logChange({ present: 'scale', past: 'scaled' }, ` from ${previousReplicas} to ${replicas} replicas`);
  return { previousReplicas, replicas, namespace: t.namespace! };
}

import { PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { describe, namespaceSchema } from './kinds.js';
import { recordPrevious, restoreOf } from './restore.js';
import { call, discover, dryRunParam, FIELD_MANAGER, locked, plain, type K8sRuntime, type Target } from './runtime.js';

export interface ApplyInput {
  manifest: KubernetesObject & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };
  namespace?: string;
  force?: boolean;
}

export type ApplyOutput = {
  created: boolean;
  previous: KubernetesObject | null;
  object: KubernetesObject;
  target: Target;
};

export function applyAction(rt: K8sRuntime) {
  return defineAction<ApplyInput, ApplyOutput>({
    id: 'apply',
    description: 'Server-side apply of a manifest (field manager runtime-agent). Records the object as it was (or that it was absent); the default compensation restores it (or deletes what was created).',
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['manifest'],
      properties: {
        manifest: {
          description: 'The object to apply: apiVersion, kind, metadata.name and the fields the agent should own.',
          type: 'object',
          required: ['apiVersion', 'kind', 'metadata'],
          properties: {
            apiVersion: { type: 'string', minLength: 1 },
            kind: { type: 'string', minLength: 1 },
            metadata: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 }, namespace: { type: 'string' } } },
          },
        },
        namespace: { ...namespaceSchema, description: "Namespace; overrides the manifest's, which defaults to the agent's own." },
        force: { description: 'Take over fields another field manager owns instead of failing with conflict.', type: 'boolean', default: false },
      },
    },
    exampleOutput: {
      created: false,
      previous: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' } },
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' } },
      target: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'settings' },
    },
    compensate: (_input, out) => restoreOf(out.target, out.previous),
    dryRun: (ctx, input) => apply(rt, ctx, input),
    run: (ctx, input) => apply(rt, ctx, input),
  });
}

async function apply(rt: K8sRuntime, ctx: StepContext, input: ApplyInput): Promise<ApplyOutput> {
  const clients = rt.conn.clients();
  const m = input.manifest;
  const resource = await call(ctx, `discover ${m.apiVersion} ${m.kind}`, () => discover(clients, m.apiVersion, m.kind));
  if (!resource) throw new AgentError('validation_error', `the API server has no kind ${m.kind} in ${m.apiVersion}`, { retryable: false });
  const namespace = resource.namespaced ? (input.namespace ?? m.metadata.namespace ?? clients.namespace) : '';
  const t: Target = { apiVersion: m.apiVersion, kind: m.kind, namespace, name: m.metadata.name };
  const body = { ...m, metadata: { ...m.metadata, ...(resource.namespaced ? { namespace } : {}) } };
  return locked(rt, ctx, t, async () => {
    const previous = await recordPrevious(ctx, rt, t);
    const object = await call(ctx, `APPLY ${describe(t)}`, () => clients.objects.patch(body, undefined, dryRunParam(ctx), FIELD_MANAGER, input.force === true ? true : undefined, PatchStrategy.ServerSideApply));
    ctx.log.info(`${ctx.dryRun ? 'dry run (server-side, dryRun=All): would apply' : 'applied'} ${describe(t)} (${previous ? 'updated' : 'created'}; resourceVersion ${object.metadata?.resourceVersion ?? '?'})`);
    return { created: previous === null, previous, object: plain(object), target: t };
  });
}

import { PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { apiVersionSchema, describe, kindSchema, nameSchema, namespaceSchema, type ObjectRef } from './kinds.js';
import { recordPrevious, restoreOf } from './restore.js';
import { call, dryRunParam, FIELD_MANAGER, header, locked, objectPath, plain, rawRequest, resolveTarget, type K8sRuntime, type Target } from './runtime.js';

export interface PatchInput extends ObjectRef {
  type?: 'strategic' | 'merge' | 'json';
  patch: Record<string, unknown> | unknown[];
}

export type PatchOutput = {
  previous: KubernetesObject | null;
  object: KubernetesObject;
  target: Target;
};

const CONTENT_TYPES = { strategic: PatchStrategy.StrategicMergePatch, merge: PatchStrategy.MergePatch, json: PatchStrategy.JsonPatch } as const;

export function patchAction(rt: K8sRuntime) {
  return defineAction<PatchInput, PatchOutput>({
    id: 'patch',
    description: 'Patches an object (strategic merge, JSON merge or JSON patch). Records the object as it was; the default compensation puts it back.',
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name', 'patch'],
      properties: {
        apiVersion: apiVersionSchema,
        kind: kindSchema(),
        namespace: namespaceSchema,
        name: nameSchema,
        type: { description: 'strategic (strategic-merge-patch; built-in kinds only), merge (RFC 7386) or json (RFC 6902, a list of operations).', enum: ['strategic', 'merge', 'json'], default: 'strategic' },
        patch: { description: 'The patch: an object for strategic and merge, a list of operations for json.', type: ['object', 'array'] },
      },
    },
    exampleOutput: {
      previous: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' } },
      object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' } },
      target: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'default', name: 'web' },
    },
    compensate: (_input, out) => restoreOf(out.target, out.previous),
    dryRun: (ctx, input) => patch(rt, ctx, input),
    run: (ctx, input) => patch(rt, ctx, input),
  });
}

async function patch(rt: K8sRuntime, ctx: StepContext, input: PatchInput): Promise<PatchOutput> {
  const clients = rt.conn.clients();
  const t = resolveTarget(clients, input);
  const type = input.type ?? 'strategic';
  if ((type === 'json') !== Array.isArray(input.patch)) {
    throw new AgentError('validation_error', type === 'json' ? 'a json patch is a list of operations ([{ op, path, value }])' : `a ${type} patch is an object`, { retryable: false });
  }
  return locked(rt, ctx, t, async () => {
    const previous = await recordPrevious(ctx, rt, t);
    if (!previous) throw new AgentError('not_found', `${describe(t)} does not exist; there is nothing to patch`, { retryable: false });
    const what = `PATCH (${type}) ${describe(t)}`;
    let object: KubernetesObject;
    if (type === 'json') {
      // KubernetesObjectApi builds the URL from the body, which a JSON patch (a list) cannot carry.
      const query: Record<string, string> = { fieldManager: FIELD_MANAGER };
      if (ctx.dryRun) query.dryRun = 'All';
      object = (await rawRequest(ctx, clients, what, 'PATCH', await objectPath(ctx, clients, t), query, CONTENT_TYPES.json, input.patch)) as KubernetesObject;
    } else {
      const body = input.patch as Record<string, unknown> & { metadata?: Record<string, unknown> };
      const h = header(t);
      const withHeader = { ...body, apiVersion: h.apiVersion, kind: h.kind, metadata: { ...body.metadata, ...h.metadata } };
      object = await call(ctx, what, () => clients.objects.patch(withHeader, undefined, dryRunParam(ctx), FIELD_MANAGER, undefined, CONTENT_TYPES[type]));
    }
    ctx.log.info(`${ctx.dryRun ? 'dry run (server-side, dryRun=All): would patch' : 'patched'} ${describe(t)} (${type}); resourceVersion ${object.metadata?.resourceVersion ?? '?'}`);
    return { previous, object: plain(object), target: t };
  });
}

import type { KubernetesObject } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { apiVersionSchema, describe, kindSchema, nameSchema, namespaceSchema, type ObjectRef } from './kinds.js';
import { recordPrevious, restoreOf } from './restore.js';
import { call, dryRunParam, header, locked, resolveTarget, type K8sRuntime, type Target } from './runtime.js';

export interface DeleteInput extends ObjectRef {
  record?: boolean;
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  ignoreNotFound?: boolean;
}

export type DeleteOutput = {
  deleted: boolean;
  previous: KubernetesObject | null;
  target: Target;
};

export function deleteAction(rt: K8sRuntime) {
  return defineAction<DeleteInput, DeleteOutput>({
    id: 'delete',
    description: 'Deletes an object. With record: true it keeps a copy first, and the default compensation re-creates it; without, there is no compensation.',
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name'],
      properties: {
        apiVersion: apiVersionSchema,
        kind: kindSchema(),
        namespace: namespaceSchema,
        name: nameSchema,
        record: { description: 'Keep a copy of the object so a rollback can re-create it.', type: 'boolean', default: false },
        propagationPolicy: { description: 'What happens to dependents.', enum: ['Foreground', 'Background', 'Orphan'] },
        ignoreNotFound: { description: 'An object that is already gone is success (deleted=false) instead of not_found.', type: 'boolean', default: false },
      },
    },
    exampleOutput: { deleted: true, previous: null, target: { apiVersion: 'v1', kind: 'Pod', namespace: 'default', name: 'web-0' } },
    compensate: (input, out) => (input.record && out.previous ? restoreOf(out.target, out.previous) : undefined),
    dryRun: (ctx, input) => remove(rt, ctx, input),
    run: (ctx, input) => remove(rt, ctx, input),
  });
}

async function remove(rt: K8sRuntime, ctx: StepContext, input: DeleteInput): Promise<DeleteOutput> {
  const clients = rt.conn.clients();
  const t = resolveTarget(clients, input);
  return locked(rt, ctx, t, async () => {
    const previous = input.record ? await recordPrevious(ctx, rt, t) : null;
    try {
      await call(ctx, `DELETE ${describe(t)}`, () => clients.objects.delete(header(t), undefined, dryRunParam(ctx), undefined, undefined, input.propagationPolicy));
    } catch (err) {
      if (input.ignoreNotFound && err instanceof AgentError && err.type === 'not_found') {
        ctx.log.info(`${describe(t)} is already gone`);
        return { deleted: false, previous: null, target: t };
      }
      throw err;
    }
    ctx.log.info(`${ctx.dryRun ? 'dry run (server-side, dryRun=All): would delete' : 'deleted'} ${describe(t)}${previous ? ' (a copy is recorded for rollback)' : ''}`);
    return { deleted: true, previous, target: t };
  });
}

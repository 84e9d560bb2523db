import type { KubernetesObject } from '@kubernetes/client-node';
import { defineAction, type Compensation, type StepContext } from '../contract.js';
import { apiVersionSchema, describe, kindSchema, nameSchema, namespaceSchema } from './kinds.js';
import { call, dryRunParam, FIELD_MANAGER, header, locked, readOrAbsent, resolveTarget, snapshot, type K8sRuntime, type Target } from './runtime.js';

export interface RestoreInput {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  /** The object as it was (server-owned fields removed), or null when it did not exist. */
  previous: KubernetesObject | null;
}

export type RestoreOutput = { action: 'replaced' | 'created' | 'deleted' | 'none' };

/** The compensation of a write that recorded what it changed: put `previous` back (or delete what the write created). */
export function restoreOf(t: Target, previous: KubernetesObject | null): Compensation {
  return { action: 'restore', with: { apiVersion: t.apiVersion, kind: t.kind, namespace: t.namespace, name: t.name, previous } };
}

/** What a write records before it changes an object: a re-creatable copy, or null for "was not there". */
export async function recordPrevious(ctx: StepContext, rt: K8sRuntime, t: Target): Promise<KubernetesObject | null> {
  const found = await readOrAbsent(ctx, rt.conn.clients(), t);
  return found ? snapshot(found) : null;
}

export function restoreAction(rt: K8sRuntime) {
  return defineAction<RestoreInput, RestoreOutput>({
    id: 'restore',
    description: 'Puts an object back as recorded: replaces it with `previous`, creates it when it is gone, or deletes it when `previous` is null. The default compensation of apply, patch and delete (with record).',
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['apiVersion', 'kind', 'name', 'previous'],
      properties: {
        apiVersion: apiVersionSchema,
        kind: kindSchema(),
        namespace: namespaceSchema,
        name: nameSchema,
        previous: { description: 'The recorded object, or null when it did not exist before.', type: ['object', 'null'] },
      },
    },
    exampleOutput: { action: 'replaced' },
    dryRun: (ctx, input) => restore(rt, ctx, input),
    run: (ctx, input) => restore(rt, ctx, input),
  });
}

async function restore(rt: K8sRuntime, ctx: StepContext, input: RestoreInput): Promise<RestoreOutput> {
  const clients = rt.conn.clients();
  const t = resolveTarget(clients, input);
  const verb = ctx.dryRun ? 'dry run (server-side, dryRun=All): would have' : '';
  return locked(rt, ctx, t, async () => {
    const current = await readOrAbsent(ctx, clients, t);
    if (input.previous === null) {
      if (!current) {
        ctx.log.info(`${describe(t)} did not exist before and does not exist now; nothing to restore`);
        return { action: 'none' };
      }
      await call(ctx, `DELETE ${describe(t)}`, () => clients.objects.delete(header(t), undefined, dryRunParam(ctx)));
      ctx.log.info(`${verb} deleted ${describe(t)}, which did not exist before`.trim());
      return { action: 'deleted' };
    }
    const body = snapshot(input.previous);
    body.metadata = { ...body.metadata, name: t.name, namespace: t.namespace };
    if (!current) {
      await call(ctx, `CREATE ${describe(t)}`, () => clients.objects.create(body, undefined, dryRunParam(ctx), FIELD_MANAGER));
      ctx.log.info(`${verb} re-created ${describe(t)} as recorded`.trim());
      return { action: 'created' };
    }
    body.metadata.resourceVersion = current.metadata?.resourceVersion;
    await call(ctx, `PUT ${describe(t)}`, () => clients.objects.replace(body, undefined, dryRunParam(ctx), FIELD_MANAGER));
    ctx.log.info(`${verb} put ${describe(t)} back as recorded`.trim());
    return { action: 'replaced' };
  });
}

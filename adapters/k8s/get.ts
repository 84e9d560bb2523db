import type { KubernetesObject } from '@kubernetes/client-node';
import { defineAction } from '../contract.js';
import { apiVersionSchema, describe, kindSchema, nameSchema, namespaceSchema, type ObjectRef } from './kinds.js';
import { call, header, plain, readOrAbsent, resolveTarget, type K8sRuntime } from './runtime.js';

export interface GetInput extends ObjectRef {
  ignoreNotFound?: boolean;
}

/** A Secret's values never leave the agent through `get`: only its keys do. */
function masked(obj: KubernetesObject): KubernetesObject {
  const copy = plain(obj) as KubernetesObject & { data?: Record<string, string>; stringData?: Record<string, string> };
  if (copy.kind === 'Secret') {
    for (const field of ['data', 'stringData'] as const) {
      if (copy[field]) copy[field] = Object.fromEntries(Object.keys(copy[field]!).map((k) => [k, '***']));
    }
  }
  return copy;
}

export function getAction(rt: K8sRuntime) {
  return defineAction<GetInput, { exists: boolean; object: KubernetesObject | null }>({
    id: 'get',
    description: 'Reads any object (KubernetesObjectApi); outputs it whole. Secret values are masked.',
    mutates: false,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name'],
      properties: {
        apiVersion: apiVersionSchema,
        kind: kindSchema(),
        namespace: namespaceSchema,
        name: nameSchema,
        ignoreNotFound: { description: 'A missing object gives exists=false instead of failing with not_found.', type: 'boolean', default: false },
      },
    },
    exampleOutput: { exists: true, object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' } } },
    async run(ctx, input) {
      const clients = rt.conn.clients();
      const t = resolveTarget(clients, input);
      if (input.ignoreNotFound) {
        const found = await readOrAbsent(ctx, clients, t);
        ctx.log.info(`${describe(t)}: ${found ? `found (resourceVersion ${found.metadata?.resourceVersion})` : 'not found'}`);
        return { exists: found !== undefined, object: found ? masked(found) : null };
      }
      const obj = await call(ctx, `GET ${describe(t)}`, () => clients.objects.read(header(t)));
      ctx.log.info(`${describe(t)}: found (resourceVersion ${obj.metadata?.resourceVersion})`);
      return { exists: true, object: masked(obj) };
    },
  });
}

import { Type } from '@sinclair/typebox';
import { Flag, Nullable } from '../shared/schemas.js';
import { defineAction } from '../contract.js';
import { describe, ObjectRefProperties } from './kinds.js';
import { KubeObject } from './output-schemas.js';
import { kubernetesSecretValues } from '../shared/sensitive.js';
import { isSecret, readObject, readOrAbsent, redact, resolveTarget } from './runtime.js';
import type { K8sApi } from './api.js';

const GetInput = Type.Object(
  {
    ...ObjectRefProperties,
    ignoreNotFound: Flag('A missing object gives exists=false instead of failing with not_found.'),
  },
  { additionalProperties: false },
);

const GetOutput = Type.Object(
  { exists: Type.Boolean(), object: Nullable(KubeObject) },
  { additionalProperties: false },
);

export function createGetAction(k8s: K8sApi) {
  return defineAction({
    id: 'get',
    description:
      'Reads any object as the API server has it (plain JSON, every field); outputs it whole. Secret values (data, stringData, the last-applied annotation) are masked.',
    mutates: false,
    supportsDryRun: false,
    input: GetInput,
    output: GetOutput,
    exampleOutput: {
      exists: true,
      object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' } },
    },
    async run(ctx, input) {
      const clients = await k8s.clients();
      const t = await resolveTarget(ctx, clients, input);
      if (input.ignoreNotFound) {
        const found = await readOrAbsent(ctx, clients, t);
        ctx.log.info(
          `${describe(t)}: ${found ? `found (resourceVersion ${found.metadata?.resourceVersion})` : 'not found'}`,
        );
        if (found && isSecret(t)) for (const v of kubernetesSecretValues(found as { data?: unknown })) ctx.secret(v);
        return { exists: found !== undefined, object: found ? redact(found, t.kind) : null };
      }
      const obj = await readObject(ctx, clients, t);
      if (isSecret(t)) for (const v of kubernetesSecretValues(obj as { data?: unknown })) ctx.secret(v);
      ctx.log.info(`${describe(t)}: found (resourceVersion ${obj.metadata?.resourceVersion})`);
      return { exists: true, object: redact(obj, t.kind) };
    },
  });
}

import { type Static, Type } from '@sinclair/typebox';
import { PatchStrategy } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { StringEnum, TypeList } from '../shared/schemas.js';
import { MIN_SECRET_CHARS } from '../shared/sensitive.js';
import { describe, ObjectRefProperties } from './kinds.js';
import { KubeObject, Previous, Target } from './output-schemas.js';
import { recordOnce, restoreRecorded } from './restore.js';
import {
  dryRunParam,
  FIELD_MANAGER,
  isSecret,
  locked,
  objectPath,
  rawRequest,
  redact,
  remembering,
  resolveTarget,
  type K8sRuntime,
  type KObj,
} from './runtime.js';

const PatchInput = Type.Object(
  {
    ...ObjectRefProperties,
    type: Type.Optional(
      StringEnum(['strategic', 'merge', 'json'], {
        description:
          'strategic (strategic-merge-patch; built-in kinds only), merge (RFC 7386) or json (RFC 6902, a list of operations).',
        default: 'strategic',
      }),
    ),
    patch: TypeList<Record<string, unknown> | unknown[]>(['object', 'array'], {
      description: 'The patch: an object for strategic and merge, a list of operations for json.',
    }),
  },
  { additionalProperties: false },
);
type PatchInput = Static<typeof PatchInput>;

const PatchOutput = Type.Object(
  {
    previous: Previous,
    recorded: Type.Boolean({
      description: 'False for a Secret: its contents are never recorded, and there is no compensation.',
    }),
    object: KubeObject,
    target: Target,
  },
  { additionalProperties: false },
);
type PatchOutput = Static<typeof PatchOutput>;

const CONTENT_TYPES = {
  strategic: PatchStrategy.StrategicMergePatch,
  merge: PatchStrategy.MergePatch,
  json: PatchStrategy.JsonPatch,
} as const;

/** Every string inside a JSON value. */
function stringLeaves(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (v === null || typeof v !== 'object') return [];
  return Object.values(v).flatMap(stringLeaves);
}

export function createPatchAction(rt: K8sRuntime) {
  return defineAction({
    id: 'patch',
    description:
      "Patches an object (strategic merge, JSON merge or JSON patch), sent exactly as given. Records the object as it was; the default compensation puts it back. A Secret's contents are never recorded: patching a Secret has no compensation.",
    mutates: true,
    supportsDryRun: true,
    // Every string in a patch of a Secret may be one of its values.
    secretsIn: (input) =>
      isSecret(input)
        ? stringLeaves(input.patch)
            .filter((v) => v.length >= MIN_SECRET_CHARS)
            .flatMap((v) => [v, Buffer.from(v, 'base64').toString('utf8')])
        : [],
    input: PatchInput,
    output: PatchOutput,
    exampleOutput: {
      previous: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' } },
      recorded: true,
      object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' } },
      target: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'default', name: 'web' },
    },
    compensate: restoreRecorded,
    run: (ctx, input) => patch(rt, ctx, input),
  });
}

async function patch(rt: K8sRuntime, ctx: StepContext, input: PatchInput): Promise<PatchOutput> {
  const type = input.type ?? 'strategic';
  if ((type === 'json') !== Array.isArray(input.patch)) {
    throw new AgentError(
      'validation_error',
      type === 'json' ? 'a json patch is a list of operations ([{ op, path, value }])' : `a ${type} patch is an object`,
      { retryable: false },
    );
  }
  const clients = rt.conn.clients();
  const t = await resolveTarget(ctx, clients, input);
  const path = await objectPath(ctx, clients, t);
  return locked(rt, ctx, t, () =>
    remembering(rt, ctx, async () => {
      const rec = await recordOnce(ctx, rt, t, (first) => {
        if (!first.existed)
          throw new AgentError('not_found', `${describe(t)} does not exist; there is nothing to patch`, {
            retryable: false,
          });
      });
      // The patch goes out as given (no typed model in between), so strategic-merge directives
      // ($patch, $retainKeys, $setElementOrder) and fields of any kind reach the API server.
      const object = await rawRequest<KObj>(ctx, clients, `PATCH (${type}) ${describe(t)}`, {
        method: 'PATCH',
        path,
        query: { fieldManager: FIELD_MANAGER, dryRun: dryRunParam(ctx) },
        contentType: CONTENT_TYPES[type],
        body: input.patch,
      });
      ctx.log.info(
        `${ctx.dryRun ? 'dry run (server-side, dryRun=All): would patch' : 'patched'} ${describe(t)} (${type}); resourceVersion ${object?.metadata?.resourceVersion ?? '?'}`,
      );
      return { previous: rec.previous, recorded: rec.recorded, object: redact(object, t.kind), target: t };
    }),
  );
}

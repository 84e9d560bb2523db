import { type Static, Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import { AgentError } from '../errors.js';
import { StringEnum, TypeList } from '../shared/schemas.js';
import { MIN_SECRET_CHARS } from '../shared/sensitive.js';
import type { K8sApi, Write } from './api.js';
import { describe, ObjectRefProperties } from './kinds.js';
import { ChangeOutputProperties } from './output-schemas.js';
import { recordOnce, restoreRecorded } from './record.js';
import { FIELD_MANAGER, isSecret, type KObj, PATCH_CONTENT_TYPES, rawRequest, redact } from './runtime.js';

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

const PatchOutput = Type.Object(ChangeOutputProperties, { additionalProperties: false });
type PatchOutput = Static<typeof PatchOutput>;

/** Every string inside a JSON value. */
function stringLeaves(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (v === null || typeof v !== 'object') return [];
  return Object.values(v).flatMap(stringLeaves);
}

export function createPatchAction(k8s: K8sApi) {
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
    run: (ctx, input) => {
      checkShape(input);
      return k8s.write(ctx, input, (w) => patch(w, input));
    },
  });
}

/** The patch must have the shape its type takes: checked before anything is asked of the API server. */
function checkShape(input: PatchInput): void {
  const type = input.type ?? 'strategic';
  if ((type === 'json') !== Array.isArray(input.patch)) {
    throw new AgentError(
      'validation_error',
      type === 'json' ? 'a json patch is a list of operations ([{ op, path, value }])' : `a ${type} patch is an object`,
      { retryable: false },
    );
  }
}

async function patch(w: Write, input: PatchInput): Promise<PatchOutput> {
  const { ctx, target: t } = w;
  const type = input.type ?? 'strategic';
  const rec = await recordOnce(w, (first) => {
    if (!first.existed)
      throw new AgentError('not_found', `${describe(t)} does not exist; there is nothing to patch`, {
        retryable: false,
      });
  });
  // The patch goes out as given (no typed model in between), so strategic-merge directives
  // ($patch, $retainKeys, $setElementOrder) and fields of any kind reach the API server.
  const object = await rawRequest<KObj>(ctx, w.clients, `PATCH (${type}) ${describe(t)}`, {
    method: 'PATCH',
    path: w.path,
    query: { fieldManager: FIELD_MANAGER, dryRun: w.dryRun },
    contentType: PATCH_CONTENT_TYPES[type],
    body: input.patch,
  });
  w.logChange(
    { present: 'patch', past: 'patched' },
    ` (${type}); resourceVersion ${object?.metadata?.resourceVersion ?? '?'}`,
  );
  return { previous: rec.previous, recorded: rec.recorded, object: redact(object, t.kind), target: t };
}

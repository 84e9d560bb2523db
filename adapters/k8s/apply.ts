import { type Static, Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import { Flag } from '../shared/schemas.js';
import { kubernetesSecretValues } from '../shared/sensitive.js';
import type { K8sApi, Write } from './api.js';
import { describe, Namespace } from './kinds.js';
import { ChangeOutputProperties } from './output-schemas.js';
import { recordOnce, restoreRecorded } from './record.js';
import { FIELD_MANAGER, isSecret, type KObj, PATCH_CONTENT_TYPES, rawRequest, redact } from './runtime.js';

const ApplyInput = Type.Object(
  {
    manifest: Type.Object(
      {
        apiVersion: Type.String({ minLength: 1 }),
        kind: Type.String({ minLength: 1 }),
        metadata: Type.Object({
          name: Type.String({ minLength: 1 }),
          namespace: Type.Optional(Type.String()),
        }),
      },
      { description: 'The object to apply: apiVersion, kind, metadata.name and the fields the agent should own.' },
    ),
    namespace: Type.Optional({
      ...Namespace,
      description: "Namespace; overrides the manifest's, which defaults to the agent's own.",
    }),
    force: Flag('Take over fields another field manager owns instead of failing with conflict.'),
  },
  { additionalProperties: false },
);
type ApplyInput = Static<typeof ApplyInput>;

const ApplyOutput = Type.Object(
  { created: Type.Boolean(), ...ChangeOutputProperties },
  { additionalProperties: false },
);
type ApplyOutput = Static<typeof ApplyOutput>;

export function createApplyAction(k8s: K8sApi) {
  return defineAction({
    id: 'apply',
    description:
      "Server-side apply of a manifest (field manager runtime-agent). Records the object as it was (or that it was absent); the default compensation restores it (or deletes what was created). A Secret's contents are never recorded: applying a Secret has no compensation.",
    mutates: true,
    supportsDryRun: true,
    secretsIn: (input) =>
      isSecret(input.manifest ?? {})
        ? kubernetesSecretValues(input.manifest as { data?: unknown; stringData?: unknown })
        : [],
    input: ApplyInput,
    output: ApplyOutput,
    exampleOutput: {
      created: false,
      previous: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' } },
      recorded: true,
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' } },
      target: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'settings' },
    },
    compensate: restoreRecorded,
    run: (ctx, input) => k8s.write(ctx, targetOf(input), (w) => apply(w, input)),
  });
}

/** The manifest's object: the input's namespace overrides the manifest's. */
const targetOf = ({ manifest: m, namespace }: ApplyInput) => ({
  apiVersion: m.apiVersion,
  kind: m.kind,
  namespace: namespace ?? m.metadata.namespace,
  name: m.metadata.name,
});

async function apply(w: Write, input: ApplyInput): Promise<ApplyOutput> {
  const { ctx, target: t } = w;
  const metadata: Record<string, unknown> = { ...input.manifest.metadata };
  if (t.namespace !== undefined) metadata.namespace = t.namespace;
  else delete metadata.namespace;
  const rec = await recordOnce(w);
  const object = await rawRequest<KObj>(ctx, w.clients, `APPLY ${describe(t)}`, {
    method: 'PATCH',
    path: w.path,
    query: { fieldManager: FIELD_MANAGER, force: input.force === true ? 'true' : undefined, dryRun: w.dryRun },
    // JSON is YAML: the apply content type takes either.
    contentType: PATCH_CONTENT_TYPES.apply,
    body: { ...input.manifest, metadata },
  });
  w.logChange(
    { present: 'apply', past: 'applied' },
    ` (${rec.existed ? 'updated' : 'created'}; resourceVersion ${object?.metadata?.resourceVersion ?? '?'})`,
  );
  return {
    created: !rec.existed,
    previous: rec.previous,
    recorded: rec.recorded,
    object: redact(object, t.kind),
    target: t,
  };
}

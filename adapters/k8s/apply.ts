import { type Static, Type } from '@sinclair/typebox';
import { defineAction, type StepContext } from '../contract.js';
import { kubernetesSecretValues } from '../shared/sensitive.js';
import { describe, Namespace } from './kinds.js';
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
    force: Type.Optional(
      Type.Boolean({
        description: 'Take over fields another field manager owns instead of failing with conflict.',
        default: false,
      }),
    ),
  },
  { additionalProperties: false },
);
type ApplyInput = Static<typeof ApplyInput>;

const ApplyOutput = Type.Object(
  {
    created: Type.Boolean(),
    previous: Previous,
    recorded: Type.Boolean({
      description: 'False for a Secret: its contents are never recorded, and there is no compensation.',
    }),
    object: KubeObject,
    target: Target,
  },
  { additionalProperties: false },
);
type ApplyOutput = Static<typeof ApplyOutput>;

export function createApplyAction(rt: K8sRuntime) {
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
    run: (ctx, input) => apply(rt, ctx, input),
  });
}

async function apply(rt: K8sRuntime, ctx: StepContext, input: ApplyInput): Promise<ApplyOutput> {
  const clients = rt.conn.clients();
  const m = input.manifest;
  const t = await resolveTarget(ctx, clients, {
    apiVersion: m.apiVersion,
    kind: m.kind,
    namespace: input.namespace ?? m.metadata.namespace,
    name: m.metadata.name,
  });
  const metadata: Record<string, unknown> = { ...m.metadata };
  if (t.namespace !== undefined) metadata.namespace = t.namespace;
  else delete metadata.namespace;
  const body = { ...m, metadata };
  const path = await objectPath(ctx, clients, t);
  return locked(rt, ctx, t, () =>
    remembering(rt, ctx, async () => {
      const rec = await recordOnce(ctx, rt, t);
      const object = await rawRequest<KObj>(ctx, clients, `APPLY ${describe(t)}`, {
        method: 'PATCH',
        path,
        query: {
          fieldManager: FIELD_MANAGER,
          force: input.force === true ? 'true' : undefined,
          dryRun: dryRunParam(ctx),
        },
        // JSON is YAML: the apply content type takes either.
        contentType: 'application/apply-patch+yaml',
        body,
      });
      ctx.log.info(
        `${ctx.dryRun ? 'dry run (server-side, dryRun=All): would apply' : 'applied'} ${describe(t)} (${rec.existed ? 'updated' : 'created'}; resourceVersion ${object?.metadata?.resourceVersion ?? '?'})`,
      );
      return {
        created: !rec.existed,
        previous: rec.previous,
        recorded: rec.recorded,
        object: redact(object, t.kind),
        target: t,
      };
    }),
  );
}

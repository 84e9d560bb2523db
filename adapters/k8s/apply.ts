import { defineAction, type StepContext } from '../contract.js';
import { kubernetesSecretValues } from '../shared/sensitive.js';
import { describe, namespaceSchema } from './kinds.js';
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
  type Target,
} from './runtime.js';

export interface ApplyInput {
  manifest: KObj & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };
  namespace?: string;
  force?: boolean;
}

export type ApplyOutput = {
  created: boolean;
  previous: KObj | null;
  /** False for a Secret: its contents are never recorded, and there is no compensation. */
  recorded: boolean;
  object: KObj;
  target: Target;
};

export function createApplyAction(rt: K8sRuntime) {
  return defineAction<ApplyInput, ApplyOutput>({
    id: 'apply',
    description:
      "Server-side apply of a manifest (field manager runtime-agent). Records the object as it was (or that it was absent); the default compensation restores it (or deletes what was created). A Secret's contents are never recorded: applying a Secret has no compensation.",
    mutates: true,
    secretsIn: (input) =>
      isSecret(input.manifest ?? {})
        ? kubernetesSecretValues(input.manifest as { data?: unknown; stringData?: unknown })
        : [],
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
            metadata: {
              type: 'object',
              required: ['name'],
              properties: { name: { type: 'string', minLength: 1 }, namespace: { type: 'string' } },
            },
          },
        },
        namespace: {
          ...namespaceSchema,
          description: "Namespace; overrides the manifest's, which defaults to the agent's own.",
        },
        force: {
          description: 'Take over fields another field manager owns instead of failing with conflict.',
          type: 'boolean',
          default: false,
        },
      },
    },
    exampleOutput: {
      created: false,
      previous: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' } },
      recorded: true,
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' } },
      target: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'settings' },
    },
    compensate: restoreRecorded,
    dryRun: (ctx, input) => apply(rt, ctx, input),
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

import { type Static, Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import { AgentError } from '../errors.js';
import { Flag, StringEnum } from '../shared/schemas.js';
import type { K8sApi, Write } from './api.js';
import { describe, ObjectRefProperties } from './kinds.js';
import { Previous, Target } from './output-schemas.js';
import { restoreOf, SECRET_NOT_RECORDED } from './record.js';
import { isSecret, type KObj, rawRequest, readOrAbsent, snapshot } from './runtime.js';

const DeleteInput = Type.Object(
  {
    ...ObjectRefProperties,
    record: Flag('Keep a copy of the object so a rollback can re-create it.'),
    propagationPolicy: Type.Optional(
      StringEnum(['Foreground', 'Background', 'Orphan'], { description: 'What happens to dependents.' }),
    ),
    ignoreNotFound: Flag('An object that is already gone is success (deleted=false) instead of not_found.'),
  },
  { additionalProperties: false },
);
type DeleteInput = Static<typeof DeleteInput>;

const DeleteOutput = Type.Object(
  {
    deleted: Type.Boolean(),
    previous: Previous,
    recorded: Type.Boolean({
      description: 'Whether `previous` holds a copy to re-create from (never for a Secret, never without record).',
    }),
    target: Target,
  },
  { additionalProperties: false },
);
type DeleteOutput = Static<typeof DeleteOutput>;

/** What the first attempt of a delete recorded; a retry reuses it (the object may be gone by then). */
interface DeleteMemory {
  previous: KObj | null;
  recorded: boolean;
}

export function createDeleteAction(k8s: K8sApi) {
  return defineAction({
    id: 'delete',
    description:
      "Deletes an object. With record: true it keeps a copy first, and the default compensation re-creates it; without, there is no compensation. A Secret's contents are never recorded, and a Pod its controller owns cannot be recorded (the controller re-creates it).",
    mutates: true,
    supportsDryRun: true,
    input: DeleteInput,
    output: DeleteOutput,
    exampleOutput: {
      deleted: true,
      previous: null,
      recorded: false,
      target: { apiVersion: 'v1', kind: 'Pod', namespace: 'default', name: 'web-0' },
    },
    compensate: (input, out) =>
      input.record && out.previous && out.recorded !== false ? restoreOf(out.target, out.previous) : undefined,
    run: (ctx, input) => k8s.write(ctx, input, (w) => remove(w, input)),
  });
}

/**
 * What the delete keeps for its compensation: a copy with record (never of a Secret), or nothing. A Pod
 * its controller owns is refused, since the controller re-creates it.
 */
async function memoryOf(w: Write, record: boolean | undefined): Promise<DeleteMemory> {
  const { ctx, target: t } = w;
  if (!record) return { previous: null, recorded: false };
  const found = await readOrAbsent(ctx, w.clients, t);
  const controller = found?.metadata?.ownerReferences?.find((o) => o.controller === true);
  if (found && t.kind === 'Pod' && t.apiVersion === 'v1' && controller) {
    throw new AgentError(
      'validation_error',
      `${describe(t)} is managed by ${controller.kind} ${controller.name}, which re-creates it: a recorded copy could not be restored as it was; delete it without record (or scale or change its ${controller.kind} instead)`,
      { retryable: false, details: { owner: { kind: controller.kind, name: controller.name } } },
    );
  }
  if (found && isSecret(t)) ctx.log.warn(`${describe(t)}: ${SECRET_NOT_RECORDED}`);
  else if (found) return { previous: snapshot(found), recorded: true };
  return { previous: null, recorded: false };
}

async function remove(w: Write, input: DeleteInput): Promise<DeleteOutput> {
  const { ctx, target: t } = w;
  const remembered = w.recall<DeleteMemory>();
  const memory = remembered ?? (await memoryOf(w, input.record));
  if (!remembered) w.remember(memory);
  const deleted = { deleted: true, previous: memory.previous, recorded: memory.recorded, target: t };
  try {
    await rawRequest(ctx, w.clients, `DELETE ${describe(t)}`, {
      method: 'DELETE',
      path: w.path,
      query: { dryRun: w.dryRun, propagationPolicy: input.propagationPolicy },
    });
  } catch (err) {
    if (err instanceof AgentError && err.type === 'not_found') {
      // An earlier attempt's delete went through before its answer was lost: this step did what it was asked.
      if (remembered) {
        ctx.log.info(`${describe(t)} is gone: attempt 1 deleted it`);
        return deleted;
      }
      if (input.ignoreNotFound) {
        ctx.log.info(`${describe(t)} is already gone`);
        return { deleted: false, previous: null, recorded: false, target: t };
      }
    }
    throw err;
  }
  w.logChange({ present: 'delete', past: 'deleted' }, memory.recorded ? ' (a copy is recorded for rollback)' : '');
  return deleted;
}

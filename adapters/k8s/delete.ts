import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { describe, type ObjectRef, objectRefProperties } from './kinds.js';
import { restoreOf, SECRET_NOT_RECORDED } from './restore.js';
import {
  dryRunParam,
  isSecret,
  locked,
  objectPath,
  rawRequest,
  readOrAbsent,
  remembering,
  resolveTarget,
  snapshot,
  type K8sRuntime,
  type KObj,
  type Target,
} from './runtime.js';

export interface DeleteInput extends ObjectRef {
  record?: boolean;
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  ignoreNotFound?: boolean;
}

export type DeleteOutput = {
  deleted: boolean;
  previous: KObj | null;
  /** Whether `previous` holds a copy to re-create from (never for a Secret, never without record). */
  recorded: boolean;
  target: Target;
};

/** What the first attempt of a delete recorded; a retry reuses it (the object may be gone by then). */
interface DeleteMemory {
  previous: KObj | null;
  recorded: boolean;
}

export function createDeleteAction(rt: K8sRuntime) {
  return defineAction<DeleteInput, DeleteOutput>({
    id: 'delete',
    description:
      "Deletes an object. With record: true it keeps a copy first, and the default compensation re-creates it; without, there is no compensation. A Secret's contents are never recorded, and a Pod its controller owns cannot be recorded (the controller re-creates it).",
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name'],
      properties: {
        ...objectRefProperties,
        record: {
          description: 'Keep a copy of the object so a rollback can re-create it.',
          type: 'boolean',
          default: false,
        },
        propagationPolicy: { description: 'What happens to dependents.', enum: ['Foreground', 'Background', 'Orphan'] },
        ignoreNotFound: {
          description: 'An object that is already gone is success (deleted=false) instead of not_found.',
          type: 'boolean',
          default: false,
        },
      },
    },
    exampleOutput: {
      deleted: true,
      previous: null,
      recorded: false,
      target: { apiVersion: 'v1', kind: 'Pod', namespace: 'default', name: 'web-0' },
    },
    compensate: (input, out) =>
      input.record && out.previous && out.recorded !== false ? restoreOf(out.target, out.previous) : undefined,
    dryRun: (ctx, input) => remove(rt, ctx, input),
    run: (ctx, input) => remove(rt, ctx, input),
  });
}

async function remove(rt: K8sRuntime, ctx: StepContext, input: DeleteInput): Promise<DeleteOutput> {
  const clients = rt.conn.clients();
  const t = await resolveTarget(ctx, clients, input);
  const path = await objectPath(ctx, clients, t);
  return locked(rt, ctx, t, () =>
    remembering(rt, ctx, async () => {
      const remembered = rt.attempts.recall<DeleteMemory>(ctx, t);
      let memory: DeleteMemory = { previous: null, recorded: false };
      if (remembered) memory = remembered;
      else {
        if (input.record) {
          const found = await readOrAbsent(ctx, clients, t);
          const controller = found?.metadata?.ownerReferences?.find((o) => o.controller === true);
          if (found && t.kind === 'Pod' && t.apiVersion === 'v1' && controller) {
            throw new AgentError(
              'validation_error',
              `${describe(t)} is managed by ${controller.kind} ${controller.name}, which re-creates it: a recorded copy could not be restored as it was; delete it without record (or scale or change its ${controller.kind} instead)`,
              { retryable: false, details: { owner: { kind: controller.kind, name: controller.name } } },
            );
          }
          if (found && isSecret(t)) ctx.log.warn(`${describe(t)}: ${SECRET_NOT_RECORDED}`);
          else if (found) memory = { previous: snapshot(found), recorded: true };
        }
        rt.attempts.remember(ctx, t, memory);
      }
      try {
        await rawRequest(ctx, clients, `DELETE ${describe(t)}`, {
          method: 'DELETE',
          path,
          query: { dryRun: dryRunParam(ctx), propagationPolicy: input.propagationPolicy },
        });
      } catch (err) {
        if (err instanceof AgentError && err.type === 'not_found') {
          // An earlier attempt's delete went through before its answer was lost: this step did what it was asked.
          if (remembered) {
            ctx.log.info(`${describe(t)} is gone: attempt 1 deleted it`);
            return { deleted: true, previous: memory.previous, recorded: memory.recorded, target: t };
          }
          if (input.ignoreNotFound) {
            ctx.log.info(`${describe(t)} is already gone`);
            return { deleted: false, previous: null, recorded: false, target: t };
          }
        }
        throw err;
      }
      ctx.log.info(
        `${ctx.dryRun ? 'dry run (server-side, dryRun=All): would delete' : 'deleted'} ${describe(t)}${memory.recorded ? ' (a copy is recorded for rollback)' : ''}`,
      );
      return { deleted: true, previous: memory.previous, recorded: memory.recorded, target: t };
    }),
  );
}

import { type Static, Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import { AgentError } from '../errors.js';
import { StringEnum, TypeList } from '../shared/schemas.js';
import type { K8sApi, Write } from './api.js';
import { AnyKind, ApiVersion, describe, Name, Namespace } from './kinds.js';
import { recreatable } from './recreatable.js';
import { FIELD_MANAGER, type KObj, objectPath, rawRequest, readOrAbsent, snapshot } from './runtime.js';
import { waitUntil } from './wait-until.js';

const RestoreInput = Type.Object(
  {
    apiVersion: ApiVersion,
    kind: AnyKind,
    namespace: Type.Optional(Namespace),
    name: Name,
    previous: TypeList<KObj | null>(['object', 'null'], {
      description: 'The recorded object, or null when it did not exist before.',
    }),
  },
  { additionalProperties: false },
);

const RestoreOutput = Type.Object(
  { action: StringEnum(['replaced', 'created', 'deleted', 'none'], { type: 'string' }) },
  { additionalProperties: false },
);
type RestoreOutput = Static<typeof RestoreOutput>;

export function createRestoreAction(k8s: K8sApi) {
  return defineAction({
    id: 'restore',
    description:
      'Puts an object back as recorded: replaces it with `previous`, creates it when it is gone (without ownerReferences and what the cluster allocated: node, cluster IPs, node ports, bound volume, Job selector), or deletes it when `previous` is null. An object still being deleted is waited for first. The default compensation of apply, patch and delete (with record).',
    mutates: true,
    supportsDryRun: true,
    input: RestoreInput,
    output: RestoreOutput,
    exampleOutput: { action: 'replaced' },
    run: (ctx, input) => k8s.write(ctx, input, (w) => restore(w, input.previous)),
  });
}

async function restore(w: Write, previous: KObj | null): Promise<RestoreOutput> {
  const current = await readOrAbsent(w.ctx, w.clients, w.target);
  if (previous === null) return removeCreated(w, current);
  if (!current?.metadata?.deletionTimestamp) return putBack(w, previous, current);
  if (w.ctx.dryRun) {
    w.ctx.log.info(
      `dry run: ${describe(w.target)} is being deleted${finalizersOf(current)}; a real run waits until it is gone, then re-creates it as recorded`,
    );
    return { action: 'created' };
  }
  await untilGone(w, current);
  return putBack(w, previous, await readOrAbsent(w.ctx, w.clients, w.target));
}

/** Deletes what the write created (there was nothing before it). */
async function removeCreated(w: Write, current: KObj | undefined): Promise<RestoreOutput> {
  const { ctx, target: t } = w;
  if (!current) {
    ctx.log.info(`${describe(t)} did not exist before and does not exist now; nothing to restore`);
    return { action: 'none' };
  }
  if (current.metadata?.deletionTimestamp) {
    ctx.log.info(
      `${describe(t)} did not exist before and is being deleted already (since ${current.metadata.deletionTimestamp}); nothing to restore`,
    );
    return { action: 'none' };
  }
  try {
    await rawRequest(ctx, w.clients, `DELETE ${describe(t)}`, {
      method: 'DELETE',
      path: w.path,
      query: { dryRun: w.dryRun },
    });
  } catch (err) {
    if (err instanceof AgentError && err.type === 'not_found') return { action: 'none' };
    throw err;
  }
  w.logChange({ present: 'have deleted', past: 'deleted' }, ', which did not exist before');
  return { action: 'deleted' };
}

const finalizersOf = (obj: KObj, sep = '; ') =>
  obj.metadata?.finalizers?.length ? `${sep}finalizers: ${obj.metadata.finalizers.join(', ')}` : '';

/** Waits until the object being deleted is gone (or replaced by another with the same name). */
async function untilGone(w: Write, current: KObj): Promise<void> {
  const { ctx, target: t } = w;
  const uid = current.metadata?.uid;
  ctx.log.info(
    `${describe(t)} is being deleted (since ${current.metadata?.deletionTimestamp}${finalizersOf(current)}); waiting until it is gone to re-create it`,
  );
  await waitUntil(
    ctx,
    w.clients,
    t,
    (obj) => ({
      met: obj === undefined || obj.metadata?.uid !== uid,
      observed: obj ? `being deleted${finalizersOf(obj, ', ')}` : 'gone',
    }),
    { resyncSeconds: 30, goal: 'gone' },
  );
}

/** Re-creates the recorded object, or replaces what is there now with it. */
async function putBack(w: Write, previous: KObj, current: KObj | undefined): Promise<RestoreOutput> {
  const { ctx, target: t } = w;
  const query = { dryRun: w.dryRun, fieldManager: FIELD_MANAGER };
  const body = snapshot(previous);
  body.apiVersion = t.apiVersion;
  body.kind = t.kind;
  body.metadata = { ...body.metadata, name: t.name };
  if (t.namespace !== undefined) body.metadata.namespace = t.namespace;
  else delete body.metadata.namespace;
  if (!current) {
    const collection = await objectPath(ctx, w.clients, {
      apiVersion: t.apiVersion,
      kind: t.kind,
      namespace: t.namespace,
    });
    await rawRequest(ctx, w.clients, `CREATE ${describe(t)}`, {
      method: 'POST',
      path: collection,
      query,
      body: recreatable(body),
    });
    w.logChange({ present: 'have re-created', past: 're-created' }, ' as recorded');
    return { action: 'created' };
  }
  body.metadata.resourceVersion = current.metadata?.resourceVersion;
  await rawRequest(ctx, w.clients, `PUT ${describe(t)}`, { method: 'PUT', path: w.path, query, body });
  w.logChange({ present: 'have put', past: 'put' }, ' back as recorded');
  return { action: 'replaced' };
}

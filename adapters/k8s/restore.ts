import { type Static, Type } from '@sinclair/typebox';
import { defineAction, type Compensation, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { StringEnum, TypeList } from '../shared/schemas.js';
import { AnyKind, ApiVersion, describe, Name, Namespace } from './kinds.js';
import {
  dryRunParam,
  FIELD_MANAGER,
  isSecret,
  locked,
  objectPath,
  plain,
  rawRequest,
  readOrAbsent,
  resolveTarget,
  snapshot,
  type K8sRuntime,
  type KObj,
  type Target,
} from './runtime.js';
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
type RestoreInput = Static<typeof RestoreInput>;

const RestoreOutput = Type.Object(
  { action: StringEnum(['replaced', 'created', 'deleted', 'none'], { type: 'string' }) },
  { additionalProperties: false },
);
type RestoreOutput = Static<typeof RestoreOutput>;

/** The compensation of a write that recorded what it changed: put `previous` back (or delete what the write created). */
/** The default compensation of apply and patch: put back what the write recorded (nothing for a Secret, which is never recorded). */
export function restoreRecorded(
  _input: unknown,
  out: { recorded?: boolean; target: Target; previous: KObj | null },
): Compensation | undefined {
  return out.recorded === false ? undefined : restoreOf(out.target, out.previous);
}

export function restoreOf(t: Target, previous: KObj | null): Compensation {
  return {
    action: 'restore',
    with: {
      apiVersion: t.apiVersion,
      kind: t.kind,
      ...(t.namespace !== undefined ? { namespace: t.namespace } : {}),
      name: t.name,
      previous,
    },
  };
}

/** What a write found before it changed an object. */
export interface Recorded {
  /** The object existed. */
  existed: boolean;
  /** A re-creatable copy (server-owned fields removed), or null: it did not exist, or it is not recorded. */
  previous: KObj | null;
  /** False for a Secret: its contents are never recorded, so there is nothing to restore from. */
  recorded: boolean;
}

export const SECRET_NOT_RECORDED =
  "a Secret's contents are never recorded (they would be kept in the execution record); this write has no compensation, so a rollback leaves it as it is";

/** Reads the object before a write and records it, except a Secret's contents, which are never recorded. */
/**
 * What attempt 1 recorded of `t`, or a new record on the first attempt: a retry keeps what the first attempt
 * found, since that attempt's write may have landed before its answer was lost. `check` may refuse a first
 * record (it is then not kept).
 */
export async function recordOnce(
  ctx: StepContext,
  rt: K8sRuntime,
  t: Target,
  check?: (rec: Recorded) => void,
): Promise<Recorded> {
  const recalled = rt.attempts.recall<Recorded>(ctx, t);
  if (recalled) {
    ctx.log.info(`attempt ${ctx.attempt}: using what attempt 1 recorded of ${describe(t)}`);
    return recalled;
  }
  const rec = await recordPrevious(ctx, rt, t);
  check?.(rec);
  rt.attempts.remember(ctx, t, rec);
  return rec;
}

async function recordPrevious(ctx: StepContext, rt: K8sRuntime, t: Target): Promise<Recorded> {
  const found = await readOrAbsent(ctx, rt.conn.clients(), t);
  if (isSecret(t)) {
    ctx.log.warn(`${describe(t)}: ${SECRET_NOT_RECORDED}`);
    return { existed: found !== undefined, previous: null, recorded: false };
  }
  return { existed: found !== undefined, previous: found ? snapshot(found) : null, recorded: true };
}

/** Labels the Job controller sets from the Job's uid; a re-created Job gets a new uid, so they must go. */
const JOB_UID_LABELS = ['controller-uid', 'batch.kubernetes.io/controller-uid'];

/**
 * A recorded object made fit to be created anew: without what ties it to the old incarnation or to
 * things the cluster allocated for it, which the API server would refuse or which would be wrong:
 * ownerReferences (the owner's uid), a Pod's node, a Job's generated selector and uid labels, a
 * Service's allocated cluster IPs and node ports, a claim's bound volume.
 */
export function recreatable(obj: KObj): KObj {
  const o = plain(obj);
  if (o.metadata) delete o.metadata.ownerReferences;
  const spec = o.spec;
  if (!spec || typeof spec !== 'object') return o;
  const core = o.apiVersion === 'v1';
  if (core && o.kind === 'Pod') delete spec.nodeName;
  if (core && o.kind === 'PersistentVolumeClaim') delete spec.volumeName;
  if (core && o.kind === 'Service') {
    // A headless Service (clusterIP: None) stays headless.
    if (spec.clusterIP !== 'None') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    if (Array.isArray(spec.ports)) for (const p of spec.ports) if (p && typeof p === 'object') delete p.nodePort;
    delete spec.healthCheckNodePort;
  }
  if (o.apiVersion?.startsWith('batch/') && o.kind === 'Job' && spec.manualSelector !== true) {
    delete spec.selector;
    for (const labels of [o.metadata?.labels, spec.template?.metadata?.labels]) {
      if (labels && typeof labels === 'object') for (const k of JOB_UID_LABELS) delete labels[k];
    }
  }
  return o;
}

export function createRestoreAction(rt: K8sRuntime) {
  return defineAction({
    id: 'restore',
    description:
      'Puts an object back as recorded: replaces it with `previous`, creates it when it is gone (without ownerReferences and what the cluster allocated: node, cluster IPs, node ports, bound volume, Job selector), or deletes it when `previous` is null. An object still being deleted is waited for first. The default compensation of apply, patch and delete (with record).',
    mutates: true,
    supportsDryRun: true,
    input: RestoreInput,
    output: RestoreOutput,
    exampleOutput: { action: 'replaced' },
    run: (ctx, input) => restore(rt, ctx, input),
  });
}

async function restore(rt: K8sRuntime, ctx: StepContext, input: RestoreInput): Promise<RestoreOutput> {
  const clients = rt.conn.clients();
  const t = await resolveTarget(ctx, clients, input);
  const path = await objectPath(ctx, clients, t);
  const query = { dryRun: dryRunParam(ctx), fieldManager: FIELD_MANAGER };
  const verb = ctx.dryRun ? 'dry run (server-side, dryRun=All): would have' : '';
  return locked(rt, ctx, t, async () => {
    let current = await readOrAbsent(ctx, clients, t);
    if (input.previous === null) {
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
        await rawRequest(ctx, clients, `DELETE ${describe(t)}`, {
          method: 'DELETE',
          path,
          query: { dryRun: dryRunParam(ctx) },
        });
      } catch (err) {
        if (err instanceof AgentError && err.type === 'not_found') return { action: 'none' };
        throw err;
      }
      ctx.log.info(`${verb} deleted ${describe(t)}, which did not exist before`.trim());
      return { action: 'deleted' };
    }
    if (current?.metadata?.deletionTimestamp) {
      const uid = current.metadata.uid;
      const finalizers = current.metadata.finalizers?.length
        ? `; finalizers: ${current.metadata.finalizers.join(', ')}`
        : '';
      if (ctx.dryRun) {
        ctx.log.info(
          `dry run: ${describe(t)} is being deleted${finalizers}; a real run waits until it is gone, then re-creates it as recorded`,
        );
        return { action: 'created' };
      }
      ctx.log.info(
        `${describe(t)} is being deleted (since ${current.metadata.deletionTimestamp}${finalizers}); waiting until it is gone to re-create it`,
      );
      await waitUntil(
        ctx,
        clients,
        t,
        (obj) => ({
          met: obj === undefined || obj.metadata?.uid !== uid,
          observed: obj
            ? `being deleted${obj.metadata?.finalizers?.length ? `, finalizers: ${obj.metadata.finalizers.join(', ')}` : ''}`
            : 'gone',
        }),
        { resyncSeconds: 30, goal: 'gone' },
      );
      current = await readOrAbsent(ctx, clients, t);
    }
    const body = snapshot(input.previous);
    body.apiVersion = t.apiVersion;
    body.kind = t.kind;
    body.metadata = { ...body.metadata, name: t.name };
    if (t.namespace !== undefined) body.metadata.namespace = t.namespace;
    else delete body.metadata.namespace;
    if (!current) {
      const collection = await objectPath(ctx, clients, {
        apiVersion: t.apiVersion,
        kind: t.kind,
        namespace: t.namespace,
      });
      await rawRequest(ctx, clients, `CREATE ${describe(t)}`, {
        method: 'POST',
        path: collection,
        query,
        body: recreatable(body),
      });
      ctx.log.info(`${verb} re-created ${describe(t)} as recorded`.trim());
      return { action: 'created' };
    }
    body.metadata.resourceVersion = current.metadata?.resourceVersion;
    await rawRequest(ctx, clients, `PUT ${describe(t)}`, { method: 'PUT', path, query, body });
    ctx.log.info(`${verb} put ${describe(t)} back as recorded`.trim());
    return { action: 'replaced' };
  });
}

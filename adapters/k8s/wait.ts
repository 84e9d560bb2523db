import { isDeepStrictEqual } from 'node:util';
import { Watch, type KubernetesObject } from '@kubernetes/client-node';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { lookup, parsePath } from '../shared/paths.js';
import type { Clients } from './connection.js';
import { apiVersionSchema, describe, kindSchema, nameSchema, namespaceSchema, type ObjectRef } from './kinds.js';
import { objectPath, readOrAbsent, resolveTarget, type K8sRuntime, type Target } from './runtime.js';

/** `condition` values with a meaning of their own; any other is a status.conditions type. */
export const ROLLOUT_COMPLETE = 'RolloutComplete';
export const DELETED = 'Deleted';

export interface WaitInput extends ObjectRef {
  condition?: string;
  conditionStatus?: 'True' | 'False' | 'Unknown';
  path?: string;
  equals?: unknown;
  timeoutSeconds?: number;
  resyncSeconds?: number;
}

export type WaitOutput = {
  met: boolean;
  waitedSeconds: number;
  observed: string;
};

interface Verdict {
  met: boolean;
  observed: string;
  /** The object can no longer reach the goal (a Deployment past its progress deadline). */
  failed?: string;
}

type Obj = KubernetesObject & { spec?: Record<string, any>; status?: Record<string, any> };

function conditionsOf(obj: Obj): string {
  const cs = (obj.status?.conditions ?? []) as Array<{ type: string; status: string; reason?: string }>;
  return cs.length ? cs.map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ''}`).join(', ') : 'no conditions';
}

/** As `kubectl rollout status` decides it, per kind. */
function rollout(obj: Obj): Verdict {
  const gen = obj.metadata?.generation ?? 0;
  const s = obj.status ?? {};
  const observedGen = s.observedGeneration ?? 0;
  const want = obj.spec?.replicas ?? 1;
  switch (obj.kind) {
    case 'Deployment': {
      const observed = `generation ${gen}, observed ${observedGen}, replicas ${s.replicas ?? 0}/${want}, updated ${s.updatedReplicas ?? 0}, available ${s.availableReplicas ?? 0}; ${conditionsOf(obj)}`;
      if (observedGen < gen) return { met: false, observed };
      const progressing = (s.conditions ?? []).find((c: { type: string }) => c.type === 'Progressing');
      if (progressing?.reason === 'ProgressDeadlineExceeded') return { met: false, observed, failed: 'its rollout exceeded the progress deadline' };
      const updated = s.updatedReplicas ?? 0;
      return { met: updated >= want && (s.replicas ?? 0) <= updated && (s.availableReplicas ?? 0) >= updated, observed };
    }
    case 'StatefulSet': {
      const observed = `generation ${gen}, observed ${observedGen}, ready ${s.readyReplicas ?? 0}/${want}, updated ${s.updatedReplicas ?? 0}, revision ${s.currentRevision ?? '?'} -> ${s.updateRevision ?? '?'}`;
      if (observedGen < gen) return { met: false, observed };
      const revisionsMatch = !s.updateRevision || s.updateRevision === s.currentRevision;
      return { met: (s.readyReplicas ?? 0) >= want && revisionsMatch, observed };
    }
    case 'DaemonSet': {
      const desired = s.desiredNumberScheduled ?? 0;
      const observed = `generation ${gen}, observed ${observedGen}, desired ${desired}, updated ${s.updatedNumberScheduled ?? 0}, available ${s.numberAvailable ?? 0}`;
      if (observedGen < gen) return { met: false, observed };
      return { met: (s.updatedNumberScheduled ?? 0) >= desired && (s.numberAvailable ?? 0) >= desired, observed };
    }
    default:
      return { met: false, observed: 'not a workload', failed: `${obj.kind} has no rollout; wait for a condition or a path instead` };
  }
}

function verdict(input: WaitInput, obj: Obj | undefined): Verdict {
  if (input.condition === DELETED) return { met: obj === undefined, observed: obj ? `exists (resourceVersion ${obj.metadata?.resourceVersion})` : 'deleted' };
  if (!obj) return { met: false, observed: 'does not exist' };
  if (input.condition === ROLLOUT_COMPLETE) return rollout(obj);
  if (input.condition) {
    const want = input.conditionStatus ?? 'True';
    const c = ((obj.status?.conditions ?? []) as Array<{ type: string; status: string }>).find((x) => x.type === input.condition);
    return { met: c?.status === want, observed: conditionsOf(obj) };
  }
  const found = lookup(obj, parsePath(input.path!) ?? []);
  const observed = found.found ? `${input.path} = ${JSON.stringify(found.value)}` : `${input.path} is missing`;
  return { met: found.found && (input.equals === undefined ? found.value !== null : isDeepStrictEqual(found.value, input.equals)), observed };
}

function goal(input: WaitInput): string {
  if (input.condition === DELETED) return 'deleted';
  if (input.condition === ROLLOUT_COMPLETE) return 'rolled out';
  if (input.condition) return `${input.condition}=${input.conditionStatus ?? 'True'}`;
  return input.equals === undefined ? `set at ${input.path}` : `${input.path} = ${JSON.stringify(input.equals)}`;
}

export function waitAction(rt: K8sRuntime) {
  return defineAction<WaitInput, WaitOutput>({
    id: 'wait',
    description: `Waits until an object meets a condition: a status condition (Available, Ready, …), ${ROLLOUT_COMPLETE} (as kubectl rollout status), ${DELETED}, or a path with a value. Watches with periodic resync; fails with timeout naming the last observed state.`,
    mutates: false,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name'],
      oneOf: [{ required: ['condition'], properties: { condition: true } }, { required: ['path'], properties: { path: true } }],
      properties: {
        apiVersion: apiVersionSchema,
        kind: kindSchema(),
        namespace: namespaceSchema,
        name: nameSchema,
        condition: { description: `A status.conditions type (Available, Ready, Complete, …), or ${ROLLOUT_COMPLETE}, or ${DELETED}.`, type: 'string', minLength: 1 },
        conditionStatus: { description: "The condition's status to wait for.", enum: ['True', 'False', 'Unknown'], default: 'True' },
        path: { description: 'A path on the object (status.readyReplicas); with equals, wait for that value, else for any non-null value.', type: 'string', minLength: 1 },
        equals: { description: 'The value at path to wait for (compared as JSON).' },
        timeoutSeconds: { description: 'Give up after this long with timeout.', type: 'integer', minimum: 1, maximum: 86400, default: 300 },
        resyncSeconds: { description: 'Re-read the object and restart the watch this often (missed events cannot stall the wait).', type: 'integer', minimum: 1, maximum: 3600, default: 30 },
      },
    },
    exampleOutput: { met: true, waitedSeconds: 12, observed: 'Available=True (MinimumReplicasAvailable), Progressing=True (NewReplicaSetAvailable)' },
    // A dry run looks once and reports; it never blocks on a change the dry run did not make.
    async dryRun(ctx, input) {
      const clients = rt.conn.clients();
      const t = resolveTarget(clients, input);
      const v = verdict(input, (await readOrAbsent(ctx, clients, t)) as Obj | undefined);
      ctx.log.info(`dry run: looked once; ${describe(t)} is ${v.met ? '' : 'not yet '}${goal(input)} (${v.observed})`);
      return { met: v.met, waitedSeconds: 0, observed: v.observed };
    },
    run: (ctx, input) => wait(rt, ctx, input),
  });
}

async function wait(rt: K8sRuntime, ctx: StepContext, input: WaitInput): Promise<WaitOutput> {
  if (input.path !== undefined && !parsePath(input.path)) throw new AgentError('validation_error', `path '${input.path}' is not a path like status.readyReplicas or status.conditions[0].type`, { retryable: false });
  const clients = rt.conn.clients();
  const t = resolveTarget(clients, input);
  const started = Date.now();
  const timeoutMs = (input.timeoutSeconds ?? 300) * 1000;
  const resyncSeconds = input.resyncSeconds ?? 30;
  const collection = await objectPath(ctx, clients, { apiVersion: t.apiVersion, kind: t.kind, namespace: t.namespace });
  const done = (v: Verdict): WaitOutput => {
    const waitedSeconds = Math.round((Date.now() - started) / 100) / 10;
    ctx.log.info(`${describe(t)} is ${goal(input)} after ${waitedSeconds}s (${v.observed})`);
    return { met: true, waitedSeconds, observed: v.observed };
  };
  const check = (v: Verdict) => {
    if (v.failed) throw new AgentError('timeout', `${describe(t)} will not become ${goal(input)}: ${v.failed} (${v.observed})`, { retryable: false, details: { observed: v.observed } });
  };
  ctx.log.info(`waiting up to ${timeoutMs / 1000}s for ${describe(t)} to be ${goal(input)}`);
  let last: Verdict = { met: false, observed: 'not read yet' };
  for (;;) {
    // (Re)sync: read the object, then watch from its resourceVersion until the server ends the watch.
    const obj = (await readOrAbsent(ctx, clients, t)) as Obj | undefined;
    last = verdict(input, obj);
    check(last);
    if (last.met) return done(last);
    const left = timeoutMs - (Date.now() - started);
    if (left <= 0) break;
    const watchStarted = Date.now();
    const outcome = await watchOnce(clients, collection, t, obj?.metadata?.resourceVersion, Math.min(resyncSeconds, Math.ceil(left / 1000)), left, ctx, (o) => {
      last = verdict(input, o as Obj | undefined);
      check(last);
      return last.met;
    });
    if (outcome === 'met') return done(last);
    if (outcome === 'timeout') break;
    ctx.log.debug(`resync: re-reading ${describe(t)} (${outcome})`);
    // A watch the server refuses or drops at once must not turn into a tight loop of reads.
    if (Date.now() - watchStarted < MIN_WATCH_MS) await pause(Math.min(MIN_WATCH_MS, timeoutMs - (Date.now() - started)), ctx.signal);
  }
  throw new AgentError('timeout', `${describe(t)} did not become ${goal(input)} within ${timeoutMs / 1000}s; last observed: ${last.observed}`, { details: { observed: last.observed } });
}

type WatchOutcome = 'met' | 'timeout' | 'ended' | 'gone';

/** A watch that ends sooner than this is followed by a pause before the next read. */
const MIN_WATCH_MS = 1000;

/** The abort reason's message (the engine turns the reason itself into the step's error). */
function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) return resolve();
    const onAbort = () => (clearTimeout(timer), reject(new AgentError('cancelled', `wait stopped: ${reasonOf(signal)}`)));
    const timer = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** One watch stream: ends with met, the wait's timeout, the server ending it (resync), or 410 Gone. Throws on the step's abort or a failed check. */
function watchOnce(
  clients: Clients,
  collection: string,
  t: Target,
  resourceVersion: string | undefined,
  timeoutSeconds: number,
  leftMs: number,
  ctx: StepContext,
  onObject: (obj: KubernetesObject | undefined) => boolean,
): Promise<WatchOutcome> {
  return new Promise<WatchOutcome>((resolve, reject) => {
    let controller: AbortController | undefined;
    let settled = false;
    const finish = (err: unknown, outcome?: WatchOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      controller?.abort();
      if (err) reject(err);
      else resolve(outcome!);
    };
    const onAbort = () => finish(new AgentError('cancelled', `watching ${describe(t)} stopped: ${reasonOf(ctx.signal)}`));
    const timer = setTimeout(() => finish(undefined, 'timeout'), leftMs);
    if (ctx.signal.aborted) return onAbort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const query: Record<string, string | number | boolean> = { fieldSelector: `metadata.name=${t.name}`, timeoutSeconds, allowWatchBookmarks: true };
    if (resourceVersion) query.resourceVersion = resourceVersion;
    new Watch(clients.kc)
      .watch(
        collection,
        query,
        (phase, obj: KubernetesObject & { code?: number }) => {
          try {
            if (phase === 'BOOKMARK') return;
            if (phase === 'ERROR') return finish(undefined, obj?.code === 410 ? 'gone' : 'ended');
            if (obj?.metadata?.name !== t.name) return;
            if (onObject(phase === 'DELETED' ? undefined : obj)) finish(undefined, 'met');
          } catch (err) {
            finish(err);
          }
        },
        // The server closes the stream at timeoutSeconds (or drops it): read again and watch anew.
        () => finish(undefined, 'ended'),
      )
      .then(
        (c) => {
          controller = c;
          if (settled) c.abort();
        },
        () => finish(undefined, 'ended'),
      );
  });
}

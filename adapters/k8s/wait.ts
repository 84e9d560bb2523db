import { isDeepStrictEqual } from 'node:util';
import { defineAction, type StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { lookup, parsePath } from '../shared/paths.js';
import type { Clients } from './connection.js';
import { describe, WORKLOAD_KINDS, type ObjectRef, objectRefProperties } from './kinds.js';
import {
  isSecret,
  objectPath,
  readOrAbsent,
  resolveTarget,
  type K8sRuntime,
  type KObj,
  type Target,
} from './runtime.js';
import { watchOnce } from './watch.js';

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

export interface Verdict {
  met: boolean;
  observed: string;
  /** The object can no longer reach the goal (a Deployment past its progress deadline). */
  failed?: string;
  /** The goal does not apply to this object (a rollout of an OnDelete StatefulSet). */
  invalid?: string;
}

type Condition = { type?: unknown; status?: unknown; reason?: unknown; observedGeneration?: unknown };

function conditionsOf(obj: KObj): string {
  const cs = (Array.isArray(obj.status?.conditions) ? obj.status!.conditions : []) as Condition[];
  return cs.length
    ? cs.map((c) => `${String(c.type)}=${String(c.status)}${c.reason ? ` (${String(c.reason)})` : ''}`).join(', ')
    : 'no conditions';
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** As `kubectl rollout status` decides it (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go), per kind. */
export function rollout(obj: KObj): Verdict {
  const gen = obj.metadata?.generation ?? 0;
  const s = obj.status ?? {};
  const observedGen = num(s.observedGeneration) ?? 0;
  const specReplicas = num(obj.spec?.replicas);
  switch (obj.kind) {
    case 'Deployment': {
      const want = specReplicas ?? 1;
      const observed = `generation ${gen}, observed ${observedGen}, replicas ${s.replicas ?? 0}/${want}, updated ${s.updatedReplicas ?? 0}, available ${s.availableReplicas ?? 0}; ${conditionsOf(obj)}`;
      if (observedGen < gen) return { met: false, observed };
      const progressing = ((s.conditions ?? []) as Condition[]).find((c) => c.type === 'Progressing');
      if (progressing?.reason === 'ProgressDeadlineExceeded')
        return { met: false, observed, failed: 'its rollout exceeded the progress deadline' };
      const updated = s.updatedReplicas ?? 0;
      return {
        met: updated >= want && (s.replicas ?? 0) <= updated && (s.availableReplicas ?? 0) >= updated,
        observed,
      };
    }
    case 'StatefulSet': {
      const strategy = obj.spec?.updateStrategy?.type ?? 'RollingUpdate';
      const partition = num(obj.spec?.updateStrategy?.rollingUpdate?.partition) ?? 0;
      const want = specReplicas ?? 1;
      const observed = `generation ${gen}, observed ${observedGen}, ready ${s.readyReplicas ?? 0}/${want}, updated ${s.updatedReplicas ?? 0}${partition ? ` (partition ${partition})` : ''}, revision ${s.currentRevision ?? '?'} -> ${s.updateRevision ?? '?'}`;
      if (strategy !== 'RollingUpdate')
        return {
          met: false,
          observed,
          invalid: `rollout status is only available for RollingUpdate strategy type (${describe({ kind: 'StatefulSet', name: obj.metadata?.name ?? '?' })} uses ${strategy})`,
        };
      if (observedGen === 0 || observedGen < gen) return { met: false, observed };
      if ((s.readyReplicas ?? 0) < want) return { met: false, observed };
      return { met: (s.updatedReplicas ?? 0) >= want - partition, observed };
    }
    case 'DaemonSet': {
      const strategy = obj.spec?.updateStrategy?.type ?? 'RollingUpdate';
      const desired = s.desiredNumberScheduled ?? 0;
      const observed = `generation ${gen}, observed ${observedGen}, desired ${desired}, updated ${s.updatedNumberScheduled ?? 0}, available ${s.numberAvailable ?? 0}`;
      if (strategy !== 'RollingUpdate')
        return {
          met: false,
          observed,
          invalid: `rollout status is only available for RollingUpdate strategy type (${describe({ kind: 'DaemonSet', name: obj.metadata?.name ?? '?' })} uses ${strategy})`,
        };
      if (observedGen < gen) return { met: false, observed };
      return { met: (s.updatedNumberScheduled ?? 0) >= desired && (s.numberAvailable ?? 0) >= desired, observed };
    }
    default:
      return {
        met: false,
        observed: 'not a workload',
        invalid: `${obj.kind} has no rollout; wait for a condition or a path instead`,
      };
  }
}

/**
 * A status condition as `kubectl wait --for=condition=...` checks it: the first condition of that type
 * (case-insensitive), skipped while its observedGeneration (or else status.observedGeneration) is
 * older than metadata.generation, because then it describes an older spec.
 */
export function conditionMet(obj: KObj, type: string, want: string): Verdict {
  const observed = conditionsOf(obj);
  const cs = (Array.isArray(obj.status?.conditions) ? obj.status!.conditions : []) as Condition[];
  const c = cs.find((x) => typeof x?.type === 'string' && x.type.toLowerCase() === type.toLowerCase());
  if (!c || typeof c.status !== 'string') return { met: false, observed };
  const gen = num(obj.metadata?.generation);
  if (gen !== undefined) {
    const seen = num(c.observedGeneration) ?? num(obj.status?.observedGeneration);
    if (seen !== undefined && seen < gen)
      return { met: false, observed: `${observed}; generation ${gen} not observed yet (observed ${seen})` };
  }
  return { met: c.status.toLowerCase() === want.toLowerCase(), observed };
}

function verdict(input: WaitInput, obj: KObj | undefined): Verdict {
  if (input.condition === DELETED)
    return {
      met: obj === undefined,
      observed: obj ? `exists (resourceVersion ${obj.metadata?.resourceVersion})` : 'deleted',
    };
  if (!obj) return { met: false, observed: 'does not exist' };
  if (input.condition === ROLLOUT_COMPLETE) return rollout(obj);
  if (input.condition) return conditionMet(obj, input.condition, input.conditionStatus ?? 'True');
  const found = lookup(obj, parsePath(input.path!) ?? []);
  const met =
    found.found && (input.equals === undefined ? found.value !== null : isDeepStrictEqual(found.value, input.equals));
  // A Secret's values never leave the agent, not even in what the wait observed.
  const shown = (v: unknown) => (isSecret(obj) ? '(value hidden)' : JSON.stringify(v));
  return { met, observed: found.found ? `${input.path} = ${shown(found.value)}` : `${input.path} is missing` };
}

function goal(input: WaitInput): string {
  if (input.condition === DELETED) return 'deleted';
  if (input.condition === ROLLOUT_COMPLETE) return 'rolled out';
  if (input.condition) return `${input.condition}=${input.conditionStatus ?? 'True'}`;
  if (input.equals === undefined) return `set at ${input.path}`;
  return `${input.path} = ${isSecret(input) ? '(value hidden)' : JSON.stringify(input.equals)}`;
}

/** A RolloutComplete wait on a kind that has no rollout fails before it starts. */
function checkGoal(input: WaitInput, t: Target): void {
  if (input.condition !== ROLLOUT_COMPLETE) return;
  if (!(WORKLOAD_KINDS as readonly string[]).includes(t.kind) || !t.apiVersion.startsWith('apps/')) {
    throw new AgentError(
      'validation_error',
      `${describe(t)} has no rollout (${ROLLOUT_COMPLETE} is for ${WORKLOAD_KINDS.join(', ')} of apps/v1); wait for a condition or a path instead`,
      { retryable: false },
    );
  }
}

export function createWaitAction(rt: K8sRuntime) {
  return defineAction<WaitInput, WaitOutput>({
    id: 'wait',
    description: `Waits until an object meets a condition: a status condition (Available, Ready, …; as kubectl wait, not met while its observedGeneration is behind), ${ROLLOUT_COMPLETE} (as kubectl rollout status), ${DELETED}, or a path with a value. Watches with periodic resync; fails with timeout naming the last observed state.`,
    mutates: false,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name'],
      oneOf: [
        { required: ['condition'], properties: { condition: true } },
        { required: ['path'], properties: { path: true } },
      ],
      properties: {
        ...objectRefProperties,
        condition: {
          description: `A status.conditions type (Available, Ready, Complete, …), or ${ROLLOUT_COMPLETE}, or ${DELETED}.`,
          type: 'string',
          minLength: 1,
        },
        conditionStatus: {
          description: "The condition's status to wait for.",
          enum: ['True', 'False', 'Unknown'],
          default: 'True',
        },
        path: {
          description:
            'A path on the object (status.readyReplicas); with equals, wait for that value, else for any non-null value.',
          type: 'string',
          minLength: 1,
        },
        equals: { description: 'The value at path to wait for (compared as JSON).' },
        timeoutSeconds: {
          description: 'Give up after this long with timeout.',
          type: 'integer',
          minimum: 1,
          maximum: 86400,
          default: 300,
        },
        resyncSeconds: {
          description: 'Re-read the object and restart the watch this often (missed events cannot stall the wait).',
          type: 'integer',
          minimum: 1,
          maximum: 3600,
          default: 30,
        },
      },
    },
    exampleOutput: {
      met: true,
      waitedSeconds: 12,
      observed: 'Available=True (MinimumReplicasAvailable), Progressing=True (NewReplicaSetAvailable)',
    },
    // A dry run looks once and reports; it never blocks on a change the dry run did not make.
    async dryRun(ctx, input) {
      const clients = rt.conn.clients();
      const t = await resolveTarget(ctx, clients, input);
      checkGoal(input, t);
      const v = verdict(input, await readOrAbsent(ctx, clients, t));
      if (v.invalid) throw new AgentError('validation_error', `${describe(t)}: ${v.invalid}`, { retryable: false });
      ctx.log.info(`dry run: looked once; ${describe(t)} is ${v.met ? '' : 'not yet '}${goal(input)} (${v.observed})`);
      return { met: v.met, waitedSeconds: 0, observed: v.observed };
    },
    run: (ctx, input) => wait(rt, ctx, input),
  });
}

async function wait(rt: K8sRuntime, ctx: StepContext, input: WaitInput): Promise<WaitOutput> {
  if (input.path !== undefined && !parsePath(input.path))
    throw new AgentError(
      'validation_error',
      `path '${input.path}' is not a path like status.readyReplicas or status.conditions[0].type`,
      { retryable: false },
    );
  const clients = rt.conn.clients();
  const t = await resolveTarget(ctx, clients, input);
  checkGoal(input, t);
  const timeoutMs = (input.timeoutSeconds ?? 300) * 1000;
  ctx.log.info(`waiting up to ${timeoutMs / 1000}s for ${describe(t)} to be ${goal(input)}`);
  const { verdict: v, waitedSeconds } = await waitUntil(ctx, clients, t, (obj) => verdict(input, obj), {
    timeoutMs,
    resyncSeconds: input.resyncSeconds ?? 30,
    goal: goal(input),
  });
  ctx.log.info(`${describe(t)} is ${goal(input)} after ${waitedSeconds}s (${v.observed})`);
  return { met: true, waitedSeconds, observed: v.observed };
}

/** A watch that ends sooner than this is followed by a pause before the next read. */
const MIN_WATCH_MS = 1000;

export interface WaitOptions {
  /** Give up with timeout after this long; without it, only the step's signal ends the wait. */
  timeoutMs?: number;
  resyncSeconds: number;
  /** What the object should become, for messages (`Available=True`). */
  goal: string;
}

/**
 * Reads the object, then watches it from that resourceVersion until `judge` says met; the server
 * ends each watch after resyncSeconds (or it expires with 410), and the object is read again, so a
 * missed event cannot stall the wait. A watch the server refuses fails the wait with the mapped
 * error. Throws timeout naming the last observed state; validation_error when the goal does not
 * apply; the step's abort as cancelled.
 */
export async function waitUntil(
  ctx: StepContext,
  clients: Clients,
  t: Target,
  judge: (obj: KObj | undefined) => Verdict,
  opts: WaitOptions,
): Promise<{ verdict: Verdict; waitedSeconds: number }> {
  const started = Date.now();
  const collection = await objectPath(ctx, clients, { apiVersion: t.apiVersion, kind: t.kind, namespace: t.namespace });
  const left = () => (opts.timeoutMs === undefined ? undefined : opts.timeoutMs - (Date.now() - started));
  const check = (v: Verdict): Verdict => {
    if (v.invalid)
      throw new AgentError('validation_error', `${describe(t)}: ${v.invalid}`, {
        retryable: false,
        details: { observed: v.observed },
      });
    if (v.failed)
      throw new AgentError('timeout', `${describe(t)} will not become ${opts.goal}: ${v.failed} (${v.observed})`, {
        retryable: false,
        details: { observed: v.observed },
      });
    return v;
  };
  const result = (v: Verdict) => ({ verdict: v, waitedSeconds: Math.round((Date.now() - started) / 100) / 10 });
  let last: Verdict = { met: false, observed: 'not read yet' };
  for (;;) {
    // (Re)sync: read the object, then watch from its resourceVersion until the server ends the watch.
    const obj = await readOrAbsent(ctx, clients, t);
    last = check(judge(obj));
    if (last.met) return result(last);
    const remaining = left();
    if (remaining !== undefined && remaining <= 0) break;
    const watchStarted = Date.now();
    const timeoutSeconds =
      remaining === undefined ? opts.resyncSeconds : Math.min(opts.resyncSeconds, Math.ceil(remaining / 1000));
    const query = {
      fieldSelector: `metadata.name=${t.name}`,
      timeoutSeconds,
      allowWatchBookmarks: true,
      resourceVersion: obj?.metadata?.resourceVersion,
    };
    const outcome = await watchOnce(ctx, clients, `WATCH ${describe(t)}`, collection, query, remaining, (event) => {
      const o = event.object as KObj;
      if (o?.metadata?.name !== t.name) return false;
      last = check(judge(event.type === 'DELETED' ? undefined : o));
      return last.met;
    });
    if (outcome === 'stopped') return result(last);
    if (outcome === 'timeout') break;
    ctx.log.debug(
      `resync: re-reading ${describe(t)} (${outcome === 'gone' ? 'the watch expired (410)' : 'the server ended the watch'})`,
    );
    // A watch the server drops at once must not turn into a tight loop of reads.
    if (Date.now() - watchStarted < MIN_WATCH_MS) {
      const r = left();
      await pause(r === undefined ? MIN_WATCH_MS : Math.min(MIN_WATCH_MS, r), ctx.signal);
    }
  }
  throw new AgentError(
    'timeout',
    `${describe(t)} did not become ${opts.goal} within ${(opts.timeoutMs ?? 0) / 1000}s; last observed: ${last.observed}`,
    { details: { observed: last.observed } },
  );
}

/** The abort reason's message (the engine turns the reason itself into the step's error). */
function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) {
      resolve();
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AgentError('cancelled', `wait stopped: ${reasonOf(signal)}`));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

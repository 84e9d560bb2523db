/**
 * Whether an object is where a wait wants it: its rollout, as `kubectl rollout status` decides it,
 * or one of its status conditions, as `kubectl wait --for=condition=...` checks it.
 */
import type { KObj } from './runtime.js';
import { describe } from './kinds.js';

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

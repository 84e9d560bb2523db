/**
 * A Deployment's and its ReplicaSets' status computed from their pods' readiness, as the deployment and
 * replicaset controllers compute it (pkg/controller/deployment/sync.go calculateStatus, progress.go): ready and
 * available replicas are the pods whose Ready condition is True (minReadySeconds is not simulated),
 * unavailableReplicas = the ReplicaSets' desired total - available, Available=True while available >=
 * spec.replicas - maxUnavailable (25% rounded down by default), Progressing=True NewReplicaSetAvailable once the
 * new ReplicaSet's pods are all available, and otherwise ReplicaSetUpdated while the rollout is under way (a
 * completed rollout keeps NewReplicaSetAvailable when pods later fail; ProgressDeadlineExceeded is kept).
 * Zero counts are left out, as the omitempty encoding does.
 */
import { nowTimestamp, type KObj } from './json.js';
import { isPodReady } from './pod-states.js';

function omitZero(o: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) if (v === 0 || v === undefined) delete o[k];
  return o;
}

/** intstr percentages resolved as deploymentutil.ResolveFenceposts does (surge rounds up, unavailable down). */
export function maxUnavailable(d: KObj): number {
  const replicas = d.spec?.replicas ?? 1;
  if (d.spec?.strategy?.type !== 'RollingUpdate' || replicas === 0) return 0;
  const ru = d.spec.strategy.rollingUpdate ?? {};
  const resolve = (v: unknown, up: boolean, dflt: string) => {
    const x = v ?? dflt;
    if (typeof x === 'number') return x;
    const pct = Number(String(x).replace('%', ''));
    const raw = (pct * replicas) / 100;
    return up ? Math.ceil(raw) : Math.floor(raw);
  };
  const surge = resolve(ru.maxSurge, true, '25%');
  let unavailable = resolve(ru.maxUnavailable, false, '25%');
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return Math.min(unavailable, replicas);
}

export function replicaSetStatus(rs: KObj, pods: KObj[]): Record<string, unknown> {
  const ready = pods.filter(isPodReady).length;
  return omitZero({
    replicas: pods.length,
    fullyLabeledReplicas: pods.length,
    readyReplicas: ready,
    availableReplicas: ready,
    observedGeneration: rs.metadata?.generation ?? 1,
  });
}

function condition(type: string, status: string, reason: string, message: string, prev: any[]) {
  const now = nowTimestamp();
  const old = prev.find((c) => c?.type === type);
  const same = old && old.status === status && old.reason === reason;
  return {
    type,
    status,
    lastUpdateTime: same ? old.lastUpdateTime : now,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now,
    reason,
    message,
  };
}

export interface RolloutView {
  /** The ReplicaSet of the current template. */
  newRS: KObj;
  /** Every ReplicaSet of the Deployment (new one included), each with its pods. */
  sets: Array<{ rs: KObj; pods: KObj[] }>;
}

export function deploymentStatus(d: KObj, view: RolloutView): Record<string, unknown> {
  const desired = d.spec?.replicas ?? 1;
  const prev = d.status ?? {};
  const prevConds: any[] = Array.isArray(prev.conditions) ? prev.conditions : [];
  const pods = view.sets.flatMap((s) => s.pods);
  const newPods = view.sets.find((s) => s.rs.metadata?.name === view.newRS.metadata?.name)?.pods ?? [];
  const available = pods.filter(isPodReady).length;
  const total = view.sets.reduce((n, s) => n + (s.rs.spec?.replicas ?? 0), 0);
  const updated = newPods.length;
  const rsName = view.newRS.metadata!.name!;
  const availableCond =
    available >= desired - maxUnavailable(d)
      ? condition('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.', prevConds)
      : condition(
          'Available',
          'False',
          'MinimumReplicasUnavailable',
          'Deployment does not have minimum availability.',
          prevConds,
        );
  const complete = updated === desired && pods.length === desired && available === desired;
  const oldProgress = prevConds.find((c) => c?.type === 'Progressing');
  const sameRS = typeof oldProgress?.message === 'string' && oldProgress.message.includes(`"${rsName}"`);
  let progressing: Record<string, unknown>;
  if (complete)
    progressing = condition(
      'Progressing',
      'True',
      'NewReplicaSetAvailable',
      `ReplicaSet "${rsName}" has successfully progressed.`,
      prevConds,
    );
  else if (sameRS && ['NewReplicaSetAvailable', 'ProgressDeadlineExceeded'].includes(oldProgress.reason))
    progressing = oldProgress;
  else
    progressing = condition(
      'Progressing',
      'True',
      'ReplicaSetUpdated',
      `ReplicaSet "${rsName}" is progressing.`,
      prevConds,
    );
  return omitZero({
    observedGeneration: d.metadata?.generation ?? 1,
    replicas: pods.length,
    updatedReplicas: updated,
    readyReplicas: available,
    availableReplicas: available,
    unavailableReplicas: Math.max(0, total - available),
    conditions: [availableCond, progressing],
  });
}

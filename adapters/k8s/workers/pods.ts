/** What a worker's pods say about it: each pod in a few fields, and the worker's status and health from them. */
import type { KObj } from '../runtime.js';
import { WORKER_CONTAINER } from './manifests.js';

/** Waiting reasons that mean the image cannot be pulled: the seed's image_not_found. */
export const IMAGE_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
export const CRASH_REASONS = new Set(['CrashLoopBackOff']);

export interface PodView {
  name: string;
  phase: string;
  ready: boolean;
  restarts: number;
  /** Why the worker container is waiting (ImagePullBackOff, CrashLoopBackOff, …), or null. */
  reason: string | null;
  message: string | null;
  /** Since when the pod has not been ready (its Ready condition's last transition), or null when ready. */
  not_ready_since: string | null;
  ip: string | null;
}

export function podView(pod: KObj): PodView {
  // biome-ignore lint/suspicious/noExplicitAny: container statuses are read field by field, each checked where it is used
  const statuses = (pod.status?.containerStatuses ?? []) as Array<Record<string, any>>;
  const c = statuses.find((s) => s.name === WORKER_CONTAINER) ?? statuses[0];
  const ready = (pod.status?.conditions ?? []).find((x: { type?: string }) => x.type === 'Ready');
  const isReady = ready?.status === 'True';
  return {
    name: pod.metadata?.name ?? '',
    phase: pod.status?.phase ?? 'Unknown',
    ready: isReady,
    restarts: typeof c?.restartCount === 'number' ? c.restartCount : 0,
    reason: c?.state?.waiting?.reason ?? c?.state?.terminated?.reason ?? null,
    message: c?.state?.waiting?.message ?? c?.state?.terminated?.message ?? null,
    not_ready_since: isReady ? null : (ready?.lastTransitionTime ?? pod.metadata?.creationTimestamp ?? null),
    ip: pod.status?.podIP ?? null,
  };
}

export type WorkerStatus = 'stopped' | 'starting' | 'running' | 'degraded' | 'crashed' | 'image_error' | 'deleting';
export type WorkerHealth = 'healthy' | 'unhealthy' | 'starting' | 'none';

/** The worker's status and health from its Deployment and pods. */
export function workerState(deployment: KObj, pods: PodView[]): { status: WorkerStatus; health: WorkerHealth } {
  if (deployment.metadata?.deletionTimestamp) return { status: 'deleting', health: 'none' };
  const want = typeof deployment.spec?.replicas === 'number' ? deployment.spec.replicas : 1;
  if (want === 0) return { status: 'stopped', health: 'none' };
  if (pods.some((p) => p.reason && IMAGE_REASONS.has(p.reason))) return { status: 'image_error', health: 'unhealthy' };
  if (pods.some((p) => p.reason && CRASH_REASONS.has(p.reason))) return { status: 'crashed', health: 'unhealthy' };
  const available = deployment.status?.availableReplicas ?? 0;
  const ready = pods.filter((p) => p.ready).length;
  if (available >= want && ready >= want) return { status: 'running', health: 'healthy' };
  if (available > 0) return { status: 'degraded', health: 'unhealthy' };
  return { status: 'starting', health: 'starting' };
}

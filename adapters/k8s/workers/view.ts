/** A worker as the container commands and events show it: its Deployment and pods in a few fields. */
import type { KObj } from '../runtime.js';
import { WORKER_CONTAINER } from './manifests.js';
import { type PodView, type WorkerHealth, type WorkerStatus, workerState } from './pods.js';

export interface WorkerView {
  container_id: string;
  name: string;
  namespace: string;
  image: string | null;
  status: WorkerStatus;
  health: WorkerHealth;
  replicas: number;
  ready_replicas: number;
  available_replicas: number;
  created_at: string | null;
}

export interface WorkerDetail extends WorkerView {
  pods: PodView[];
  /** From metrics.k8s.io, summed over the pods; null where the cluster serves no metrics. */
  resource_usage: ResourceUsage;
  /** Each ready pod's `/api/metrics`, or why it could not be read. */
  flow: Array<{ pod: string; metrics?: unknown; error?: string }>;
}

export interface ResourceUsage {
  cpu_millicores: number | null;
  memory_bytes: number | null;
  cpu_percent: number | null;
  memory_percent: number | null;
}

interface WorkerContainer {
  name?: string;
  image?: unknown;
  resources?: { limits?: Record<string, string> };
}

/** The worker container of a Deployment's pod template. */
export function workerContainer(d: KObj): WorkerContainer | undefined {
  return (d.spec?.template?.spec?.containers ?? []).find((c: { name?: string }) => c.name === WORKER_CONTAINER);
}

export function workerView(d: KObj, pods: PodView[]): WorkerView {
  const name = d.metadata?.name ?? '';
  const container = workerContainer(d);
  return {
    container_id: name,
    name,
    namespace: d.metadata?.namespace ?? '',
    image: typeof container?.image === 'string' ? container.image : null,
    ...workerState(d, pods),
    replicas: typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1,
    ready_replicas: d.status?.readyReplicas ?? 0,
    available_replicas: d.status?.availableReplicas ?? 0,
    created_at: typeof d.metadata?.creationTimestamp === 'string' ? d.metadata.creationTimestamp : null,
  };
}

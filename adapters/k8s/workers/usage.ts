/** A worker's CPU and memory from metrics.k8s.io, summed over its pods and set against its limits. */
import type { StepContext } from '../../contract.js';
import { AgentError } from '../../errors.js';
import type { Clients } from '../connection.js';
import { type KObj, rawRequest } from '../runtime.js';
import { WORKER_CONTAINER } from './manifests.js';
import { bytes, millicores } from './quantity.js';
import { type ResourceUsage, workerContainer } from './view.js';

const NONE: ResourceUsage = { cpu_millicores: null, memory_bytes: null, cpu_percent: null, memory_percent: null };

type PodMetricsList = { items?: Array<{ containers?: Array<{ name?: string; usage?: Record<string, string> }> }> };

/** The usage of the pods `labelSelector` picks, Deployment `d`'s; all null where the cluster serves no metrics. */
export async function resourceUsage(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  d: KObj,
  labelSelector: string,
): Promise<ResourceUsage> {
  const namespace = d.metadata?.namespace ?? '';
  let list: PodMetricsList;
  try {
    list = await rawRequest(ctx, clients, `read the metrics of worker ${namespace}/${d.metadata?.name}`, {
      method: 'GET',
      path: `/apis/metrics.k8s.io/v1beta1/namespaces/${namespace}/pods`,
      query: { labelSelector },
    });
  } catch (err) {
    if (err instanceof AgentError && (err.type === 'not_found' || err.type === 'forbidden')) return NONE;
    throw err;
  }
  let cpu = 0;
  let memory = 0;
  let samples = 0;
  for (const pod of list.items ?? [])
    for (const c of pod.containers ?? []) {
      if (c.name !== WORKER_CONTAINER) continue;
      cpu += millicores(c.usage?.cpu) ?? 0;
      memory += bytes(c.usage?.memory) ?? 0;
      samples++;
    }
  if (samples === 0) return NONE;
  const limits = workerContainer(d)?.resources?.limits ?? {};
  const pct = (v: number, limit: number | undefined) =>
    limit ? Math.round((1000 * v) / (limit * samples)) / 10 : null;
  return {
    cpu_millicores: cpu,
    memory_bytes: memory,
    cpu_percent: pct(cpu, millicores(limits.cpu)),
    memory_percent: pct(memory, bytes(limits.memory)),
  };
}

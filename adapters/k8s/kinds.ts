/**
 * The kinds the k8s actions know by name, and the input-schema pieces every
 * action shares (`kind`, `namespace`, `name` or `selector`).
 */
import type { JsonSchema } from '../contract.js';
import { AgentError } from '../errors.js';

export interface KindInfo {
  apiVersion: string;
  /** The resource name in URLs and RBAC rules (`deployments`). */
  plural: string;
  /** The API group for RBAC (`apps`; '' for the core group). */
  group: string;
  namespaced: boolean;
}

/** Kinds an input may name without `apiVersion`. Any other kind needs `apiVersion` (KubernetesObjectApi resolves it by discovery). */
export const KNOWN_KINDS: Record<string, KindInfo> = {
  Pod: { apiVersion: 'v1', plural: 'pods', group: '', namespaced: true },
  Service: { apiVersion: 'v1', plural: 'services', group: '', namespaced: true },
  ConfigMap: { apiVersion: 'v1', plural: 'configmaps', group: '', namespaced: true },
  Secret: { apiVersion: 'v1', plural: 'secrets', group: '', namespaced: true },
  ServiceAccount: { apiVersion: 'v1', plural: 'serviceaccounts', group: '', namespaced: true },
  Event: { apiVersion: 'v1', plural: 'events', group: '', namespaced: true },
  Namespace: { apiVersion: 'v1', plural: 'namespaces', group: '', namespaced: false },
  Node: { apiVersion: 'v1', plural: 'nodes', group: '', namespaced: false },
  Deployment: { apiVersion: 'apps/v1', plural: 'deployments', group: 'apps', namespaced: true },
  StatefulSet: { apiVersion: 'apps/v1', plural: 'statefulsets', group: 'apps', namespaced: true },
  DaemonSet: { apiVersion: 'apps/v1', plural: 'daemonsets', group: 'apps', namespaced: true },
  ReplicaSet: { apiVersion: 'apps/v1', plural: 'replicasets', group: 'apps', namespaced: true },
  Job: { apiVersion: 'batch/v1', plural: 'jobs', group: 'batch', namespaced: true },
  CronJob: { apiVersion: 'batch/v1', plural: 'cronjobs', group: 'batch', namespaced: true },
  Ingress: { apiVersion: 'networking.k8s.io/v1', plural: 'ingresses', group: 'networking.k8s.io', namespaced: true },
  HorizontalPodAutoscaler: { apiVersion: 'autoscaling/v2', plural: 'horizontalpodautoscalers', group: 'autoscaling', namespaced: true },
};

/** Kinds with a rollout (restart, wait for rollout complete). */
export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
/** Kinds with a scale subresource that `scale` drives. */
export const SCALABLE_KINDS = ['Deployment', 'StatefulSet', 'ReplicaSet'] as const;

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$';

export const nameSchema: JsonSchema = { description: 'Object name.', type: 'string', minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN };
export const namespaceSchema: JsonSchema = {
  description: "Namespace; defaults to the agent's own (service-account namespace, or the kubeconfig context's).",
  type: 'string',
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
};
export const apiVersionSchema: JsonSchema = { description: 'API version (`apps/v1`); needed only for kinds not in the known list.', type: 'string', minLength: 1 };
export const selectorSchema: JsonSchema = { description: 'Label selector (`app=web,tier!=db`).', type: 'string', minLength: 1 };

export function kindSchema(kinds?: readonly string[]): JsonSchema {
  return kinds
    ? { description: `Kind: ${kinds.join(', ')}.`, enum: [...kinds] }
    : { description: 'Kind (`Deployment`, `Pod`, any kind with apiVersion).', type: 'string', pattern: '^[A-Z][A-Za-z0-9]*$' };
}

export interface ObjectRef {
  apiVersion?: string;
  kind: string;
  namespace?: string;
  name: string;
}

/** The apiVersion of a target: given, or known for the kind. */
export function apiVersionOf(ref: { apiVersion?: string; kind: string }): string {
  if (ref.apiVersion) return ref.apiVersion;
  const known = KNOWN_KINDS[ref.kind];
  if (!known) throw new AgentError('validation_error', `kind ${ref.kind} is not one the agent knows by name; add apiVersion (known kinds: ${Object.keys(KNOWN_KINDS).join(', ')})`, { retryable: false });
  return known.apiVersion;
}

/** `deployments.apps` style resource name for messages and RBAC hints. */
export function resourceOf(kind: string, subresource?: string): string {
  const k = KNOWN_KINDS[kind];
  const plural = k ? k.plural : `${kind.toLowerCase()}s`;
  const group = k?.group ? `.${k.group}` : '';
  return `${plural}${subresource ? `/${subresource}` : ''}${group}`;
}

/** `Deployment default/web` for messages and logs. */
export function describe(ref: { kind: string; namespace?: string; name: string }): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}

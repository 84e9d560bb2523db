/**
 * The kinds the k8s actions know by name, and the input-schema pieces every
 * action shares (`kind`, `namespace`, `name` or `selector`).
 */
import { Type } from '@sinclair/typebox';
import { AgentError } from '../errors.js';
import { StringEnum } from '../shared/schemas.js';

/**
 * Kinds an input may name without `apiVersion`, with the version the agent uses. Any other kind needs
 * `apiVersion`. Whether a kind is namespaced, and its resource name, always come from discovery.
 */
export const KNOWN_KINDS: Record<string, string> = {
  Pod: 'v1',
  Service: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  ServiceAccount: 'v1',
  Event: 'v1',
  Namespace: 'v1',
  Node: 'v1',
  PersistentVolumeClaim: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  ReplicaSet: 'apps/v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
  Ingress: 'networking.k8s.io/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
};

/** Kinds with a rollout (restart, wait for rollout complete). */
export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
/** Kinds with a scale subresource that `scale` drives. */
export const SCALABLE_KINDS = ['Deployment', 'StatefulSet', 'ReplicaSet'] as const;

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$';

export const Name = Type.String({ description: 'Object name.', minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN });
export const Namespace = Type.String({
  description: "Namespace; defaults to the agent's own (service-account namespace, or the kubeconfig context's).",
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
});
export const ApiVersion = Type.String({
  description: 'API version (`apps/v1`); needed only for kinds not in the known list.',
  minLength: 1,
});
export const Selector = Type.String({ description: 'Label selector (`app=web,tier!=db`).', minLength: 1 });
/** Any kind: one the agent knows by name, or any other with apiVersion. */
export const AnyKind = Type.String({
  description: 'Kind (`Deployment`, `Pod`, any kind with apiVersion).',
  pattern: '^[A-Z][A-Za-z0-9]*$',
});

/** One of `kinds`. */
export function KindOf<const K extends readonly string[]>(kinds: K) {
  return StringEnum(kinds, { description: `Kind: ${kinds.join(', ')}.` });
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
  const known = Object.hasOwn(KNOWN_KINDS, ref.kind) ? KNOWN_KINDS[ref.kind] : undefined;
  if (known === undefined)
    throw new AgentError(
      'validation_error',
      `kind ${ref.kind} is not one the agent knows by name; add apiVersion (known kinds: ${Object.keys(KNOWN_KINDS).join(', ')})`,
      { retryable: false },
    );
  return known;
}

/** `Deployment default/web` for messages and logs. */
export function describe(ref: { kind: string; namespace?: string; name: string }): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}

/** The input properties that name any object: apiVersion (for kinds beyond the known ones), kind, namespace, name. */
export const ObjectRefProperties = {
  apiVersion: Type.Optional(ApiVersion),
  kind: AnyKind,
  namespace: Type.Optional(Namespace),
  name: Name,
};

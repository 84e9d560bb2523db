/**
 * metrics.k8s.io/v1beta1 as metrics-server serves it through the aggregation layer: PodMetrics
 * (`/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods[/{name}]`, `/apis/metrics.k8s.io/v1beta1/pods`) and
 * NodeMetrics (`/apis/metrics.k8s.io/v1beta1/nodes[/{name}]`), verbs get and list (labelSelector on the pod's
 * labels, fieldSelector metadata.name/metadata.namespace), usage as resource quantities in their canonical
 * form (cpu in n/m/cores, memory in Ki/Mi/Gi or bytes).
 *
 * Only pods with a usage sample are reported: a pod metrics-server has not scraped (here: no usage set for it)
 * is `404 podmetrics.metrics.k8s.io "x" not found` and absent from lists, as is a pod that does not exist.
 * `served = false` is a cluster without metrics-server: the group is absent from discovery and its paths 404.
 */
import { nowTimestamp, type KObj } from './json.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { err } from './status.js';

export const METRICS_GROUP = 'metrics.k8s.io';
export const METRICS_VERSION = 'v1beta1';
const API_VERSION = `${METRICS_GROUP}/${METRICS_VERSION}`;

/** A container's (or node's) usage: quantities as strings, or numbers (cpu in cores, memory in bytes). */
export interface Usage {
  cpu: string | number;
  memory: string | number;
}

/** Usage per container name. */
export type ContainerUsage = Record<string, Usage>;

export interface MetricsSampleOptions {
  /** Default `15s`. */
  window?: string;
  /** Default: the time of the request. */
  timestamp?: string;
}

export interface MetricsRoute {
  resource: 'pods' | 'nodes';
  namespace?: string;
  name?: string;
}

/** A cpu quantity in its canonical form: `250m`, `2`, `1234567n`. */
export function cpuQuantity(v: string | number): string {
  if (typeof v === 'string') return v;
  const nano = Math.round(v * 1e9);
  if (nano % 1e9 === 0) return String(nano / 1e9);
  if (nano % 1e6 === 0) return `${nano / 1e6}m`;
  return `${nano}n`;
}

/** A memory quantity in its canonical (binary) form: `64Mi`, `1Gi`, `1000`. */
export function memoryQuantity(v: string | number): string {
  if (typeof v === 'string') return v;
  const bytes = Math.round(v);
  for (const [suffix, size] of [
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ] as const)
    if (bytes !== 0 && bytes % size === 0) return `${bytes / size}${suffix}`;
  return String(bytes);
}

const usageOf = (u: Usage) => ({ cpu: cpuQuantity(u.cpu), memory: memoryQuantity(u.memory) });

/** `segs`: the path segments after `/apis/metrics.k8s.io/v1beta1`. */
export function parseMetricsPath(segs: string[]): MetricsRoute | undefined {
  let rest = segs;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length < 1 || rest.length > 2) return undefined;
  if (rest[0] !== 'pods' && rest[0] !== 'nodes') return undefined;
  if (rest[0] === 'nodes' && namespace !== undefined) return undefined;
  if (rest[0] === 'pods' && rest.length === 2 && namespace === undefined) return undefined;
  return {
    resource: rest[0],
    ...(namespace !== undefined ? { namespace } : {}),
    ...(rest[1] ? { name: rest[1] } : {}),
  };
}

export class MetricsApi {
  served = true;
  private readonly podSamples = new Map<string, { containers: ContainerUsage; opts: MetricsSampleOptions }>();
  private readonly nodeSamples = new Map<string, { usage: Usage; opts: MetricsSampleOptions }>();
  private readonly resolvers: Array<(pod: KObj) => ContainerUsage | undefined> = [];

  setPod(namespace: string, pod: string, containers: ContainerUsage, opts: MetricsSampleOptions = {}): void {
    this.podSamples.set(`${namespace}/${pod}`, { containers, opts });
  }

  /** Forgets a pod's sample (or every pod's in the namespace, or all). */
  clearPods(namespace?: string, pod?: string): void {
    for (const k of [...this.podSamples.keys()])
      if (
        namespace === undefined ||
        k === `${namespace}/${pod}` ||
        (pod === undefined && k.startsWith(`${namespace}/`))
      )
        this.podSamples.delete(k);
  }

  /** Usage for pods without a sample of their own (say, every pod of a Deployment); later resolvers first. */
  addResolver(fn: (pod: KObj) => ContainerUsage | undefined): void {
    this.resolvers.unshift(fn);
  }

  setNode(node: string, usage: Usage, opts: MetricsSampleOptions = {}): void {
    this.nodeSamples.set(node, { usage, opts });
  }

  private podItem(pod: KObj): Record<string, unknown> | undefined {
    const m = pod.metadata ?? {};
    const sample = this.podSamples.get(`${m.namespace}/${m.name}`);
    let containers = sample?.containers;
    for (const r of this.resolvers) {
      if (containers) break;
      containers = r(pod);
    }
    if (!containers) return undefined;
    const now = nowTimestamp();
    return {
      metadata: {
        name: m.name,
        namespace: m.namespace,
        creationTimestamp: now,
        ...(m.labels ? { labels: m.labels } : {}),
      },
      timestamp: sample?.opts.timestamp ?? now,
      window: sample?.opts.window ?? '15s',
      containers: Object.entries(containers).map(([name, u]) => ({ name, usage: usageOf(u) })),
    };
  }

  /** GET of one PodMetrics: 404 without a sample. */
  getPod(pod: KObj | undefined, name: string): Record<string, unknown> {
    const item = pod && this.podItem(pod);
    if (!item) throw err.notFound(METRICS_GROUP, 'podmetrics', name);
    return { kind: 'PodMetrics', apiVersion: API_VERSION, ...item };
  }

  listPods(pods: KObj[], q: URLSearchParams): Record<string, unknown> {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    for (const f of fields)
      if (f.field !== 'metadata.name' && f.field !== 'metadata.namespace')
        throw err.badRequest(`field label not supported: ${f.field}`);
    const items = pods
      .filter((p) => matchesLabels(labels, p.metadata?.labels))
      .filter((p) =>
        matchesFields(fields, {
          'metadata.name': p.metadata?.name ?? '',
          'metadata.namespace': p.metadata?.namespace ?? '',
        }),
      )
      .map((p) => this.podItem(p))
      .filter((x) => x !== undefined);
    return { kind: 'PodMetricsList', apiVersion: API_VERSION, metadata: {}, items };
  }

  private nodeItem(name: string): Record<string, unknown> | undefined {
    const s = this.nodeSamples.get(name);
    if (!s) return undefined;
    const now = nowTimestamp();
    return {
      metadata: { name, creationTimestamp: now },
      timestamp: s.opts.timestamp ?? now,
      window: s.opts.window ?? '15s',
      usage: usageOf(s.usage),
    };
  }

  getNode(name: string): Record<string, unknown> {
    const item = this.nodeItem(name);
    if (!item) throw err.notFound(METRICS_GROUP, 'nodemetrics', name);
    return { kind: 'NodeMetrics', apiVersion: API_VERSION, ...item };
  }

  listNodes(): Record<string, unknown> {
    const items = [...this.nodeSamples.keys()].sort().map((n) => this.nodeItem(n)!);
    return { kind: 'NodeMetricsList', apiVersion: API_VERSION, metadata: {}, items };
  }
}

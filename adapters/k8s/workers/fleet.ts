/**
 * FlowRunner workers as Kubernetes workloads: the Flow Manager's container commands, each one a few
 * requests through the agent's k8s connection, in one namespace, only on objects labelled as this
 * agent's workers. A worker is a Deployment (+ Service + control Secret); its pods run the FlowRunner
 * control API, reached through the API server's pod proxy.
 */
import type { StepContext } from '../../contract.js';
import { AgentError, type Problem } from '../../errors.js';
import type { K8sApi } from '../api.js';
import type { Clients } from '../connection.js';
import { RESTARTED_AT } from '../restart.js';
import { FIELD_MANAGER, type KObj, PATCH_CONTENT_TYPES, rawRequest } from '../runtime.js';
import { type PodAddress, toWorker, type WorkerAnswer } from './control.js';
import { containerError, notFound } from './errors.js';
import {
  type CreateWorkerInput,
  environmentOf,
  type SendMessageInput,
  type StartWorkerInput,
  throwProblems,
  type UpdateWorkerInput,
  volumeMounts,
  type WorkerRef,
} from './inputs.js';
import { isManaged, managedSelector, WORKER_NAME } from './labels.js';
import { controlSecret, secretName, WORKER_CONTAINER, workerDeployment, workerService } from './manifests.js';
import {
  IMAGE_REASONS,
  CRASH_REASONS,
  type PodView,
  podView,
  type WorkerHealth,
  type WorkerStatus,
  workerState,
} from './pods.js';
import { bytes, millicores } from './quantity.js';

export interface FleetSettings {
  /** Where workers live (default: the k8s connection's namespace). */
  namespace?: string;
  /** The worker image (this product's own). */
  image: string;
  /** The port the worker's control API listens on. */
  controlPort: number;
  /** This agent's name, on every worker's runtime-agent.io/manager label. */
  manager: string;
  /** How long start_container waits for the worker to become Available. */
  readyTimeoutMs: number;
  /** How often a wait reads the Deployment and pods again. */
  pollMs?: number;
  /** How long one request to a worker's control API may take. */
  requestTimeoutMs?: number;
}

type Ctx = Pick<StepContext, 'signal'>;

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
  resource_usage: {
    cpu_millicores: number | null;
    memory_bytes: number | null;
    cpu_percent: number | null;
    memory_percent: number | null;
  };
  /** Each ready pod's `/api/metrics`, or why it could not be read. */
  flow: Array<{ pod: string; metrics?: unknown; error?: string }>;
}

/** get_container_status reads the flow numbers of at most this many pods, this many at a time. */
const STATUS_PODS = 20;
const STATUS_READS_AT_ONCE = 5;

/** `work` over `items`, at most `n` at a time, results in order. */
async function inBatches<T, R>(items: T[], n: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += n) out.push(...(await Promise.all(items.slice(i, i + n).map(work))));
  return out;
}

const MESSAGE_ROUTES = {
  start: { method: 'POST', path: '/api/start' },
  stop: { method: 'POST', path: '/api/stop' },
  update: { method: 'POST', path: '/api/update' },
  status: { method: 'GET', path: '/api/metrics' },
} as const;

export class WorkerFleet {
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly k8s: K8sApi,
    readonly settings: FleetSettings,
  ) {}

  /** The clients and the namespace workers live in. */
  async place(): Promise<{ clients: Clients; namespace: string }> {
    const clients = await this.k8s.clients();
    return { clients, namespace: this.settings.namespace ?? clients.namespace };
  }

  async create(ctx: Ctx, input: CreateWorkerInput): Promise<WorkerView> {
    const problems: Problem[] = [];
    if (!WORKER_NAME.test(input.name))
      problems.push({
        path: 'name',
        message: 'must be a DNS label: lower-case letters, digits and -, starting with a letter, at most 47 characters',
      });
    const env = environmentOf(input.environment ?? {}, problems);
    const mounts = volumeMounts(input.volumes ?? {}, problems);
    const ports = Object.entries(input.ports ?? {}).flatMap(([from, to]) => {
      if (String(Number(from)) !== from || Number(from) !== to) {
        problems.push({
          path: `ports.${from}`,
          message: 'a pod exposes its own ports: give { "<port>": <same port> }',
        });
        return [];
      }
      return [to];
    });
    throwProblems('create_container', problems);
    const { clients, namespace } = await this.place();
    const existing = await this.read(ctx, clients, namespace, input.name, { any: true });
    if (existing)
      throw containerError(
        'conflict',
        'validation_error',
        `a Deployment named ${input.name} already exists in ${namespace}; start it, or delete it first`,
        {
          retryable: false,
          details: { container_id: input.name, managed: isManaged(existing, this.settings.manager) },
        },
      );
    const shape = {
      namespace,
      name: input.name,
      manager: this.settings.manager,
      image: input.image ?? this.settings.image,
      controlPort: this.settings.controlPort,
      env,
      ports,
      mounts,
      netAdmin: input.traffic_control === true,
    };
    // A delete that failed half-way may have left this agent's Service or Secret of that name behind.
    await this.removeParts(ctx, clients, namespace, input.name);
    const { secret, token } = controlSecret(shape);
    const made: Array<{ path: string }> = [];
    try {
      for (const [collection, obj] of [
        [`/api/v1/namespaces/${namespace}/secrets`, secret],
        [`/apis/apps/v1/namespaces/${namespace}/deployments`, workerDeployment(shape)],
        [`/api/v1/namespaces/${namespace}/services`, workerService(shape)],
      ] as const) {
        await rawRequest(ctx, clients, `create ${obj.kind} ${namespace}/${obj.metadata?.name}`, {
          method: 'POST',
          path: collection,
          query: { fieldManager: FIELD_MANAGER },
          body: obj,
        });
        made.push({ path: `${collection}/${obj.metadata?.name}` });
      }
    } catch (err) {
      // Nothing half-made stays behind: what was created is deleted again (best effort, without the caller's signal).
      const cleanup = { signal: AbortSignal.timeout(10_000) };
      for (const m of made.reverse())
        await rawRequest(cleanup, clients, 'clean up', { method: 'DELETE', path: m.path }).catch(() => {});
      throw err;
    }
    this.tokens.set(`${namespace}/${input.name}`, token);
    return this.view(await this.get(ctx, clients, namespace, input.name), []);
  }

  /** Scales the worker to `replicas` (default 1) and waits until they are Available. */
  async start(ctx: Ctx, input: StartWorkerInput): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    await this.get(ctx, clients, namespace, input.container_id);
    await this.scale(ctx, clients, namespace, input.container_id, input.replicas ?? 1);
    return this.waitAvailable(ctx, input.container_id);
  }

  async stop(ctx: Ctx, input: WorkerRef): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    await this.get(ctx, clients, namespace, input.container_id);
    const d = await this.scale(ctx, clients, namespace, input.container_id, 0);
    return this.view(d, []);
  }

  /** A rollout restart, as `kubectl rollout restart` does it: a new pod template annotation. */
  async restart(ctx: Ctx, input: WorkerRef): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    await this.get(ctx, clients, namespace, input.container_id);
    const d = await this.patch(ctx, clients, namespace, input.container_id, {
      spec: { template: { metadata: { annotations: { [RESTARTED_AT]: new Date().toISOString() } } } },
    });
    return this.view(d, await this.pods(ctx, input.container_id));
  }

  /** A new image or environment in the pod template (a rolling update of running pods). */
  async update(ctx: Ctx, input: UpdateWorkerInput): Promise<WorkerView> {
    const problems: Problem[] = [];
    const env = input.environment ? environmentOf(input.environment, problems) : undefined;
    if (!input.image && !input.environment) problems.push({ path: '', message: 'give image or environment (or both)' });
    throwProblems('update_container', problems);
    const { clients, namespace } = await this.place();
    await this.get(ctx, clients, namespace, input.container_id);
    const container: Record<string, unknown> = { name: WORKER_CONTAINER };
    if (input.image) container.image = input.image;
    if (env) container.env = env;
    const d = await this.patch(ctx, clients, namespace, input.container_id, {
      spec: { template: { spec: { containers: [container] } } },
    });
    return this.view(d, await this.pods(ctx, input.container_id));
  }

  /** Deletes the Deployment (its pods go with it), the Service and the control Secret. */
  /**
   * Deletes the Service and the control Secret (when they are this agent's), then the Deployment (its pods
   * go with it): a delete that fails half-way leaves the Deployment, so it can be retried.
   */
  async remove(ctx: Ctx, input: WorkerRef): Promise<{ container_id: string; namespace: string }> {
    const { clients, namespace } = await this.place();
    await this.get(ctx, clients, namespace, input.container_id);
    const name = input.container_id;
    await this.removeParts(ctx, clients, namespace, name);
    await rawRequest(ctx, clients, `delete Deployment ${namespace}/${name}`, {
      method: 'DELETE',
      path: `/apis/apps/v1/namespaces/${namespace}/deployments/${encodeURIComponent(name)}`,
      query: { propagationPolicy: 'Background' },
    });
    this.tokens.delete(`${namespace}/${name}`);
    return { container_id: name, namespace };
  }

  /** Deletes the worker's Service and Secret when they exist and carry this agent's labels. */
  private async removeParts(ctx: Ctx, clients: Clients, namespace: string, name: string): Promise<void> {
    for (const path of [
      `/api/v1/namespaces/${namespace}/services/${encodeURIComponent(name)}`,
      `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(secretName(name))}`,
    ]) {
      const obj = await rawRequest<KObj>(ctx, clients, `get ${path}`, { method: 'GET', path }).catch((err: unknown) => {
        if (err instanceof AgentError && err.type === 'not_found') return undefined;
        throw err;
      });
      if (!isManaged(obj, this.settings.manager)) continue;
      await rawRequest(ctx, clients, `delete ${path}`, { method: 'DELETE', path }).catch((err: unknown) => {
        if (!(err instanceof AgentError && err.type === 'not_found')) throw err;
      });
    }
  }

  async list(ctx: Ctx): Promise<WorkerView[]> {
    const { clients, namespace } = await this.place();
    const [deployments, pods] = await Promise.all([
      rawRequest<{ items: KObj[] }>(ctx, clients, `list workers in ${namespace}`, {
        method: 'GET',
        path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
        query: { labelSelector: managedSelector(this.settings.manager) },
      }),
      this.podList(ctx, clients, namespace),
    ]);
    return deployments.items
      .filter((d) => isManaged(d, this.settings.manager))
      .map((d) =>
        this.view(
          d,
          pods.filter((p) => p.instance === d.metadata?.name).map((p) => p.view),
        ),
      );
  }

  /**
   * The worker in detail. `flows`: also each ready pod's `/api/metrics` (its flow's numbers and
   * configuration), read from at most STATUS_PODS pods, STATUS_READS_AT_ONCE at a time.
   */
  async status(ctx: Ctx, input: WorkerRef, options: { flows: boolean } = { flows: true }): Promise<WorkerDetail> {
    const { clients, namespace } = await this.place();
    const d = await this.get(ctx, clients, namespace, input.container_id);
    const pods = await this.pods(ctx, input.container_id);
    const read = options.flows ? pods.filter((p) => p.ready).slice(0, STATUS_PODS) : [];
    const [usage, flow] = await Promise.all([
      this.usage(ctx, clients, namespace, input.container_id, d),
      inBatches(read, STATUS_READS_AT_ONCE, async (p) => {
        try {
          const a = await this.send1(ctx, input.container_id, p.name, MESSAGE_ROUTES.status);
          return a.status < 300 ? { pod: p.name, metrics: a.body } : { pod: p.name, error: `HTTP ${a.status}` };
        } catch (err) {
          return { pod: p.name, error: (err as Error).message };
        }
      }),
    ]);
    return { ...this.view(d, pods), pods, resource_usage: usage, flow };
  }

  /** The worker's pods, in a few fields each. */
  async pods(ctx: Ctx, name: string): Promise<PodView[]> {
    const { clients, namespace } = await this.place();
    return (await this.podList(ctx, clients, namespace, name)).map((p) => p.view);
  }

  /**
   * Sends `message` to the worker's control API: to one pod when `pod` is given, else to every ready
   * pod at once. Answers per pod, whatever their status; failing to reach a pod throws.
   */
  async send(ctx: Ctx, input: SendMessageInput): Promise<WorkerAnswer[]> {
    const route = MESSAGE_ROUTES[input.message.command];
    const { clients, namespace } = await this.place();
    await this.get(ctx, clients, namespace, input.container_id);
    const pods = await this.pods(ctx, input.container_id);
    if (input.pod && !pods.some((p) => p.name === input.pod))
      throw containerError('not_found', 'container_not_found', `worker ${input.container_id} has no pod ${input.pod}`, {
        retryable: false,
        details: { container_id: input.container_id, pod: input.pod },
      });
    const targets = input.pod ? [input.pod] : pods.filter((p) => p.ready).map((p) => p.name);
    if (targets.length === 0)
      throw containerError(
        'conflict',
        'socket_connection_error',
        `worker ${namespace}/${input.container_id} has no ready pod; start_container first`,
        {
          retryable: false,
          details: { container_id: input.container_id, pods: pods.length },
        },
      );
    const body = route.method === 'POST' ? (input.message.data ?? {}) : undefined;
    return Promise.all(targets.map((pod) => this.send1(ctx, input.container_id, pod, { ...route, body })));
  }

  /** One request to one pod of the worker. */
  async send1(
    ctx: Ctx,
    name: string,
    pod: string,
    req: { method: 'GET' | 'POST'; path: string; body?: unknown },
  ): Promise<WorkerAnswer> {
    const { clients, namespace } = await this.place();
    const to: PodAddress = { namespace, pod, port: this.settings.controlPort };
    const timeoutMs = this.settings.requestTimeoutMs ?? 10_000;
    const answer = await toWorker(ctx, clients, to, await this.token(ctx, clients, namespace, name), req, timeoutMs);
    if (answer.status !== 401) return answer;
    // The worker was made again (by another replica of this agent, say): read its token once more.
    this.tokens.delete(`${namespace}/${name}`);
    return toWorker(ctx, clients, to, await this.token(ctx, clients, namespace, name), req, timeoutMs);
  }

  /** Waits until the worker's Deployment is Available with every replica; image and crash failures end it early. */
  async waitAvailable(ctx: Ctx, name: string, timeoutMs = this.settings.readyTimeoutMs): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = await this.get(ctx, clients, namespace, name);
      const pods = await this.pods(ctx, name);
      const view = this.view(d, pods);
      if (view.status === 'running' && (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0))
        return view;
      const image = pods.find((p) => p.reason && IMAGE_REASONS.has(p.reason));
      if (image)
        throw containerError(
          'validation_error',
          'image_not_found',
          `worker ${namespace}/${name}: pod ${image.name} cannot pull its image (${image.reason}${image.message ? `: ${image.message}` : ''})`,
          {
            retryable: false,
            details: { container_id: name, pod: image.name, reason: image.reason, image: view.image },
          },
        );
      const crash = pods.find((p) => p.reason && CRASH_REASONS.has(p.reason));
      if (crash)
        throw containerError(
          'command_failed',
          'system_error',
          `worker ${namespace}/${name}: pod ${crash.name} is crashing (${crash.reason}, ${crash.restarts} restarts); its logs say why`,
          {
            retryable: false,
            details: { container_id: name, pod: crash.name, reason: crash.reason, restarts: crash.restarts },
          },
        );
      if (Date.now() >= deadline)
        throw containerError(
          'timeout',
          'system_error',
          `worker ${namespace}/${name} was not Available within ${Math.round(timeoutMs / 1000)} s (${view.ready_replicas}/${view.replicas} ready)`,
          {
            details: { container_id: name, pods },
          },
        );
      await pause(this.settings.pollMs ?? 500, ctx.signal);
    }
  }

  view(d: KObj, pods: PodView[]): WorkerView {
    const name = d.metadata?.name ?? '';
    const container = (d.spec?.template?.spec?.containers ?? []).find(
      (c: { name?: string }) => c.name === WORKER_CONTAINER,
    );
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

  /** The worker's Deployment; container_not_found unless it is one of this agent's workers. */
  private async get(ctx: Ctx, clients: Clients, namespace: string, name: string): Promise<KObj> {
    const d = await this.read(ctx, clients, namespace, name, { any: false });
    if (!d) throw notFound(name, namespace);
    return d;
  }

  private async read(
    ctx: Ctx,
    clients: Clients,
    namespace: string,
    name: string,
    o: { any: boolean },
  ): Promise<KObj | undefined> {
    try {
      const d = await rawRequest<KObj>(ctx, clients, `get worker ${namespace}/${name}`, {
        method: 'GET',
        path: `/apis/apps/v1/namespaces/${namespace}/deployments/${encodeURIComponent(name)}`,
      });
      return o.any || isManaged(d, this.settings.manager) ? d : undefined;
    } catch (err) {
      if (err instanceof AgentError && err.type === 'not_found') return undefined;
      throw err;
    }
  }

  private async podList(
    ctx: Ctx,
    clients: Clients,
    namespace: string,
    name?: string,
  ): Promise<Array<{ instance: string; view: PodView }>> {
    const list = await rawRequest<{ items: KObj[] }>(ctx, clients, `list worker pods in ${namespace}`, {
      method: 'GET',
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { labelSelector: managedSelector(this.settings.manager, name) },
    });
    return list.items
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => ({ instance: p.metadata?.labels?.['app.kubernetes.io/instance'] ?? '', view: podView(p) }))
      .sort((a, b) => a.view.name.localeCompare(b.view.name));
  }

  private scale(ctx: Ctx, clients: Clients, namespace: string, name: string, replicas: number): Promise<KObj> {
    return this.patch(ctx, clients, namespace, name, { spec: { replicas } });
  }

  private patch(ctx: Ctx, clients: Clients, namespace: string, name: string, body: unknown): Promise<KObj> {
    return rawRequest<KObj>(ctx, clients, `patch worker ${namespace}/${name}`, {
      method: 'PATCH',
      path: `/apis/apps/v1/namespaces/${namespace}/deployments/${encodeURIComponent(name)}`,
      query: { fieldManager: FIELD_MANAGER },
      contentType: PATCH_CONTENT_TYPES.strategic,
      body,
    });
  }

  private async token(ctx: Ctx, clients: Clients, namespace: string, name: string): Promise<string> {
    const key = `${namespace}/${name}`;
    const known = this.tokens.get(key);
    if (known) return known;
    const secret = await rawRequest<KObj & { data?: Record<string, string> }>(
      ctx,
      clients,
      `read the control token of worker ${key}`,
      {
        method: 'GET',
        path: `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(secretName(name))}`,
      },
    );
    const token = secret.data?.token ? Buffer.from(secret.data.token, 'base64').toString('utf8') : '';
    if (!token)
      throw containerError(
        'adapter_error',
        'system_error',
        `worker ${key}: its Secret ${secretName(name)} holds no token; delete and create the worker again`,
        { retryable: false },
      );
    this.tokens.set(key, token);
    return token;
  }

  private async usage(
    ctx: Ctx,
    clients: Clients,
    namespace: string,
    name: string,
    d: KObj,
  ): Promise<WorkerDetail['resource_usage']> {
    const none = { cpu_millicores: null, memory_bytes: null, cpu_percent: null, memory_percent: null };
    let list: { items?: Array<{ containers?: Array<{ name?: string; usage?: Record<string, string> }> }> };
    try {
      list = await rawRequest(ctx, clients, `read the metrics of worker ${namespace}/${name}`, {
        method: 'GET',
        path: `/apis/metrics.k8s.io/v1beta1/namespaces/${namespace}/pods`,
        query: { labelSelector: managedSelector(this.settings.manager, name) },
      });
    } catch (err) {
      if (err instanceof AgentError && (err.type === 'not_found' || err.type === 'forbidden')) return none;
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
    if (samples === 0) return none;
    const limits =
      (d.spec?.template?.spec?.containers ?? []).find((c: { name?: string }) => c.name === WORKER_CONTAINER)?.resources
        ?.limits ?? {};
    const cpuLimit = millicores(limits.cpu);
    const memLimit = bytes(limits.memory);
    const pct = (v: number, limit: number | undefined) =>
      limit ? Math.round((1000 * v) / (limit * samples)) / 10 : null;
    return {
      cpu_millicores: cpu,
      memory_bytes: memory,
      cpu_percent: pct(cpu, cpuLimit),
      memory_percent: pct(memory, memLimit),
    };
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AgentError('cancelled', 'the wait was cancelled'));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new AgentError('cancelled', 'the wait was cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * FlowRunner workers as Kubernetes workloads: the Flow Manager's container commands, each one a few
 * requests through the agent's k8s connection, in one namespace, only on objects labelled as this
 * agent's workers. A worker is a Deployment (+ Service + control Secret); its pods run the FlowRunner
 * control API, reached through the API server's pod proxy.
 */
import type { StepContext } from '../../contract.js';
import type { Problem } from '../../errors.js';
import type { K8sApi } from '../api.js';
import type { Clients } from '../connection.js';
import { RESTARTED_AT } from '../restart.js';
import { FIELD_MANAGER, rawRequest } from '../runtime.js';
import { cannotBecomeAvailable, notAvailableInTime, pause } from './availability.js';
import { type PodAddress, toWorker, type WorkerAnswer } from './control.js';
import { containerError } from './errors.js';
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
import { controlSecret, WORKER_CONTAINER, workerDeployment, workerService } from './manifests.js';
import { WorkerObjects } from './objects.js';
import type { PodView } from './pods.js';
import { resourceUsage } from './usage.js';
import { type WorkerDetail, type WorkerView, workerView } from './view.js';

export type { WorkerDetail, WorkerView } from './view.js';

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
  private readonly objects: WorkerObjects;

  constructor(
    private readonly k8s: K8sApi,
    readonly settings: FleetSettings,
  ) {
    this.objects = new WorkerObjects(settings.manager);
  }

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
    const existing = await this.objects.read(ctx, clients, namespace, input.name, { any: true });
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
    await this.objects.removeParts(ctx, clients, namespace, input.name);
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
    this.objects.rememberToken(namespace, input.name, token);
    return workerView(await this.objects.get(ctx, clients, namespace, input.name), []);
  }

  /** Scales the worker to `replicas` (default 1) and waits until they are Available. */
  async start(ctx: Ctx, input: StartWorkerInput): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    await this.objects.get(ctx, clients, namespace, input.container_id);
    await this.objects.patch(ctx, clients, namespace, input.container_id, { spec: { replicas: input.replicas ?? 1 } });
    return this.waitAvailable(ctx, input.container_id);
  }

  async stop(ctx: Ctx, input: WorkerRef): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    await this.objects.get(ctx, clients, namespace, input.container_id);
    const d = await this.objects.patch(ctx, clients, namespace, input.container_id, { spec: { replicas: 0 } });
    return workerView(d, []);
  }

  /** A rollout restart, as `kubectl rollout restart` does it: a new pod template annotation. */
  async restart(ctx: Ctx, input: WorkerRef): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    await this.objects.get(ctx, clients, namespace, input.container_id);
    const d = await this.objects.patch(ctx, clients, namespace, input.container_id, {
      spec: { template: { metadata: { annotations: { [RESTARTED_AT]: new Date().toISOString() } } } },
    });
    return workerView(d, await this.pods(ctx, input.container_id));
  }

  /** A new image or environment in the pod template (a rolling update of running pods). */
  async update(ctx: Ctx, input: UpdateWorkerInput): Promise<WorkerView> {
    const problems: Problem[] = [];
    const env = input.environment ? environmentOf(input.environment, problems) : undefined;
    if (!input.image && !input.environment) problems.push({ path: '', message: 'give image or environment (or both)' });
    throwProblems('update_container', problems);
    const { clients, namespace } = await this.place();
    await this.objects.get(ctx, clients, namespace, input.container_id);
    const container: Record<string, unknown> = { name: WORKER_CONTAINER };
    if (input.image) container.image = input.image;
    if (env) container.env = env;
    const d = await this.objects.patch(ctx, clients, namespace, input.container_id, {
      spec: { template: { spec: { containers: [container] } } },
    });
    return workerView(d, await this.pods(ctx, input.container_id));
  }

  /**
   * Deletes the Service and the control Secret (when they are this agent's), then the Deployment (its pods
   * go with it): a delete that fails half-way leaves the Deployment, so it can be retried.
   */
  async remove(ctx: Ctx, input: WorkerRef): Promise<{ container_id: string; namespace: string }> {
    const { clients, namespace } = await this.place();
    const name = input.container_id;
    await this.objects.get(ctx, clients, namespace, name);
    await this.objects.removeParts(ctx, clients, namespace, name);
    await this.objects.deleteDeployment(ctx, clients, namespace, name);
    return { container_id: name, namespace };
  }

  async list(ctx: Ctx): Promise<WorkerView[]> {
    const { clients, namespace } = await this.place();
    const [deployments, pods] = await Promise.all([
      this.objects.list(ctx, clients, namespace),
      this.objects.pods(ctx, clients, namespace),
    ]);
    return deployments.map((d) =>
      workerView(
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
    const d = await this.objects.get(ctx, clients, namespace, input.container_id);
    const pods = await this.pods(ctx, input.container_id);
    const read = options.flows ? pods.filter((p) => p.ready).slice(0, STATUS_PODS) : [];
    const [usage, flow] = await Promise.all([
      resourceUsage(ctx, clients, d, managedSelector(this.settings.manager, input.container_id)),
      inBatches(read, STATUS_READS_AT_ONCE, async (p) => {
        try {
          const a = await this.send1(ctx, input.container_id, p.name, MESSAGE_ROUTES.status);
          return a.status < 300 ? { pod: p.name, metrics: a.body } : { pod: p.name, error: `HTTP ${a.status}` };
        } catch (err) {
          return { pod: p.name, error: (err as Error).message };
        }
      }),
    ]);
    return { ...workerView(d, pods), pods, resource_usage: usage, flow };
  }

  /** The worker's pods, in a few fields each. */
  async pods(ctx: Ctx, name: string): Promise<PodView[]> {
    const { clients, namespace } = await this.place();
    return (await this.objects.pods(ctx, clients, namespace, name)).map((p) => p.view);
  }

  /**
   * Sends `message` to the worker's control API: to one pod when `pod` is given, else to every ready
   * pod at once. Answers per pod, whatever their status; failing to reach a pod throws.
   */
  async send(ctx: Ctx, input: SendMessageInput): Promise<WorkerAnswer[]> {
    const route = MESSAGE_ROUTES[input.message.command];
    const { clients, namespace } = await this.place();
    await this.objects.get(ctx, clients, namespace, input.container_id);
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
    const token = () => this.objects.token(ctx, clients, namespace, name);
    const answer = await toWorker(ctx, clients, to, await token(), req, timeoutMs);
    if (answer.status !== 401) return answer;
    // The worker was made again (by another replica of this agent, say): read its token once more.
    this.objects.forgetToken(namespace, name);
    return toWorker(ctx, clients, to, await token(), req, timeoutMs);
  }

  /** Waits until the worker's Deployment is Available with every replica; image and crash failures end it early. */
  async waitAvailable(ctx: Ctx, name: string, timeoutMs = this.settings.readyTimeoutMs): Promise<WorkerView> {
    const { clients, namespace } = await this.place();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = await this.objects.get(ctx, clients, namespace, name);
      const pods = await this.pods(ctx, name);
      const view = workerView(d, pods);
      if (view.status === 'running' && (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0))
        return view;
      const failed = cannotBecomeAvailable(view, pods);
      if (failed) throw failed;
      if (Date.now() >= deadline) throw notAvailableInTime(view, pods, timeoutMs);
      await pause(this.settings.pollMs ?? 500, ctx.signal);
    }
  }
}

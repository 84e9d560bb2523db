/**
 * The Kubernetes objects of this agent's workers, read and changed through the agent's k8s connection:
 * only those labelled as this agent's count as its workers. Control tokens are read from the workers'
 * Secrets once and kept.
 */
import type { StepContext } from '../../contract.js';
import { AgentError } from '../../errors.js';
import type { Clients } from '../connection.js';
import { FIELD_MANAGER, type KObj, PATCH_CONTENT_TYPES, rawRequest } from '../runtime.js';
import { containerError, notFound } from './errors.js';
import { isManaged, managedSelector } from './labels.js';
import { secretName } from './manifests.js';
import { type PodView, podView } from './pods.js';

type Ctx = Pick<StepContext, 'signal'>;

const deploymentPath = (namespace: string, name: string) =>
  `/apis/apps/v1/namespaces/${namespace}/deployments/${encodeURIComponent(name)}`;

const isNotFound = (err: unknown) => err instanceof AgentError && err.type === 'not_found';

export class WorkerObjects {
  private readonly tokens = new Map<string, string>();

  constructor(private readonly manager: string) {}

  /** The worker's Deployment; container_not_found unless it is one of this agent's workers. */
  async get(ctx: Ctx, clients: Clients, namespace: string, name: string): Promise<KObj> {
    const d = await this.read(ctx, clients, namespace, name, { any: false });
    if (!d) throw notFound(name, namespace);
    return d;
  }

  /** The Deployment of that name: any (`any`), or only this agent's; undefined when there is none. */
  async read(ctx: Ctx, clients: Clients, namespace: string, name: string, o: { any: boolean }) {
    try {
      const d = await rawRequest<KObj>(ctx, clients, `get worker ${namespace}/${name}`, {
        method: 'GET',
        path: deploymentPath(namespace, name),
      });
      return o.any || isManaged(d, this.manager) ? d : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** This agent's worker Deployments in `namespace`. */
  async list(ctx: Ctx, clients: Clients, namespace: string): Promise<KObj[]> {
    const list = await rawRequest<{ items: KObj[] }>(ctx, clients, `list workers in ${namespace}`, {
      method: 'GET',
      path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
      query: { labelSelector: managedSelector(this.manager) },
    });
    return list.items.filter((d) => isManaged(d, this.manager));
  }

  /** The pods of worker `name` (of every worker without it) not being deleted, by name, with the worker each is of. */
  async pods(
    ctx: Ctx,
    clients: Clients,
    namespace: string,
    name?: string,
  ): Promise<Array<{ instance: string; view: PodView }>> {
    const list = await rawRequest<{ items: KObj[] }>(ctx, clients, `list worker pods in ${namespace}`, {
      method: 'GET',
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { labelSelector: managedSelector(this.manager, name) },
    });
    return list.items
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => ({ instance: p.metadata?.labels?.['app.kubernetes.io/instance'] ?? '', view: podView(p) }))
      .sort((a, b) => a.view.name.localeCompare(b.view.name));
  }

  /** A strategic-merge patch of the worker's Deployment. */
  patch(ctx: Ctx, clients: Clients, namespace: string, name: string, body: unknown): Promise<KObj> {
    return rawRequest<KObj>(ctx, clients, `patch worker ${namespace}/${name}`, {
      method: 'PATCH',
      path: deploymentPath(namespace, name),
      query: { fieldManager: FIELD_MANAGER },
      contentType: PATCH_CONTENT_TYPES.strategic,
      body,
    });
  }

  /** Deletes the Deployment; its pods go with it. */
  async deleteDeployment(ctx: Ctx, clients: Clients, namespace: string, name: string): Promise<void> {
    await rawRequest(ctx, clients, `delete Deployment ${namespace}/${name}`, {
      method: 'DELETE',
      path: deploymentPath(namespace, name),
      query: { propagationPolicy: 'Background' },
    });
    this.tokens.delete(`${namespace}/${name}`);
  }

  /** Deletes the worker's Service and Secret when they exist and carry this agent's labels. */
  async removeParts(ctx: Ctx, clients: Clients, namespace: string, name: string): Promise<void> {
    for (const path of [
      `/api/v1/namespaces/${namespace}/services/${encodeURIComponent(name)}`,
      `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(secretName(name))}`,
    ]) {
      const obj = await rawRequest<KObj>(ctx, clients, `get ${path}`, { method: 'GET', path }).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!isManaged(obj, this.manager)) continue;
      await rawRequest(ctx, clients, `delete ${path}`, { method: 'DELETE', path }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }

  /** The token of a worker this agent has just made. */
  rememberToken(namespace: string, name: string, token: string): void {
    this.tokens.set(`${namespace}/${name}`, token);
  }

  /** A worker's token was refused: it will be read from its Secret again. */
  forgetToken(namespace: string, name: string): void {
    this.tokens.delete(`${namespace}/${name}`);
  }

  /** The worker's control token, from its Secret the first time. */
  async token(ctx: Ctx, clients: Clients, namespace: string, name: string): Promise<string> {
    const key = `${namespace}/${name}`;
    const known = this.tokens.get(key);
    if (known) return known;
    const secret = await rawRequest<KObj & { data?: Record<string, string> }>(
      ctx,
      clients,
      `read the control token of worker ${key}`,
      { method: 'GET', path: `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(secretName(name))}` },
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
}

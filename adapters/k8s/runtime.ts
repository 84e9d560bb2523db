/** What every k8s action shares: the connection, the object locks, and small helpers around client-node calls. */
import { ApiException, HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, type KubernetesObject, type V1APIResource } from '@kubernetes/client-node';
import type { StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import type { Clients, KubeConnection } from './connection.js';
import { abortable, toK8sError } from './errors.js';
import { apiVersionOf, describe, type ObjectRef } from './kinds.js';
import { ObjectLocks, lockKey } from './locks.js';

/** The field manager of every write the agent makes (server-side apply, patches, scale). */
export const FIELD_MANAGER = 'runtime-agent';

export interface K8sRuntime {
  conn: KubeConnection;
  locks: ObjectLocks;
}

/** A target with its apiVersion and namespace filled in. */
export interface Target {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export function resolveTarget(clients: Clients, ref: ObjectRef): Target {
  return { apiVersion: apiVersionOf(ref), kind: ref.kind, namespace: ref.namespace ?? clients.namespace, name: ref.name };
}

/** The object header KubernetesObjectApi builds URLs from. */
export function header(t: Target): KubernetesObject & { apiVersion: string; kind: string; metadata: { name: string; namespace: string } } {
  return { apiVersion: t.apiVersion, kind: t.kind, metadata: { name: t.name, namespace: t.namespace } };
}

/** Runs one client-node call: abortable by the step's signal, failures mapped to the taxonomy with `what` in the message. */
export async function call<T>(ctx: Pick<StepContext, 'signal'>, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await abortable(work(), ctx.signal);
  } catch (err) {
    throw toK8sError(err, what, ctx.signal);
  }
}

/** The object, or undefined when the API server says 404. */
export async function readOrAbsent(ctx: Pick<StepContext, 'signal'>, clients: Clients, t: Target): Promise<KubernetesObject | undefined> {
  try {
    return await call(ctx, `GET ${describe(t)}`, () => clients.objects.read(header(t)));
  } catch (err) {
    if (err instanceof AgentError && err.type === 'not_found') return undefined;
    throw err;
  }
}

/** Runs `work` holding the target's lock (see locks.ts). */
export function locked<T>(rt: K8sRuntime, ctx: StepContext, t: Target, work: () => Promise<T>): Promise<T> {
  return rt.locks.withLock(lockKey(t), ctx, work);
}

/** `All` in a dry run: the API server validates and answers without persisting. */
export function dryRunParam(ctx: Pick<StepContext, 'dryRun'>): string | undefined {
  return ctx.dryRun ? 'All' : undefined;
}

/** A plain-JSON copy (client-node turns timestamps into Date objects). */
export function plain<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** Fields the API server owns; a recorded object without them can be created or put back. */
export function snapshot(obj: KubernetesObject): KubernetesObject {
  const copy = plain(obj) as KubernetesObject & { status?: unknown };
  delete copy.status;
  if (copy.metadata) {
    for (const k of ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'] as const) {
      delete (copy.metadata as Record<string, unknown>)[k];
    }
  }
  return copy;
}

/** The API resource of a kind, through discovery (KubernetesObjectApi caches it; the method is protected there). */
export function discover(clients: Clients, apiVersion: string, kind: string): Promise<V1APIResource | undefined> {
  return (clients.objects as unknown as { resource(a: string, k: string): Promise<V1APIResource | undefined> }).resource(apiVersion, kind);
}

/** The URL path of an object (or of its collection, without a name), resolved through discovery. */
export async function objectPath(ctx: Pick<StepContext, 'signal'>, clients: Clients, t: Pick<Target, 'apiVersion' | 'kind' | 'namespace'> & { name?: string }): Promise<string> {
  const resource = await call(ctx, `discover ${t.apiVersion} ${t.kind}`, () => discover(clients, t.apiVersion, t.kind));
  if (!resource) throw new AgentError('validation_error', `the API server has no kind ${t.kind} in ${t.apiVersion}`, { retryable: false });
  const base = t.apiVersion.includes('/') ? `/apis/${t.apiVersion}` : `/api/${t.apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(t.namespace)}` : '';
  return `${base}${ns}/${resource.name}${t.name ? `/${encodeURIComponent(t.name)}` : ''}`;
}

const http = new IsomorphicFetchHttpLibrary();

/**
 * A request client-node has no typed method for (a JSON patch of any kind): the same authentication
 * and TLS as every other call, through client-node's own HTTP library, with the step's signal.
 */
export async function rawRequest(ctx: Pick<StepContext, 'signal'>, clients: Clients, what: string, method: 'PATCH', path: string, query: Record<string, string>, contentType: string, body: unknown): Promise<unknown> {
  const server = clients.server.replace(/\/$/, '');
  const request = new RequestContext(`${server}${path}`, HttpMethod[method]);
  for (const [k, v] of Object.entries(query)) request.setQueryParam(k, v);
  request.setHeaderParam('Content-Type', contentType);
  request.setHeaderParam('Accept', 'application/json');
  request.setBody(JSON.stringify(body));
  request.setSignal(ctx.signal);
  return call(ctx, what, async () => {
    await clients.kc.applySecurityAuthentication(request);
    const response = await http.send(request).toPromise();
    const text = await response.body.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (response.httpStatusCode >= 200 && response.httpStatusCode < 300) return parsed;
    throw new ApiException(response.httpStatusCode, 'Unsuccessful HTTP Request', parsed ?? text, response.headers);
  });
}

/** Keeps the last `max` characters, with a marker saying how much was cut. */
export function tail(text: string, max: number): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  return { text: `…[${text.length - max} chars cut]\n${text.slice(text.length - max)}`, truncated: true };
}

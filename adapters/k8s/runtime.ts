/**
 * What every k8s action shares: discovery, the requests themselves, and plain-JSON objects.
 *
 * Objects of any kind are read and written as plain JSON (`rawRequest`), never through client-node's
 * typed models: those drop every field they do not know (strategic-merge directives such as
 * `$patch`, fields newer than the models, CRDs whose kind matches a built-in one). KubernetesObjectApi
 * is used only for discovery; the typed APIs only for the scale subresource, logs and events.
 * Every request that can change something carries the step's signal, so a cancel aborts it before
 * the step (and its object lock) lets go.
 */
import type {
  ConfigurationOptions,
  ObservableMiddleware,
  RequestContext,
  ResponseContext,
  V1APIResource,
  V1APIResourceList,
} from '@kubernetes/client-node';
import type { StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import type { Clients } from './connection.js';
import { abortable, isApiException, statusOf, toK8sError } from './errors.js';
import { apiVersionOf, describe, type ObjectRef } from './kinds.js';
import type { Target } from './output-schemas.js';

export type { Target } from './output-schemas.js';

/** The field manager of every write the agent makes (server-side apply, patches, scale). */
export const FIELD_MANAGER = 'runtime-agent';

/** The content type of each kind of patch (client-node's PatchStrategy, without loading client-node). */
export const PATCH_CONTENT_TYPES = {
  strategic: 'application/strategic-merge-patch+json',
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** Object metadata, as the API server sends it (plain JSON). */
export interface Meta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ apiVersion?: string; kind?: string; name?: string; uid?: string; controller?: boolean }>;
  finalizers?: string[];
  deletionTimestamp?: string;
  [key: string]: unknown;
}

/** Any Kubernetes object, as plain JSON. */
export interface KObj {
  apiVersion?: string;
  kind?: string;
  metadata?: Meta;
  // biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are read field by field, each checked where it is used
  spec?: Record<string, any>;
  // biome-ignore lint/suspicious/noExplicitAny: as spec
  status?: Record<string, any>;
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Discovery

type DiscoveryApi = {
  resource(apiVersion: string, kind: string): Promise<V1APIResource | undefined>;
  apiVersionResourceCache?: Record<string, V1APIResourceList>;
};

/**
 * The API resource of a kind (not one of its subresources), through KubernetesObjectApi's discovery
 * and its cache; undefined when the API server serves no such kind (or no such group version).
 * Discovery takes no signal; it is a read, so the step settles at once on abort.
 */
export async function discover(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  apiVersion: string,
  kind: string,
): Promise<V1APIResource | undefined> {
  const api = clients.objects as unknown as DiscoveryApi;
  const lookup = async () => {
    const first = await api.resource(apiVersion, kind);
    if (!first?.name.includes('/')) return first;
    return api.apiVersionResourceCache?.[apiVersion]?.resources.find((r) => r.kind === kind && !r.name.includes('/'));
  };
  try {
    return await abortable(lookup(), ctx.signal);
  } catch (err) {
    const e = toK8sError(err, `discover ${apiVersion} ${kind}`, ctx.signal);
    if (e.type === 'not_found') return undefined; // the group version itself is not served
    throw e;
  }
}

/** The API resource of a kind, or validation_error when the API server has none. */
export async function requireResource(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  apiVersion: string,
  kind: string,
): Promise<V1APIResource> {
  const resource = await discover(ctx, clients, apiVersion, kind);
  if (!resource)
    throw new AgentError('validation_error', `the API server has no kind ${kind} in ${apiVersion}`, {
      retryable: false,
    });
  return resource;
}

/**
 * The target of a reference: its apiVersion (given, or known for the kind), and its namespace (given,
 * or the agent's own) only when discovery says the kind is namespaced; cluster-scoped objects
 * (Namespace, ClusterRole, …) have none.
 */
export async function resolveTarget(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  ref: ObjectRef,
): Promise<Target> {
  const apiVersion = apiVersionOf(ref);
  const resource = await requireResource(ctx, clients, apiVersion, ref.kind);
  return resource.namespaced
    ? { apiVersion, kind: ref.kind, namespace: ref.namespace ?? clients.namespace, name: ref.name }
    : { apiVersion, kind: ref.kind, name: ref.name };
}

/** The URL path of an object (or of its collection, without a name), resolved through discovery. */
export async function objectPath(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  t: Pick<Target, 'apiVersion' | 'kind' | 'namespace'> & { name?: string },
): Promise<string> {
  const resource = await requireResource(ctx, clients, t.apiVersion, t.kind);
  const base = t.apiVersion.includes('/') ? `/apis/${t.apiVersion}` : `/api/${t.apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(t.namespace ?? clients.namespace)}` : '';
  return `${base}${ns}/${resource.name}${t.name ? `/${encodeURIComponent(t.name)}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Requests

export interface RawRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | undefined>;
  /** Of the body; default application/json. */
  contentType?: string;
  /** Sent as JSON. */
  body?: unknown;
}

/**
 * One request as plain JSON: the same authentication and TLS as every client-node call, through
 * client-node's own HTTP library, aborted by the step's signal. Failures map to the taxonomy with
 * `what` in the message; an error body that is not JSON (a proxy's 503 page) still maps by status.
 */
export async function rawRequest<T = unknown>(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  what: string,
  req: RawRequest,
): Promise<T> {
  try {
    const server = clients.server.replace(/\/$/, '');
    const request = new clients.lib.RequestContext(`${server}${req.path}`, clients.lib.HttpMethod[req.method]);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) request.setQueryParam(k, v);
    request.setHeaderParam('Accept', 'application/json');
    if (req.body !== undefined) {
      request.setHeaderParam('Content-Type', req.contentType ?? 'application/json');
      request.setBody(JSON.stringify(req.body));
    }
    request.setSignal(ctx.signal);
    await clients.kc.applySecurityAuthentication(request);
    const response = await clients.http.send(request).toPromise();
    const text = await response.body.text();
    let parsed: unknown;
    let isJson = true;
    try {
      parsed = text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      isJson = false;
    }
    if (response.httpStatusCode >= 200 && response.httpStatusCode < 300) {
      if (!isJson)
        throw new AgentError(
          'adapter_error',
          `${what}: the API server answered ${response.httpStatusCode} with a body that is not JSON`,
        );
      return parsed as T;
    }
    throw new clients.lib.ApiException(
      response.httpStatusCode,
      `${req.method} ${req.path} answered ${response.httpStatusCode}`,
      isJson ? (parsed ?? '') : text,
      response.headers,
    );
  } catch (err) {
    throw toK8sError(err, what, ctx.signal);
  }
}

/** Per-call options for the typed APIs: the step's signal (so a cancel aborts the request), and a Content-Type. */
export function callOptions(
  { lib }: Pick<Clients, 'lib'>,
  signal: AbortSignal,
  contentType?: string,
): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre(request: RequestContext) {
      request.setSignal(signal);
      if (contentType) request.setHeaderParam('Content-Type', contentType);
      return new lib.Observable(Promise.resolve(request));
    },
    post(response: ResponseContext) {
      return new lib.Observable(Promise.resolve(response));
    },
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/** Runs one typed client-node call (which carries the signal through `callOptions`); failures mapped to the taxonomy. */
export async function call<T>(ctx: Pick<StepContext, 'signal'>, what: string, work: () => Promise<T>): Promise<T> {
  try {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    return await work();
  } catch (err) {
    throw toK8sError(err, what, ctx.signal);
  }
}

/** The object (not_found when it does not exist). */
export async function readObject(ctx: Pick<StepContext, 'signal'>, clients: Clients, t: Target): Promise<KObj> {
  const path = await objectPath(ctx, clients, t);
  return rawRequest<KObj>(ctx, clients, `GET ${describe(t)}`, { method: 'GET', path });
}

/**
 * The object, or undefined when it does not exist. The kind is resolved first: a kind or API the
 * server does not have is a validation_error, not "absent"; only the object's own 404 is.
 */
export async function readOrAbsent(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  t: Target,
): Promise<KObj | undefined> {
  const path = await objectPath(ctx, clients, t);
  try {
    return await rawRequest<KObj>(ctx, clients, `GET ${describe(t)}`, { method: 'GET', path });
  } catch (err) {
    if (err instanceof AgentError && err.type === 'not_found') {
      const cause = err.cause;
      const name = isApiException(cause) ? statusOf(cause).details?.name : undefined;
      if (name === undefined || name === t.name) return undefined;
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Objects

/** A plain-JSON copy. */
export function plain<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** The annotation `kubectl apply` keeps the whole applied object in (for a Secret: its values). */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export function isSecret(t: { kind?: string }): boolean {
  return t.kind === 'Secret';
}

/** A copy safe to output: for a Secret, the values of data and stringData and the last-applied annotation become `***` (the keys stay). */
export function redact<T extends KObj | null | undefined>(obj: T, kind?: string): T {
  if (!obj) return obj;
  const copy = plain(obj) as KObj;
  if (!isSecret({ kind: kind ?? copy.kind })) return copy as T;
  for (const field of ['data', 'stringData'] as const) {
    const values = copy[field];
    if (values && typeof values === 'object')
      copy[field] = Object.fromEntries(Object.keys(values).map((k) => [k, '***']));
  }
  if (copy.metadata?.annotations?.[LAST_APPLIED] !== undefined) copy.metadata.annotations[LAST_APPLIED] = '***';
  return copy as T;
}

/** Fields the API server owns; a recorded object without them can be created or put back. */
export function snapshot(obj: KObj): KObj {
  const copy = plain(obj);
  delete copy.status;
  if (copy.metadata) {
    for (const k of [
      'uid',
      'resourceVersion',
      'generation',
      'creationTimestamp',
      'managedFields',
      'selfLink',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
    ] as const) {
      delete copy.metadata[k];
    }
  }
  return copy;
}

/** Keeps the last `max` characters, with a marker saying how much was cut. */
export function tail(text: string, max: number): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  if (max <= 0) return { text: `…[${text.length} chars cut]\n`, truncated: true };
  return { text: `…[${text.length - max} chars cut]\n${text.slice(text.length - max)}`, truncated: true };
}

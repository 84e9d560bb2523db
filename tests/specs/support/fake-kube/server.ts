/**
 * The HTTP side of the fake kube-apiserver: authentication, routing (discovery, resources,
 * subresources, watch), RBAC denials and injected failures, and the REST semantics of
 * https://kubernetes.io/docs/reference/using-api/api-concepts/ for each verb.
 */
import { randomUUID, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { parse as parseYaml } from 'yaml';
import { managerFromUserAgent, recordUpdate, serverSideApply, type Owners } from './apply.js';
import { PodBackends } from './backends.js';
import { clone, deepEqual, isObject, nowTimestamp, type KObj } from './json.js';
import { groupList, resourceList, versionInfo } from './discovery.js';
import { LogStore, servePodLog } from './logs.js';
import { METRICS_GROUP, METRICS_VERSION, MetricsApi, parseMetricsPath } from './metrics.js';
import {
  ACCEPTED_PATCH_TYPES,
  PATCH_TYPES,
  applyJsonPatch,
  applyMergePatch,
  parseJsonPatch,
  strategicMerge,
} from './patch.js';
import { forward, parseProxyPath, PROXY_VERBS, type ProxyRoute } from './proxy.js';
import { resolvePodTarget, ServiceTargets } from './proxy-target.js';
import {
  apiVersionOf,
  fieldsOf,
  registry,
  supportsFieldLabel,
  validateObjectMeta,
  type ResourceDef,
} from './resources.js';
import {
  labelSelectorToString,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.js';
import { ApiError, err, fieldErr, statusForCode, success, type FieldError, type StatusBody } from './status.js';
import type { Store } from './store.js';

export interface RecordedRequest {
  method: string;
  path: string;
  /** Query parameters (the first value of each). */
  query: Record<string, string>;
  contentType?: string;
  /** Whether the request asked for dryRun=All (query, or DeleteOptions body). */
  dryRun: boolean;
  fieldManager?: string;
  userAgent?: string;
  /** RBAC verb, resource and subresource the apiserver would authorize (resource requests only). */
  verb?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  body?: string;
  /** Status code answered. */
  code?: number;
}

export interface DenyRule {
  verbs: string[] | '*';
  /** `deployments`, `deployments/scale`, `pods/log`, or `*`. */
  resource: string;
  group?: string;
  namespace?: string;
  name?: string;
}

export interface FailSpec {
  code: number;
  reason?: string;
  message?: string;
  retryAfterSeconds?: number;
  /** How many matching requests fail (default 1). */
  times?: number;
}

export type RequestMatcher =
  | ((r: RecordedRequest) => boolean)
  | {
      method?: string;
      path?: string | RegExp;
      verb?: string;
      resource?: string;
      subresource?: string;
      namespace?: string;
      name?: string;
    };

interface FailRule {
  matcher: RequestMatcher;
  spec: FailSpec;
  left: number;
}

export interface ServerConfig {
  token: string;
  namespace: string;
  username: string;
  userUid: string;
  groups: string[];
  selfSubjectReview: boolean;
  bookmarkIntervalMs: number;
  version: { major: string; minor: string; gitVersion: string };
  /** "host:port" for APIVersions.serverAddressByClientCIDRs. */
  address: () => string;
  /** The server's own scheme (X-Forwarded-Proto of proxied requests). */
  scheme: 'http' | 'https';
}

interface Route {
  kind: 'resource';
  def: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
  watchPath: boolean;
}

type Handler = (res: http.ServerResponse) => void | Promise<void>;

const TRUE_VALUES = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const PROPAGATION = ['Foreground', 'Background', 'Orphan'];
const CONTINUE_TOO_OLD =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

function json(res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache, private',
    ...headers,
  });
  res.end(text);
}

function stripTypeMeta(o: KObj): KObj {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}

function randomSuffix(n = 5): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
}

export class FakeApiServer {
  readonly logs = new LogStore();
  readonly requests: RecordedRequest[] = [];
  /** Where pods' ports lead (pods/proxy, services/proxy; portforward shares it). */
  readonly backends = new PodBackends();
  /** metrics.k8s.io/v1beta1 samples, and whether the group is served at all. */
  readonly metrics = new MetricsApi();
  private readonly serviceTargets: ServiceTargets;
  denies: DenyRule[] = [];
  private failures: FailRule[] = [];
  private readonly openStreams = new Set<http.ServerResponse>();
  private readonly cleanups = new Set<() => void>();

  constructor(
    readonly store: Store,
    readonly config: ServerConfig,
  ) {
    this.serviceTargets = new ServiceTargets(store);
  }

  failNext(matcher: RequestMatcher, spec: FailSpec): void {
    this.failures.push({ matcher, spec, left: spec.times ?? 1 });
  }

  clearFailures(): void {
    this.failures = [];
  }

  /** Ends every open watch and log stream. */
  closeStreams(): void {
    const streams = [...this.openStreams];
    for (const c of [...this.cleanups]) c();
    for (const r of streams) r.end();
    this.openStreams.clear();
  }

  // -------------------------------------------------------------------------------------------

  handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const proxyRoute = parseProxyPath((req.url ?? '/').split('?')[0]!);
    if (proxyRoute) return this.proxy(req, res, proxyRoute);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      void this.dispatch(req, res, body).catch((e: unknown) => {
        if (!res.headersSent) this.sendError(res, e);
        else res.end();
      });
    });
  };

  /** pods/proxy and services/proxy (proxy.ts): the request body streams through, it is not buffered here. */
  private proxy(req: http.IncomingMessage, res: http.ServerResponse, route: ProxyRoute): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v;
    const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    const verb = PROXY_VERBS[method];
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query,
      ...(contentType ? { contentType } : {}),
      dryRun: false,
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
      ...(verb !== undefined ? { verb } : {}),
      resource: route.kind,
      subresource: 'proxy',
      namespace: route.namespace,
      name: route.id,
    };
    this.requests.push(record);
    res.on('finish', () => (record.code = res.statusCode));
    let recorded = 0;
    const onBody = (chunk: Buffer) => {
      if (recorded >= 65_536) return;
      const part = chunk.subarray(0, 65_536 - recorded);
      recorded += part.length;
      record.body = (record.body ?? '') + part.toString('utf8');
    };
    const fail = (e: unknown) => {
      req.resume();
      if (!res.headersSent) this.sendError(res, e);
      else res.destroy();
    };
    try {
      this.authenticate(req, url.pathname);
      if (verb === undefined) throw err.methodNotAllowed();
      this.injected(record);
      this.authorize('', route.kind, 'proxy', verb, route.namespace, route.id);
      const target =
        route.kind === 'pods'
          ? resolvePodTarget(this.store, route.namespace, route.id)
          : this.serviceTargets.resolve(route.namespace, route.id);
      const track = (abort: () => void) => {
        this.cleanups.add(abort);
        return () => void this.cleanups.delete(abort);
      };
      forward(
        req,
        res,
        route,
        target,
        url.search.slice(1),
        { backends: this.backends, scheme: this.config.scheme, onBody, track },
        fail,
      );
    } catch (e) {
      fail(e);
    }
  }

  private sendError(res: http.ServerResponse, e: unknown): void {
    const apiErr = e instanceof ApiError ? e : err.internal(e instanceof Error ? e.message : String(e));
    json(res, apiErr.code, apiErr.status, apiErr.headers);
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v;
    const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query,
      ...(contentType ? { contentType } : {}),
      dryRun:
        url.searchParams.getAll('dryRun').includes('All') ||
        /"dryRun"\s*:\s*\[\s*"All"/.test(method === 'DELETE' ? body : ''),
      ...(query.fieldManager !== undefined ? { fieldManager: query.fieldManager } : {}),
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
      ...(body ? { body } : {}),
    };
    this.requests.push(record);
    res.on('finish', () => (record.code = res.statusCode));
    try {
      const handler = this.route(req, url, method, record, body);
      await handler(res);
    } catch (e) {
      if (!res.headersSent) this.sendError(res, e);
      else res.end();
    }
  }

  private authenticate(req: http.IncomingMessage, path: string): void {
    const auth = req.headers.authorization;
    const publicPath = ['/version', '/healthz', '/livez', '/readyz'].includes(path);
    if (auth === undefined && publicPath) return; // system:anonymous may read public info
    if (auth !== `Bearer ${this.config.token}`) throw err.unauthorized();
  }

  private injected(record: RecordedRequest): void {
    for (const f of this.failures) {
      if (f.left <= 0) continue;
      const m = f.matcher;
      let hit: boolean;
      if (typeof m === 'function') hit = m(record);
      else {
        hit =
          (m.method === undefined || m.method.toUpperCase() === record.method) &&
          (m.path === undefined || (typeof m.path === 'string' ? record.path === m.path : m.path.test(record.path))) &&
          (m.verb === undefined || m.verb === record.verb) &&
          (m.resource === undefined || m.resource === record.resource) &&
          (m.subresource === undefined || m.subresource === record.subresource) &&
          (m.namespace === undefined || m.namespace === record.namespace) &&
          (m.name === undefined || m.name === record.name);
      }
      if (!hit) continue;
      f.left--;
      this.failures = this.failures.filter((x) => x.left > 0);
      throw statusForCode(f.spec.code, f.spec.reason, f.spec.message, f.spec.retryAfterSeconds);
    }
  }

  private authorize(
    group: string,
    resource: string,
    subresource: string | undefined,
    verb: string,
    namespace: string | undefined,
    name: string | undefined,
  ): void {
    const full = subresource ? `${resource}/${subresource}` : resource;
    const denied = this.denies.some(
      (d) =>
        (d.verbs === '*' || d.verbs.includes(verb) || d.verbs.includes('*')) &&
        (d.resource === '*' || d.resource === full) &&
        (d.group === undefined || d.group === group) &&
        (d.namespace === undefined || d.namespace === namespace) &&
        (d.name === undefined || d.name === name),
    );
    if (!denied) return;
    const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
    throw err.forbidden(
      group,
      resource,
      name ?? '',
      `User "${this.config.username}" cannot ${verb} resource "${full}" in API group "${group}" ${scope}`,
    );
  }

  /** Whether RBAC (as configured by deny rules) lets this user do something: for SelfSubjectAccessReview. */
  private allowed(
    group: string,
    resource: string,
    subresource: string | undefined,
    verb: string,
    namespace?: string,
    name?: string,
  ): boolean {
    try {
      this.authorize(group, resource, subresource, verb, namespace, name);
      return true;
    } catch {
      return false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // routing

  private route(req: http.IncomingMessage, url: URL, method: string, record: RecordedRequest, body: string): Handler {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    this.authenticate(req, path);
    const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
    const q = url.searchParams;

    const getOnly = (h: Handler): Handler => {
      this.injected(record);
      if (method !== 'GET') throw err.methodNotAllowed();
      return h;
    };

    if (path === '/version') return getOnly((res) => json(res, 200, versionInfo(this.config.version)));
    if (path === '/healthz' || path === '/livez' || path === '/readyz')
      return getOnly((res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('ok');
      });
    if (path === '/api')
      return getOnly((res) =>
        json(res, 200, {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.config.address() }],
        }),
      );
    const metricsServed = this.metrics.served;
    if (path === '/apis') return getOnly((res) => json(res, 200, groupList(metricsServed)));
    if (segs[0] === 'apis' && segs.length === 2) {
      const g = groupList(metricsServed).groups.find((x) => x.name === segs[1]);
      if (!g) throw err.noRoute();
      return getOnly((res) => json(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...g }));
    }
    if ((segs[0] === 'api' && segs.length === 2) || (segs[0] === 'apis' && segs.length === 3)) {
      const gv = segs[0] === 'api' ? segs[1]! : `${segs[1]}/${segs[2]}`;
      const list = resourceList(gv, { selfSubjectReview: this.config.selfSubjectReview, metrics: metricsServed });
      if (!list) throw err.noRoute();
      return getOnly((res) => json(res, 200, list));
    }

    // non-registry resources of authentication.k8s.io and authorization.k8s.io
    if (path === '/apis/authentication.k8s.io/v1/selfsubjectreviews' && this.config.selfSubjectReview) {
      Object.assign(record, { verb: 'create', resource: 'selfsubjectreviews' });
      this.injected(record);
      if (method !== 'POST') throw err.methodNotAllowed();
      return (res) => this.selfSubjectReview(res, body, req);
    }
    if (path === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
      Object.assign(record, { verb: 'create', resource: 'selfsubjectaccessreviews' });
      this.injected(record);
      if (method !== 'POST') throw err.methodNotAllowed();
      return (res) => this.selfSubjectAccessReview(res, body, req);
    }

    if (segs[0] === 'apis' && segs[1] === METRICS_GROUP && segs[2] === METRICS_VERSION) {
      if (!metricsServed) throw err.noRoute();
      return this.metricsRoute(segs.slice(3), q, method, record);
    }
    if (
      segs.length === 7 &&
      segs[0] === 'api' &&
      segs[2] === 'namespaces' &&
      segs[4] === 'pods' &&
      segs[6] === 'portforward'
    ) {
      this.injected(record);
      throw err.badRequest('Upgrade request required');
    }

    const r = this.parseResourcePath(segs);
    if (!r) throw err.noRoute();
    const { def } = r;
    const watch = r.watchPath || TRUE_VALUES.has(q.get('watch') ?? '');
    let verb: string;
    switch (method) {
      case 'GET':
        verb = r.name ? 'get' : watch ? 'watch' : 'list';
        if (r.watchPath && r.name) verb = 'watch';
        break;
      case 'POST':
        if (r.name) throw err.methodNotAllowed();
        verb = 'create';
        break;
      case 'PUT':
        if (!r.name) throw err.methodNotAllowed();
        verb = 'update';
        break;
      case 'PATCH':
        if (!r.name) throw err.methodNotAllowed();
        verb = 'patch';
        break;
      case 'DELETE':
        verb = r.name ? 'delete' : 'deletecollection';
        break;
      default:
        throw err.methodNotAllowed();
    }
    if (r.watchPath && method !== 'GET') throw err.methodNotAllowed();
    if (def.namespaced && r.namespace === undefined && !['list', 'watch'].includes(verb)) throw err.methodNotAllowed();
    if (r.subresource === 'log' && verb !== 'get') throw err.methodNotAllowed();
    if ((r.subresource === 'scale' || r.subresource === 'status') && !['get', 'update', 'patch'].includes(verb))
      throw err.methodNotAllowed();
    Object.assign(record, {
      verb,
      resource: def.resource,
      ...(r.subresource ? { subresource: r.subresource } : {}),
      ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
      ...(r.name !== undefined ? { name: r.name } : {}),
    });
    this.injected(record);
    this.authorize(def.group, def.resource, r.subresource, verb, r.namespace, r.name);

    const ctx: Ctx = {
      def,
      ns: r.namespace,
      name: r.name,
      q,
      body,
      contentType: record.contentType,
      req,
      sub: r.subresource,
    };
    if (r.subresource === 'log') return (res) => this.podLog(res, ctx);
    if (r.subresource === 'scale') {
      if (verb === 'get') return (res) => this.getScale(res, ctx);
      if (verb === 'update') return (res) => this.updateScale(res, ctx);
      return (res) => this.patchScale(res, ctx);
    }
    switch (verb) {
      case 'get':
        return (res) => this.get(res, ctx);
      case 'list':
        return (res) => this.list(res, ctx);
      case 'watch':
        return (res) => this.watch(res, ctx);
      case 'create':
        return (res) => this.create(res, ctx);
      case 'update':
        return (res) => this.update(res, ctx);
      case 'patch':
        return (res) => this.patch(res, ctx);
      case 'delete':
        return (res) => this.delete(res, ctx);
      default:
        return (res) => this.deleteCollection(res, ctx);
    }
  }

  /** metrics.k8s.io/v1beta1 (metrics.ts): get and list only. */
  private metricsRoute(segs: string[], q: URLSearchParams, method: string, record: RecordedRequest): Handler {
    const r = parseMetricsPath(segs);
    if (!r) throw err.noRoute();
    const verb = r.name ? 'get' : 'list';
    Object.assign(record, {
      verb,
      resource: r.resource,
      ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
      ...(r.name !== undefined ? { name: r.name } : {}),
    });
    this.injected(record);
    if (method !== 'GET' || TRUE_VALUES.has(q.get('watch') ?? '')) throw err.methodNotAllowed();
    this.authorize(METRICS_GROUP, r.resource, undefined, verb, r.namespace, r.name);
    const podDef = registry.byKindName('Pod')!;
    if (r.resource === 'nodes')
      return (res) => json(res, 200, r.name ? this.metrics.getNode(r.name) : this.metrics.listNodes());
    if (r.name)
      return (res) => json(res, 200, this.metrics.getPod(this.store.get(podDef, r.namespace, r.name!)?.obj, r.name!));
    return (res) =>
      json(
        res,
        200,
        this.metrics.listPods(
          this.store.list(podDef, r.namespace).map((s) => s.obj),
          q,
        ),
      );
  }

  private parseResourcePath(segs: string[]): Route | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs[1] === 'v1') {
      group = '';
      version = 'v1';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else return undefined;
    let watchPath = false;
    if (rest[0] === 'watch') {
      watchPath = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    if (rest.length === 0 || rest.length > 3) return undefined;
    const def = registry.byResource(group, version, rest[0]!);
    if (!def) return undefined;
    const name = rest[1];
    const subresource = rest[2];
    if (namespace !== undefined && !def.namespaced) return undefined;
    if (namespace === undefined && def.namespaced && name !== undefined) return undefined;
    if (subresource !== undefined && !def.subresources.includes(subresource as never)) return undefined;
    if (subresource === 'proxy' || subresource === 'portforward') return undefined; // proxy.ts, portforward.ts
    if (watchPath && subresource !== undefined) return undefined;
    return { kind: 'resource', def, namespace, name, subresource, watchPath };
  }

  // -------------------------------------------------------------------------------------------
  // authentication / authorization reviews

  private selfSubjectReview(res: http.ServerResponse, body: string, req: http.IncomingMessage): void {
    const ct = req.headers['content-type']?.split(';')[0]?.trim();
    if (body) this.decodeBody(body, ct);
    json(res, 201, {
      kind: 'SelfSubjectReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: null },
      status: {
        userInfo: {
          username: this.config.username,
          uid: this.config.userUid,
          groups: this.config.groups,
          extra: {
            'authentication.kubernetes.io/node-name': ['fake-node-0'],
            'authentication.kubernetes.io/pod-name': ['runtime-agent-0'],
          },
        },
      },
    });
  }

  private selfSubjectAccessReview(res: http.ServerResponse, body: string, req: http.IncomingMessage): void {
    const ct = req.headers['content-type']?.split(';')[0]?.trim();
    const review = this.decodeBody(body, ct) as KObj;
    const ra = review?.spec?.resourceAttributes;
    if (!isObject(ra))
      throw err.invalid('authorization.k8s.io', 'SelfSubjectAccessReview', '', [
        fieldErr.invalid(
          'spec.resourceAttributes',
          null,
          'exactly one of nonResourceAttributes or resourceAttributes must be specified',
        ),
      ]);
    const ok = this.allowed(
      ra.group ?? '',
      ra.resource ?? '',
      ra.subresource || undefined,
      ra.verb ?? '',
      ra.namespace || undefined,
      ra.name || undefined,
    );
    json(res, 201, {
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec: review.spec,
      status: ok ? { allowed: true, reason: 'RBAC: allowed by RoleBinding "runtime-agent"' } : { allowed: false },
    });
  }

  // -------------------------------------------------------------------------------------------
  // shared write plumbing

  private decodeBody(body: string, contentType: string | undefined): unknown {
    const ct = contentType ?? 'application/json';
    try {
      if (ct === 'application/yaml' || ct === 'application/apply-patch+yaml') return parseYaml(body);
      if (ct === 'application/json' || ct.endsWith('+json') || ct === '*/*') return JSON.parse(body);
    } catch (e) {
      throw err.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
    }
    throw err.unsupportedMediaType(['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
  }

  /** Decodes a create/update body as the endpoint's kind (apiserver decoder + checks). */
  private decodeTyped(ctx: Ctx, expectKind = ctx.def.kind, expectApiVersion = apiVersionOf(ctx.def)): KObj {
    const ct = ctx.contentType ?? 'application/json';
    if (ct !== 'application/json' && ct !== 'application/yaml')
      throw err.unsupportedMediaType(['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
    const obj = this.decodeBody(ctx.body, ct);
    if (!isObject(obj))
      throw err.badRequest(
        `the object provided is unrecognized (must be of type ${expectKind}): couldn't get version/kind; json parse error: json: cannot unmarshal ${Array.isArray(obj) ? 'array' : typeof obj} into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }`,
      );
    this.checkTypeMeta(obj, expectKind, expectApiVersion);
    this.checkGoTypes(obj, expectKind);
    return obj as KObj;
  }

  private checkTypeMeta(obj: Record<string, any>, expectKind: string, expectApiVersion: string): void {
    if (obj.kind !== undefined && obj.kind !== expectKind) {
      const av = obj.apiVersion ?? expectApiVersion;
      throw err.badRequest(
        `${obj.kind} in version "${String(av).split('/').pop()}" cannot be handled as a ${expectKind}: no kind "${obj.kind}" is registered for version "${av}" in scheme "pkg/api/legacyscheme/scheme.go:30"`,
      );
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== expectApiVersion) {
      throw err.badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${expectApiVersion})`,
      );
    }
  }

  /** The JSON-to-Go decoding errors a client can trip over (400, before validation). */
  private checkGoTypes(obj: Record<string, any>, kind: string): void {
    const r = obj.spec?.replicas;
    if (r !== undefined && r !== null && (typeof r !== 'number' || !Number.isInteger(r))) {
      const specType = kind === 'Scale' ? 'ScaleSpec' : `${kind}Spec`;
      const what = typeof r === 'number' ? `number ${r}` : typeof r;
      throw err.badRequest(
        `${kind} in version "v1" cannot be handled as a ${kind}: json: cannot unmarshal ${what} into Go struct field ${specType}.spec.replicas of type int32`,
      );
    }
    if (obj.metadata !== undefined && !isObject(obj.metadata))
      throw err.badRequest(
        `${kind} in version "v1" cannot be handled as a ${kind}: json: cannot unmarshal ${typeof obj.metadata} into Go struct field ${kind}.metadata of type v1.ObjectMeta`,
      );
  }

  private dryRun(ctx: Ctx, optionsKind: string, extra: string[] = []): boolean {
    const values = [...ctx.q.getAll('dryRun'), ...extra];
    const bad = values.filter((v) => v !== 'All');
    if (bad.length > 0) throw err.invalidOptions(optionsKind, [fieldErr.notSupported('dryRun', values, ['All'])]);
    return values.length > 0;
  }

  private manager(ctx: Ctx): string {
    return ctx.q.get('fieldManager') || managerFromUserAgent(ctx.req.headers['user-agent']);
  }

  private checkFieldManager(ctx: Ctx, optionsKind: string): void {
    const fm = ctx.q.get('fieldManager');
    if (fm && fm.length > 128)
      throw err.invalidOptions(optionsKind, [
        { type: 'FieldValueTooLong', field: 'fieldManager', detail: 'may not be more than 128 bytes' },
      ]);
  }

  private validate(
    def: ResourceDef,
    obj: KObj,
    old?: KObj,
    kindForErrors = def.kind,
    groupForErrors = def.group,
  ): void {
    const errs: FieldError[] = [];
    if (!old) errs.push(...this.metaErrors(def, obj));
    errs.push(...(def.validate?.(obj, old) ?? []));
    if (errs.length > 0) throw err.invalid(groupForErrors, kindForErrors, obj.metadata?.name ?? '', errs);
  }

  private metaErrors(def: ResourceDef, obj: KObj): FieldError[] {
    return validateObjectMeta(obj, def.namespaced, def.kind === 'Namespace' ? 'label' : 'subdomain');
  }

  /** What the registry strategy's PrepareForCreate + defaulting do. */
  prepareForCreate(def: ResourceDef, obj: KObj): void {
    const m = (obj.metadata ??= {});
    m.uid = randomUUID();
    m.creationTimestamp = nowTimestamp();
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.managedFields;
    delete m.selfLink;
    if (def.generation) m.generation = 1;
    else delete m.generation;
    if (def.subresources.includes('status')) {
      if (def.kind === 'Pod') {
        const limited = (obj.spec?.containers ?? []).some(
          (c: any) => c?.resources && (c.resources.requests || c.resources.limits),
        );
        obj.status = { phase: 'Pending', qosClass: limited ? 'Burstable' : 'BestEffort' };
      } else if (def.kind === 'Service') obj.status = { loadBalancer: {} };
      else obj.status = {};
    }
    def.defaults?.(obj);
  }

  /** What PrepareForUpdate does: system metadata kept, status (or spec) reset, generation bumped. */
  prepareForUpdate(def: ResourceDef, old: KObj, next: KObj, subresource?: string): void {
    const m = (next.metadata ??= {});
    const om = old.metadata!;
    m.name = om.name;
    if (def.namespaced) m.namespace = om.namespace;
    m.uid = om.uid;
    m.creationTimestamp = om.creationTimestamp;
    if (om.deletionTimestamp) m.deletionTimestamp = om.deletionTimestamp;
    else delete m.deletionTimestamp;
    if (om.deletionGracePeriodSeconds !== undefined) m.deletionGracePeriodSeconds = om.deletionGracePeriodSeconds;
    else delete m.deletionGracePeriodSeconds;
    delete m.managedFields;
    delete m.selfLink;
    if (subresource === 'status') {
      next.spec = clone(old.spec);
      next.metadata = { ...clone(om), resourceVersion: m.resourceVersion };
      if (next.metadata.resourceVersion === undefined) delete next.metadata.resourceVersion;
    } else if (def.subresources.includes('status')) {
      if (old.status === undefined) delete next.status;
      else next.status = clone(old.status);
    }
    def.defaults?.(next);
    if (def.generation) {
      const gen = om.generation ?? 1;
      const specChanged = !deepEqual(old.spec, next.spec);
      const annChanged =
        def.generation === 'spec+annotations' && !deepEqual(om.annotations ?? {}, next.metadata.annotations ?? {});
      next.metadata.generation = subresource !== 'status' && (specChanged || annChanged) ? gen + 1 : gen;
    } else delete next.metadata.generation;
  }

  /**
   * Persists an update (unless dry run). A write that changes nothing is a no-op: no new
   * resourceVersion, no watch event, the stored object is returned.
   */
  private commitUpdate(
    def: ResourceDef,
    cur: { obj: KObj; owners: Owners },
    next: KObj,
    opts: { dry: boolean; owners: Owners },
  ): KObj {
    next.apiVersion = apiVersionOf(def);
    next.kind = def.kind;
    next.metadata!.resourceVersion = cur.obj.metadata!.resourceVersion;
    if (deepEqual(next, cur.obj)) {
      if (!opts.dry) this.store.setOwners(def, next.metadata!.namespace, next.metadata!.name!, opts.owners);
      return clone(cur.obj);
    }
    if (opts.dry) return next;
    if (next.metadata!.deletionTimestamp && (next.metadata!.finalizers ?? []).length === 0) {
      this.store.put(def, next, opts.owners);
      return this.finalizeDelete(def, next.metadata!.namespace, next.metadata!.name!, 'Background') ?? next;
    }
    return this.store.put(def, next, opts.owners);
  }

  /**
   * Writes `next` over `cur` for an update, a patch other than apply, or a scale: what PrepareForUpdate does,
   * validation, the request's field manager recorded as the owner of what it changed, then the commit.
   */
  private updateTo(ctx: Ctx, cur: { obj: KObj; owners: Owners }, next: KObj, dry: boolean, subresource?: string): KObj {
    this.prepareForUpdate(ctx.def, cur.obj, next, subresource);
    this.validate(ctx.def, next, cur.obj);
    const time = nowTimestamp();
    const owners = recordUpdate(cur.obj, next, cur.owners, this.manager(ctx), apiVersionOf(ctx.def), time, subresource);
    return this.commitUpdate(ctx.def, cur, next, { dry, owners });
  }

  private getOr404(ctx: Ctx): { obj: KObj; owners: Owners } {
    const s = this.store.get(ctx.def, ctx.ns, ctx.name!);
    if (!s) throw err.notFound(ctx.def.group, ctx.def.resource, ctx.name!);
    return s;
  }

  private checkName(obj: KObj, ctx: Ctx): void {
    const name = obj.metadata?.name ?? '';
    if (name !== ctx.name)
      throw err.badRequest(`the name of the object (${name}) does not match the name on the URL (${ctx.name})`);
    this.checkNamespace(obj, ctx);
  }

  private checkNamespace(obj: KObj, ctx: Ctx): void {
    obj.metadata ??= {};
    if (!ctx.def.namespaced) return;
    if (obj.metadata.namespace && obj.metadata.namespace !== ctx.ns)
      throw err.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    obj.metadata.namespace = ctx.ns;
  }

  private checkPreconditionRV(ctx: Ctx, cur: KObj, rv: string | undefined): void {
    if (rv !== undefined && rv !== '' && rv !== cur.metadata!.resourceVersion)
      throw err.conflict(ctx.def.group, ctx.def.resource, ctx.name!);
  }

  // -------------------------------------------------------------------------------------------
  // verbs

  private get(res: http.ServerResponse, ctx: Ctx): void {
    json(res, 200, this.getOr404(ctx).obj);
  }

  private selectors(ctx: Ctx): (o: KObj) => boolean {
    const labels = parseLabelSelector(ctx.q.get('labelSelector'));
    const fields = parseFieldSelector(ctx.q.get('fieldSelector'));
    for (const f of fields)
      if (!supportsFieldLabel(ctx.def, f.field)) throw err.badRequest(`field label not supported: ${f.field}`);
    return (o) => matchesLabels(labels, o.metadata?.labels) && matchesFields(fields, fieldsOf(ctx.def, o));
  }

  private list(res: http.ServerResponse, ctx: Ctx): void {
    const match = this.selectors(ctx);
    let items = this.store
      .list(ctx.def, ctx.ns)
      .map((s) => s.obj)
      .filter(match);
    const metadata: Record<string, unknown> = { resourceVersion: this.store.resourceVersion };
    const cont = ctx.q.get('continue');
    if (cont) {
      let token: { rv: number; start: string };
      try {
        token = JSON.parse(Buffer.from(cont, 'base64').toString('utf8'));
        if (typeof token.rv !== 'number' || typeof token.start !== 'string') throw new Error('bad');
      } catch {
        throw err.badRequest(
          'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
        );
      }
      if (token.rv < this.store.oldestResourceVersion) throw err.expired(CONTINUE_TOO_OLD);
      items = items.filter((o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name}` > token.start);
      metadata.resourceVersion = String(token.rv);
    }
    const limit = Number(ctx.q.get('limit') ?? 0);
    if (limit > 0 && items.length > limit) {
      const last = items[limit - 1]!;
      const rv = Number(metadata.resourceVersion);
      metadata.continue = Buffer.from(
        JSON.stringify({ v: 'meta.k8s.io/v1', rv, start: `${last.metadata?.namespace ?? ''}/${last.metadata?.name}` }),
      ).toString('base64');
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    json(res, 200, {
      kind: `${ctx.def.kind}List`,
      apiVersion: apiVersionOf(ctx.def),
      metadata,
      items: items.map(stripTypeMeta),
    });
  }

  private watch(res: http.ServerResponse, ctx: Ctx): void {
    const match = this.selectors(ctx);
    const nameMatch = ctx.name; // /watch/namespaces/ns/pods/name (deprecated path form)
    const rvParam = ctx.q.get('resourceVersion') ?? '';
    let fromRV: number | undefined;
    if (rvParam !== '' && rvParam !== '0') {
      if (!/^\d+$/.test(rvParam))
        throw err.badRequest(
          `invalid resource version: strconv.ParseUint: parsing ${JSON.stringify(rvParam)}: invalid syntax`,
        );
      fromRV = Number(rvParam);
    }
    const sendInitial = ctx.q.get('sendInitialEvents');
    const bookmarks = TRUE_VALUES.has(ctx.q.get('allowWatchBookmarks') ?? '');
    if (sendInitial !== null && TRUE_VALUES.has(sendInitial)) {
      const errs: FieldError[] = [];
      if (ctx.q.get('resourceVersionMatch') !== 'NotOlderThan')
        errs.push(
          fieldErr.forbidden(
            'resourceVersionMatch',
            'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
          ),
        );
      if (!bookmarks)
        errs.push(
          fieldErr.forbidden('allowWatchBookmarks', 'allowWatchBookmarks must be true if sendInitialEvents = true'),
        );
      if (errs.length > 0) throw err.invalid('meta.k8s.io', 'ListOptions', '', errs);
      fromRV = undefined;
    }
    const timeoutSeconds = Number(ctx.q.get('timeoutSeconds') ?? 0);

    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    res.flushHeaders();
    this.openStreams.add(res);
    const write = (type: string, object: unknown) => {
      if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe = () => {};
    const cleanup = () => {
      timers.forEach((t) => clearTimeout(t));
      unsubscribe();
      this.openStreams.delete(res);
      this.cleanups.delete(cleanup);
    };
    this.cleanups.add(cleanup);
    res.on('close', cleanup);
    const bookmark = (annotations?: Record<string, string>) =>
      write('BOOKMARK', {
        kind: ctx.def.kind,
        apiVersion: apiVersionOf(ctx.def),
        metadata: { resourceVersion: this.store.resourceVersion, ...(annotations ? { annotations } : {}) },
      });

    const sub = this.store.subscribe(
      {
        def: ctx.def,
        namespace: ctx.ns,
        matches: (o) => (nameMatch === undefined || o.metadata?.name === nameMatch) && match(o),
        send: (type, obj) => write(type, obj),
      },
      fromRV,
    );
    unsubscribe = sub.unsubscribe;
    if (sub.tooOld) {
      write('ERROR', err.expired(sub.tooOld).status);
      cleanup();
      res.end();
      return;
    }
    if (sendInitial !== null && TRUE_VALUES.has(sendInitial)) bookmark({ 'k8s.io/initial-events-end': 'true' });
    if (timeoutSeconds > 0)
      timers.push(
        setTimeout(() => {
          cleanup();
          res.end();
        }, timeoutSeconds * 1000),
      );
    if (bookmarks) {
      const tick = () => {
        bookmark();
        timers.push(setTimeout(tick, this.config.bookmarkIntervalMs));
      };
      timers.push(setTimeout(tick, this.config.bookmarkIntervalMs));
    }
  }

  private create(res: http.ServerResponse, ctx: Ctx): void {
    const dry = this.dryRun(ctx, 'CreateOptions');
    this.checkFieldManager(ctx, 'CreateOptions');
    const obj = this.decodeTyped(ctx);
    this.checkNamespace(obj, ctx);
    const m = obj.metadata!;
    if (!ctx.def.namespaced) delete m.namespace;
    if (m.resourceVersion) throw err.badRequest('resourceVersion should not be set on objects to be created');
    if (!m.name && m.generateName) m.name = `${m.generateName}${randomSuffix()}`;
    this.prepareForCreate(ctx.def, obj);
    this.validate(ctx.def, obj);
    if (this.store.get(ctx.def, m.namespace, m.name!))
      throw err.alreadyExists(ctx.def.group, ctx.def.resource, m.name!);
    obj.apiVersion = apiVersionOf(ctx.def);
    obj.kind = ctx.def.kind;
    if (dry) return json(res, 201, obj);
    const owners = recordUpdate(undefined, obj, [], this.manager(ctx), apiVersionOf(ctx.def), nowTimestamp());
    json(res, 201, this.store.put(ctx.def, obj, owners));
  }

  private update(res: http.ServerResponse, ctx: Ctx): void {
    const dry = this.dryRun(ctx, 'UpdateOptions');
    this.checkFieldManager(ctx, 'UpdateOptions');
    const obj = this.decodeTyped(ctx);
    this.checkName(obj, ctx);
    const cur = this.getOr404(ctx);
    this.checkPreconditionRV(ctx, cur.obj, obj.metadata?.resourceVersion);
    json(res, 200, this.updateTo(ctx, cur, obj, dry, ctx.sub));
  }

  private patchOptions(ctx: Ctx): { type: string; dry: boolean; force: boolean } {
    const type = ctx.contentType ?? '';
    if (!ACCEPTED_PATCH_TYPES.includes(type as never)) throw err.unsupportedMediaType(ACCEPTED_PATCH_TYPES);
    const isApply = type === PATCH_TYPES.apply;
    const errs: FieldError[] = [];
    const forceParam = ctx.q.get('force');
    if (!isApply && forceParam !== null)
      errs.push(fieldErr.forbidden('force', 'may not be specified for non-apply patch'));
    if (isApply && !ctx.q.get('fieldManager'))
      errs.push(fieldErr.required('fieldManager', 'is required for apply patch'));
    const fm = ctx.q.get('fieldManager');
    if (fm && fm.length > 128)
      errs.push({ type: 'FieldValueTooLong', field: 'fieldManager', detail: 'may not be more than 128 bytes' });
    const dryValues = ctx.q.getAll('dryRun');
    if (dryValues.some((v) => v !== 'All')) errs.push(fieldErr.notSupported('dryRun', dryValues, ['All']));
    if (errs.length > 0) throw err.invalidOptions('PatchOptions', errs);
    return { type, dry: dryValues.length > 0, force: forceParam !== null && TRUE_VALUES.has(forceParam) };
  }

  private patchBody(ctx: Ctx, type: string): unknown {
    try {
      return type === PATCH_TYPES.apply ? parseYaml(ctx.body) : JSON.parse(ctx.body);
    } catch (e) {
      if (type === PATCH_TYPES.apply) throw err.badRequest(`error decoding YAML: ${(e as Error).message}`);
      throw err.badRequest(`error decoding patch: ${(e as Error).message}`);
    }
  }

  /** Applies a non-apply patch document to `target`. */
  private applyPatch(type: string, target: KObj, patch: unknown): KObj {
    let out: unknown;
    if (type === PATCH_TYPES.json) out = applyJsonPatch(target, parseJsonPatch(patch));
    else {
      if (!isObject(patch))
        throw err.badRequest(
          `json: cannot unmarshal ${Array.isArray(patch) ? 'array' : typeof patch} into Go value of type map[string]interface {}`,
        );
      out = type === PATCH_TYPES.merge ? applyMergePatch(target, patch) : strategicMerge(target, patch);
    }
    if (!isObject(out)) throw err.unprocessable('the patched document is not an object');
    return out as KObj;
  }

  private patch(res: http.ServerResponse, ctx: Ctx): void {
    const { type, dry, force } = this.patchOptions(ctx);
    const body = this.patchBody(ctx, type);
    const cur = this.store.get(ctx.def, ctx.ns, ctx.name!);
    const sub = ctx.sub;
    const apiVersion = apiVersionOf(ctx.def);
    if (type === PATCH_TYPES.apply) {
      if (!isObject(body)) throw err.badRequest('invalid object type: /, Kind=');
      const cfg = body as KObj;
      if (cfg.kind !== ctx.def.kind || cfg.apiVersion !== apiVersion)
        throw err.badRequest(`invalid object type: ${cfg.apiVersion ?? ''}, Kind=${cfg.kind ?? ''}`);
      this.checkGoTypes(cfg, ctx.def.kind);
      cfg.metadata ??= {};
      if (cfg.metadata.name === undefined) cfg.metadata.name = ctx.name;
      this.checkName(cfg, ctx);
      const manager = ctx.q.get('fieldManager')!;
      const input = { manager, force, apiVersion, time: nowTimestamp(), ...(sub ? { subresource: sub } : {}) };
      if (!cur) {
        if (sub) throw err.notFound(ctx.def.group, ctx.def.resource, ctx.name!);
        const rv = cfg.metadata.resourceVersion;
        if (rv) throw err.conflict(ctx.def.group, ctx.def.resource, ctx.name!);
        const { obj, owners } = serverSideApply(undefined, cfg, [], input);
        this.prepareForCreate(ctx.def, obj);
        this.validate(ctx.def, obj);
        obj.apiVersion = apiVersion;
        obj.kind = ctx.def.kind;
        if (dry) return json(res, 201, obj);
        return json(res, 201, this.store.put(ctx.def, obj, owners));
      }
      this.checkPreconditionRV(ctx, cur.obj, cfg.metadata.resourceVersion);
      const cleanCfg = clone(cfg);
      delete cleanCfg.metadata!.resourceVersion;
      const { obj, owners } = serverSideApply(cur.obj, cleanCfg, cur.owners, input);
      obj.metadata.resourceVersion = cur.obj.metadata!.resourceVersion;
      this.prepareForUpdate(ctx.def, cur.obj, obj, sub);
      this.validate(ctx.def, obj, cur.obj);
      return json(res, 200, this.commitUpdate(ctx.def, cur, obj, { dry, owners }));
    }
    if (!cur) throw err.notFound(ctx.def.group, ctx.def.resource, ctx.name!);
    const patched = this.applyPatch(type, cur.obj, body);
    this.checkGoTypes(patched, ctx.def.kind);
    this.checkPreconditionRV(ctx, cur.obj, patched.metadata?.resourceVersion);
    if (patched.metadata?.uid !== undefined && patched.metadata.uid !== cur.obj.metadata!.uid)
      throw err.preconditionFailed(
        ctx.def.group,
        ctx.def.resource,
        ctx.name!,
        'UID',
        patched.metadata.uid,
        cur.obj.metadata!.uid,
      );
    if (patched.metadata?.name !== undefined && patched.metadata.name !== ctx.name)
      throw err.badRequest(
        `the name of the object (${patched.metadata.name}) does not match the name on the URL (${ctx.name})`,
      );
    this.checkTypeMeta(patched, ctx.def.kind, apiVersion);
    json(res, 200, this.updateTo(ctx, cur, patched, dry, sub));
  }

  // -------------------------------------------------------------------------------------------
  // scale subresource (autoscaling/v1 Scale)

  scaleOf(o: KObj): KObj {
    const m = o.metadata!;
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resourceVersion: m.resourceVersion,
        creationTimestamp: m.creationTimestamp,
      },
      spec: o.spec?.replicas ? { replicas: o.spec.replicas } : {},
      status: { replicas: o.status?.replicas ?? 0, selector: labelSelectorToString(o.spec?.selector) },
    };
  }

  private getScale(res: http.ServerResponse, ctx: Ctx): void {
    json(res, 200, this.scaleOf(this.getOr404(ctx).obj));
  }

  private updateScale(res: http.ServerResponse, ctx: Ctx, patchedScale?: KObj, dryFromPatch?: boolean): void {
    const dry = dryFromPatch ?? this.dryRun(ctx, 'UpdateOptions');
    const scale = patchedScale ?? this.decodeTyped(ctx, 'Scale', 'autoscaling/v1');
    this.checkGoTypes(scale, 'Scale');
    const cur = this.getOr404(ctx);
    if ((scale.metadata?.name ?? '') !== ctx.name)
      throw err.badRequest(
        `the name of the object (${scale.metadata?.name ?? ''}) does not match the name on the URL (${ctx.name})`,
      );
    this.checkPreconditionRV(ctx, cur.obj, scale.metadata?.resourceVersion);
    const replicas = scale.spec?.replicas ?? 0;
    if (replicas < 0)
      throw err.invalid('autoscaling', 'Scale', ctx.name!, [
        fieldErr.invalid('spec.replicas', replicas, 'must be greater than or equal to 0'),
      ]);
    const next = clone(cur.obj);
    next.spec = { ...(next.spec ?? {}), replicas };
    json(res, 200, this.scaleOf(this.updateTo(ctx, cur, next, dry, 'scale')));
  }

  private patchScale(res: http.ServerResponse, ctx: Ctx): void {
    const { type, dry } = this.patchOptions(ctx);
    const body = this.patchBody(ctx, type);
    const cur = this.getOr404(ctx);
    const scale = this.scaleOf(cur.obj);
    let patched: KObj;
    if (type === PATCH_TYPES.apply) {
      // Simplification: apply on /scale merges spec.replicas without field-ownership bookkeeping.
      const cfg = body as KObj;
      if (!isObject(cfg) || cfg.kind !== 'Scale' || cfg.apiVersion !== 'autoscaling/v1')
        throw err.badRequest(`invalid object type: ${cfg?.apiVersion ?? ''}, Kind=${cfg?.kind ?? ''}`);
      this.checkGoTypes(cfg, 'Scale');
      patched = strategicMerge(scale, { spec: cfg.spec ?? {} });
      if (cfg.metadata?.resourceVersion) patched.metadata!.resourceVersion = cfg.metadata.resourceVersion;
    } else patched = this.applyPatch(type, scale, body);
    patched.metadata ??= {};
    if (patched.metadata.name === undefined) patched.metadata.name = ctx.name;
    this.updateScale(res, ctx, patched, dry);
  }

  // -------------------------------------------------------------------------------------------
  // pods/log

  private podLog(res: http.ServerResponse, ctx: Ctx): void {
    const pod = this.getOr404(ctx).obj;
    const podDef = ctx.def;
    servePodLog(res, pod, ctx.q, {
      logs: this.logs,
      onPodGone: (cb) => {
        const listener = (ev: { type: string; def: ResourceDef; obj: KObj }) => {
          if (
            ev.type === 'DELETED' &&
            ev.def === podDef &&
            ev.obj.metadata?.name === ctx.name &&
            ev.obj.metadata?.namespace === ctx.ns
          )
            cb();
        };
        this.store.listeners.add(listener);
        return () => void this.store.listeners.delete(listener);
      },
      track: (stream, cleanup) => {
        this.openStreams.add(stream);
        this.cleanups.add(cleanup);
        return () => {
          this.openStreams.delete(stream);
          this.cleanups.delete(cleanup);
        };
      },
    });
  }

  // -------------------------------------------------------------------------------------------
  // delete

  private deleteOptions(ctx: Ctx): {
    dry: boolean;
    policy?: string;
    grace?: number;
    preconditions?: { uid?: string; resourceVersion?: string };
  } {
    let opts: Record<string, any> = {};
    if (ctx.body.trim() !== '') {
      const parsed = this.decodeBody(ctx.body, ctx.contentType ?? 'application/json');
      if (isObject(parsed)) opts = parsed;
    }
    const dryBody: string[] = Array.isArray(opts.dryRun) ? opts.dryRun : [];
    const policy = ctx.q.get('propagationPolicy') ?? opts.propagationPolicy ?? undefined;
    const errs: FieldError[] = [];
    const dryValues = [...ctx.q.getAll('dryRun'), ...dryBody];
    if (dryValues.some((v) => v !== 'All')) errs.push(fieldErr.notSupported('dryRun', dryValues, ['All']));
    if (policy !== undefined && !PROPAGATION.includes(policy))
      errs.push(fieldErr.notSupported('propagationPolicy', policy, [...PROPAGATION, 'nil']));
    const orphan = ctx.q.get('orphanDependents') ?? opts.orphanDependents;
    if (orphan !== undefined && policy !== undefined)
      errs.push(
        fieldErr.invalid('propagationPolicy', policy, 'orphanDependents and deletionPropagation cannot be both set'),
      );
    const graceRaw = ctx.q.get('gracePeriodSeconds') ?? opts.gracePeriodSeconds;
    const grace = graceRaw === undefined || graceRaw === null ? undefined : Number(graceRaw);
    if (errs.length > 0) throw err.invalidOptions('DeleteOptions', errs);
    const effective = policy ?? (orphan === true || orphan === 'true' ? 'Orphan' : undefined);
    return {
      dry: dryValues.length > 0,
      policy: effective,
      grace,
      preconditions: isObject(opts.preconditions) ? opts.preconditions : undefined,
    };
  }

  private delete(res: http.ServerResponse, ctx: Ctx): void {
    const opts = this.deleteOptions(ctx);
    const cur = this.getOr404(ctx);
    const out = this.deleteOne(ctx.def, cur.obj, opts);
    json(res, out.code, out.body);
  }

  private deleteOne(
    def: ResourceDef,
    obj: KObj,
    opts: ReturnType<FakeApiServer['deleteOptions']>,
  ): { code: number; body: KObj | StatusBody } {
    const m = obj.metadata!;
    const name = m.name!;
    const p = opts.preconditions;
    if (p?.uid && p.uid !== m.uid) throw err.preconditionFailed(def.group, def.resource, name, 'UID', p.uid, m.uid);
    if (p?.resourceVersion && p.resourceVersion !== m.resourceVersion)
      throw err.preconditionFailed(
        def.group,
        def.resource,
        name,
        'ResourceVersion',
        p.resourceVersion,
        m.resourceVersion,
      );
    const stored = this.store.get(def, m.namespace, name)!;
    if (m.deletionTimestamp) return { code: 200, body: clone(obj) }; // already being deleted

    const finalizers = [...(m.finalizers ?? [])];
    if (def.kind !== 'Pod') {
      if (opts.policy === 'Foreground' && !finalizers.includes('foregroundDeletion'))
        finalizers.push('foregroundDeletion');
      if (opts.policy === 'Orphan' && !finalizers.includes('orphan')) finalizers.push('orphan');
    }
    const graceful = def.kind === 'Pod' && Boolean(obj.spec?.nodeName) && opts.grace !== 0;
    if (finalizers.length > 0 || graceful) {
      const next = clone(obj);
      next.metadata!.deletionTimestamp = nowTimestamp();
      next.metadata!.deletionGracePeriodSeconds = graceful
        ? (opts.grace ?? obj.spec?.terminationGracePeriodSeconds ?? 30)
        : 0;
      next.metadata!.finalizers = finalizers;
      if (finalizers.length === 0) delete next.metadata!.finalizers;
      if (def.generation) next.metadata!.generation = (m.generation ?? 1) + 1;
      if (opts.dry) return { code: 200, body: next };
      const saved = this.store.put(def, next, stored.owners);
      // The garbage collector (for foreground/orphan) or the kubelet (graceful pod deletion) finishes the job.
      setImmediate(() => this.finishDeletion(def, saved.metadata!.namespace, name));
      return { code: 200, body: saved };
    }
    const result: { code: number; body: KObj | StatusBody } = def.returnDeletedObject
      ? { code: 200, body: clone(obj) }
      : { code: 200, body: success({ name, group: def.group, kind: def.resource, uid: m.uid }) };
    if (opts.dry) return result;
    this.finalizeDelete(def, m.namespace, name, opts.policy ?? 'Background');
    return result;
  }

  /** Removes the GC finalizers of an object being deleted (after dealing with its dependents), and graceful pods. */
  private finishDeletion(def: ResourceDef, ns: string | undefined, name: string): void {
    const s = this.store.get(def, ns, name);
    if (!s?.obj.metadata?.deletionTimestamp) return;
    const fins = s.obj.metadata.finalizers ?? [];
    const uid = s.obj.metadata.uid!;
    if (fins.includes('foregroundDeletion')) this.collectDependents(uid, 'Background');
    if (fins.includes('orphan')) this.collectDependents(uid, 'Orphan');
    const rest = fins.filter((f) => f !== 'foregroundDeletion' && f !== 'orphan');
    if (rest.length > 0) {
      if (rest.length !== fins.length) {
        const next = clone(s.obj);
        next.metadata!.finalizers = rest;
        this.store.put(def, next, s.owners);
      }
      return;
    }
    this.finalizeDelete(def, ns, name, 'Background');
  }

  /** Removes an object for good and lets the garbage collector handle its dependents. */
  private finalizeDelete(def: ResourceDef, ns: string | undefined, name: string, policy: string): KObj | undefined {
    const gone = this.store.remove(def, ns, name);
    if (!gone) return undefined;
    if (def.kind === 'Pod') this.logs.dropPod(ns ?? '', name);
    this.collectDependents(gone.metadata!.uid!, policy === 'Orphan' ? 'Orphan' : 'Background');
    return gone;
  }

  private collectDependents(ownerUid: string, policy: 'Orphan' | 'Background'): void {
    for (const def of registry.all()) {
      for (const s of this.store.list(def)) {
        const refs = s.obj.metadata?.ownerReferences ?? [];
        if (!refs.some((r) => r.uid === ownerUid)) continue;
        if (policy === 'Orphan') {
          const next = clone(s.obj);
          next.metadata!.ownerReferences = refs.filter((r) => r.uid !== ownerUid);
          if (next.metadata!.ownerReferences.length === 0) delete next.metadata!.ownerReferences;
          this.store.put(def, next, s.owners);
        } else if (refs.length === 1 || refs.every((r) => r.uid === ownerUid)) {
          this.finalizeDelete(def, s.obj.metadata?.namespace, s.obj.metadata!.name!, 'Background');
        }
      }
    }
  }

  private deleteCollection(res: http.ServerResponse, ctx: Ctx): void {
    const opts = this.deleteOptions(ctx);
    const match = this.selectors(ctx);
    const items: KObj[] = [];
    for (const s of this.store.list(ctx.def, ctx.ns)) {
      if (!match(s.obj)) continue;
      const out = this.deleteOne(ctx.def, s.obj, { ...opts, preconditions: undefined });
      items.push(out.body.kind === 'Status' ? s.obj : (out.body as KObj));
    }
    json(res, 200, {
      kind: `${ctx.def.kind}List`,
      apiVersion: apiVersionOf(ctx.def),
      metadata: { resourceVersion: this.store.resourceVersion },
      items: items.map(stripTypeMeta),
    });
  }
}

interface Ctx {
  def: ResourceDef;
  ns?: string;
  name?: string;
  q: URLSearchParams;
  body: string;
  contentType?: string;
  req: http.IncomingMessage;
  /** `status` or `scale` when the request addresses a subresource. */
  sub?: string;
}

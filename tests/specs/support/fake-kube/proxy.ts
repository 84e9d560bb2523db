/**
 * The `pods/proxy` and `services/proxy` subresources, as the apiserver serves them
 * (`/api/v1/namespaces/{ns}/pods/{[scheme:]name[:port]}/proxy[/{path}]`, the same for services with a port
 * name or number): every method of the connect handler (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS), the
 * request body, query string and headers forwarded, and the backend's status, headers and body streamed back
 * (k8s.io/apimachinery/pkg/util/proxy UpgradeAwareHandler + Transport):
 *
 * - the path after `/proxy` is the backend path (percent-escapes decoded, as Go's URL.Path is; a trailing
 *   slash kept); a GET/HEAD with no path at all is redirected (301) to `.../proxy/`;
 * - the Authorization header is not passed on (the authentication filter removes it); X-Forwarded-For,
 *   X-Forwarded-Uri, X-Forwarded-Host and X-Forwarded-Proto are added; hop-by-hop headers are dropped both
 *   ways; a backend redirect to an absolute path is rewritten under the proxy prefix;
 * - a backend that cannot be reached is 503 `error trying to reach service: dial tcp <podIP>:<port>: connect:
 *   connection refused` (proxy.Transport wraps the dial error in errors.NewServiceUnavailable).
 *
 * Where a pod's port leads is backends.ts. Not here: HTML link rewriting, protocol upgrades (WebSocket) through
 * the proxy, the bandwidth limit.
 */
import http from 'node:http';
import https from 'node:https';
import type { PodBackends } from './backends.js';
import type { ProxyTarget } from './proxy-target.js';
import { err } from './status.js';

export interface ProxyRoute {
  kind: 'pods' | 'services';
  namespace: string;
  /** `[scheme:]name[:port]` */
  id: string;
  /** Backend path: '' (none) or starting with '/'. */
  path: string;
  /** `/api/v1/namespaces/{ns}/{kind}/{id}/proxy`, as the client wrote it. */
  prefix: string;
}

const PROXY_PATH = /^(\/api\/v1\/namespaces\/([^/]+)\/(pods|services)\/([^/]+)\/proxy)(\/.*)?$/;

/** The RBAC verb the apiserver's RequestInfoFactory gives a connect request, by method. */
export const PROXY_VERBS: Record<string, string> = {
  GET: 'get',
  HEAD: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
  OPTIONS: '',
};

const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export function parseProxyPath(rawPath: string): ProxyRoute | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  const m = PROXY_PATH.exec(decoded);
  if (!m) return undefined;
  const rawPrefix = /^\/api\/v1\/namespaces\/[^/]+\/(?:pods|services)\/[^/]+\/proxy/.exec(rawPath)?.[0] ?? m[1]!;
  return { kind: m[3] as 'pods' | 'services', namespace: m[2]!, id: m[4]!, path: m[5] ?? '', prefix: rawPrefix };
}

/** Go's URL.EscapedPath for a decoded path, near enough. */
function escapePath(p: string): string {
  return encodeURI(p).replace(/\?/g, '%3F').replace(/#/g, '%23');
}

function forwardHeaders(headers: http.IncomingHttpHeaders, drop: string[] = []): http.OutgoingHttpHeaders {
  const extra = String(headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase());
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || extra.includes(k) || drop.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

/** The Go dial error text for a failed connection to `podIP:port`. */
function reachError(e: NodeJS.ErrnoException, t: ProxyTarget): string {
  const addr = `${t.podIP}:${t.port}`;
  if (e.code === 'ECONNREFUSED') return `dial tcp ${addr}: connect: connection refused`;
  if (e.code === 'ETIMEDOUT') return `dial tcp ${addr}: i/o timeout`;
  if (e.code === 'ECONNRESET' || e.message === 'socket hang up') return 'EOF';
  return e.message;
}

export interface ProxyOptions {
  backends: PodBackends;
  /** The apiserver's own scheme, for X-Forwarded-Proto. */
  scheme: 'http' | 'https';
  /** Called with each chunk of the request body (for the request log). */
  onBody?: (chunk: Buffer) => void;
  /** Tracks the in-flight exchange so that closing the server can end it. */
  track: (abort: () => void) => () => void;
}

/** Forwards one request to its target; errors before the backend answers are the apiserver's Status answers. */
export function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  route: ProxyRoute,
  target: ProxyTarget,
  query: string,
  opts: ProxyOptions,
  fail: (e: unknown) => void,
): void {
  const method = (req.method ?? 'GET').toUpperCase();
  if (route.path === '' && (method === 'GET' || method === 'HEAD')) {
    req.resume();
    res.writeHead(301, { Location: `${route.prefix}/${query ? `?${query}` : ''}` });
    res.end();
    return;
  }
  const backend = opts.backends.resolve(target.pod, target.port);
  const unreachable = (e: NodeJS.ErrnoException) =>
    fail(err.serviceUnavailable(`error trying to reach service: ${reachError(e, target)}`));
  if (!backend) {
    req.resume();
    unreachable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    return;
  }
  const headers = forwardHeaders(req.headers, ['authorization']);
  const forwardedFor = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
  Object.assign(headers, {
    'x-forwarded-for': forwardedFor,
    'x-forwarded-uri': `${route.prefix}${route.path || '/'}`,
    'x-forwarded-host': req.headers.host ?? '',
    'x-forwarded-proto': opts.scheme,
  });
  const client = target.scheme === 'https' ? https : http;
  const out = client.request({
    host: backend.host,
    port: backend.port,
    method,
    path: `${escapePath(route.path || '/')}${query ? `?${query}` : ''}`,
    headers,
    ...(target.scheme === 'https' ? { rejectUnauthorized: false } : {}),
  });
  const untrack = opts.track(() => {
    out.destroy();
    res.destroy();
  });
  res.on('close', () => {
    untrack();
    out.destroy();
  });
  out.on('error', (e: NodeJS.ErrnoException) => {
    if (!res.headersSent) unreachable(e);
    else res.destroy();
  });
  out.on('response', (back) => {
    const h = forwardHeaders(back.headers);
    const location = back.headers.location;
    if (typeof location === 'string' && location.startsWith('/') && !location.startsWith(route.prefix))
      h.location = `${route.prefix}${location}`;
    res.writeHead(back.statusCode ?? 502, h);
    back.pipe(res);
  });
  req.on('data', (c: Buffer) => opts.onBody?.(c));
  req.pipe(out);
}

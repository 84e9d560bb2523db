/**
 * Requests to a worker's FlowRunner control API (`/api/*`) through the API server's pod proxy, with the
 * agent's own Kubernetes credentials. The API server keeps the Authorization header for itself, so the
 * worker's token travels in X-Runtime-Agent-Token (which the agent accepts like a bearer token).
 */
import type { StepContext } from '../../contract.js';
import type { Clients } from '../connection.js';
import { scrubCredentials } from '../errors.js';
import { containerError } from './errors.js';

/** The header a worker reads its token from when Authorization cannot reach it. */
export const TOKEN_HEADER = 'X-Runtime-Agent-Token';

export interface WorkerAnswer {
  pod: string;
  status: number;
  body: unknown;
}

export interface PodAddress {
  namespace: string;
  pod: string;
  port: number;
}

/**
 * Sends one request to a pod's control API and returns the worker's answer, whatever its status. A failure
 * to reach it is socket_connection_error (the API server's proxy could not connect, or the API server
 * itself), socket_timeout_error after `timeoutMs`, socket_error when what answered is not the control API;
 * the caller's signal aborts it as cancelled.
 */
export async function toWorker(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  to: PodAddress,
  token: string,
  req: { method: 'GET' | 'POST'; path: string; body?: unknown },
  timeoutMs: number,
): Promise<WorkerAnswer> {
  const path = `/api/v1/namespaces/${encodeURIComponent(to.namespace)}/pods/${encodeURIComponent(to.pod)}:${to.port}/proxy${req.path}`;
  const what = `${req.method} ${req.path} on worker pod ${to.namespace}/${to.pod}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([ctx.signal, timeout]);
  let status: number;
  let text: string;
  try {
    const request = new clients.lib.RequestContext(
      `${clients.server.replace(/\/$/, '')}${path}`,
      clients.lib.HttpMethod[req.method],
    );
    request.setHeaderParam('Accept', 'application/json');
    request.setHeaderParam(TOKEN_HEADER, token);
    if (req.body !== undefined) {
      request.setHeaderParam('Content-Type', 'application/json');
      request.setBody(JSON.stringify(req.body));
    }
    request.setSignal(signal);
    await clients.kc.applySecurityAuthentication(request);
    const response = await clients.http.send(request).toPromise();
    status = response.httpStatusCode;
    text = await response.body.text();
  } catch (err) {
    if (ctx.signal.aborted) throw containerError('cancelled', 'socket_error', `${what} was aborted`, { cause: err });
    if (timeout.aborted)
      throw containerError('timeout', 'socket_timeout_error', `${what}: no answer within ${timeoutMs} ms`, {
        cause: err,
        details: { pod: to.pod },
      });
    throw containerError(
      'network_error',
      'socket_connection_error',
      `${what}: the API server is unreachable: ${scrubCredentials((err as Error)?.message ?? String(err))}`,
      { cause: err, details: { pod: to.pod } },
    );
  }
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // The API server's own failures are JSON (a Status), and so is every answer of the control API.
    throw containerError(
      'adapter_error',
      'socket_error',
      `${what}: answered HTTP ${status} with something that is not the control API's JSON (is the worker this product's image?): ${text.slice(0, 200)}`,
      { retryable: false, details: { pod: to.pod, code: status } },
    );
  }
  if (isProxyFailure(status, body)) {
    const message = (body as { message?: string }).message ?? `HTTP ${status}`;
    const kind = status === 403 || status === 401 ? 'forbidden' : 'network_error';
    throw containerError(
      kind,
      status === 403 || status === 401 ? 'kubernetes_api_error' : 'socket_connection_error',
      `${what}: ${scrubCredentials(message)}`,
      { retryable: status >= 500, details: { pod: to.pod, code: status } },
    );
  }
  return { pod: to.pod, status, body };
}

/**
 * True when the answer is the API server's own (a Status body: the pod is gone, the proxy could not
 * connect, RBAC), not the worker's. A worker never answers with a `kind: Status` object.
 */
function isProxyFailure(status: number, body: unknown): boolean {
  if (status < 400 || body === null || typeof body !== 'object') return false;
  const b = body as { kind?: unknown; apiVersion?: unknown };
  return b.kind === 'Status' && b.apiVersion === 'v1';
}

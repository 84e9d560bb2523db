/**
 * API server answers to the taxonomy. The `Status` body of a failed call says
 * why (reason, message, details); 403s name the missing verb and resource and
 * point at the RBAC manifest. 429, 5xx and network failures are retryable (the
 * engine's retry policy decides); the rest are not.
 */
import { ApiException } from '@kubernetes/client-node';
import { AgentError, type ErrorType } from '../errors.js';

export const RBAC_HINT = 'grant it in deploy/rbac.yaml (the README lists the verbs each action needs)';

interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  details?: { name?: string; kind?: string; group?: string; causes?: Array<{ field?: string; message?: string; reason?: string }> };
  code?: number;
}

/** The Status body of a failed call, parsed when client-node left it as text. */
export function statusOf(err: ApiException<unknown>): StatusBody {
  const body = err.body;
  if (body && typeof body === 'object') return body as StatusBody;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as unknown;
      if (parsed && typeof parsed === 'object') return parsed as StatusBody;
    } catch {
      return { message: body.slice(0, 500) };
    }
  }
  return {};
}

/** Maps anything a client-node call threw; `what` (`PATCH Deployment default/web`) starts the message. */
export function toK8sError(err: unknown, what: string, signal?: AbortSignal): AgentError {
  if (err instanceof AgentError) return err;
  if (signal?.aborted) return new AgentError('cancelled', `${what} was aborted`, { cause: err });
  if (err instanceof ApiException) {
    const status = statusOf(err);
    const message = status.message ?? `HTTP ${err.code}`;
    const details: Record<string, unknown> = { code: err.code, reason: status.reason ?? null };
    if (status.details?.causes?.length) details.causes = status.details.causes;
    const make = (type: ErrorType, text: string, retryable: boolean) => new AgentError(type, `${what}: ${text}`, { cause: err, retryable, details });
    switch (err.code) {
      case 400:
        return make('validation_error', `the API server rejected the request: ${message}`, false);
      case 401:
        return make('unauthorized', `the API server rejected the agent's credentials (${message}); check the service-account token or kubeconfig`, false);
      case 403: {
        const m = /cannot (\w+) resource "([^"]+)" in API group "([^"]*)"/.exec(message);
        const missing = m ? `the agent may not ${m[1]} ${m[2]}${m[3] ? ` in API group ${m[3]}` : ''}; ` : '';
        if (m) Object.assign(details, { verb: m[1], resource: m[2], group: m[3] });
        return make('forbidden', `${message}. ${missing}${RBAC_HINT}`, false);
      }
      case 404:
        return make('not_found', message, false);
      case 409:
        // A stale resourceVersion may succeed on a fresh try; an object that already exists will not.
        return make('conflict', message, status.reason !== 'AlreadyExists');
      case 422:
        return make('validation_error', `the API server found the object invalid: ${message}`, false);
      case 429:
        return make('rate_limited', `the API server is throttling requests: ${message}`, true);
      default:
        return make('adapter_error', `the API server answered ${err.code}: ${message}`, err.code >= 500);
    }
  }
  const e = err as { code?: string; message?: string; name?: string; type?: string };
  const message = e?.message ?? String(err);
  if (e?.name === 'FetchError' || e?.type === 'system' || /ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|socket hang up/.test(message)) {
    return new AgentError('network_error', `${what}: the API server is unreachable: ${message}`, { cause: err, details: { code: e?.code ?? null } });
  }
  return new AgentError('adapter_error', `${what}: ${message}`, { cause: err });
}

/**
 * The call's own settlement, or a rejection as soon as `signal` aborts. Unary calls of client-node's
 * KubernetesObjectApi take no signal, and an API call is short: on cancel the step settles now and
 * the request finishes (unobserved) in the background.
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

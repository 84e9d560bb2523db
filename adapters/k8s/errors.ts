/**
 * API server answers to the taxonomy. The `Status` body of a failed call says
 * why (reason, message, details); RBAC 403s name the missing verb and resource
 * and point at the RBAC manifest. 429, 5xx and network failures are retryable
 * (the engine's retry policy decides); the rest are not. A certificate the
 * agent cannot verify is a configuration problem, never retried.
 */
import type { ApiException } from '@kubernetes/client-node';
import { clientNodeIfLoaded } from './client-node.js';
import { AgentError, type ErrorType } from '../errors.js';

export const RBAC_HINT =
  'grant it in deploy/base/rbac/rbac.yaml (docs/kubernetes.md lists the verbs each action needs)';

export const CA_HINT =
  "the agent does not trust the API server's certificate: give it the cluster's CA (caData in POST /init, K8S_CA_FILE, certificate-authority(-data) in the kubeconfig, ca.crt of the service account) and make sure the server name matches the certificate";

/** Node's codes for a certificate that does not verify (tls.TLSSocket's authorizationError, checkServerIdentity). */
export const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    kind?: string;
    group?: string;
    causes?: Array<{ field?: string; message?: string; reason?: string }>;
  };
  code?: number;
}

/** Whether `err` is client-node's answer to a failed call (only possible once client-node is loaded). */
export function isApiException(err: unknown): err is ApiException<unknown> {
  const lib = clientNodeIfLoaded();
  return lib !== undefined && err instanceof lib.ApiException;
}

/** The Status body of a failed call, parsed when it was left as text; a non-JSON body (a proxy's HTML page) becomes its first 500 characters. */
export function statusOf(err: ApiException<unknown>): StatusBody {
  const body = err.body;
  if (body && typeof body === 'object') return body as StatusBody;
  if (typeof body === 'string' && body.trim() !== '') {
    try {
      const parsed = JSON.parse(body) as unknown;
      if (parsed && typeof parsed === 'object') return parsed as StatusBody;
    } catch {
      // not JSON: fall through
    }
    return { message: body.trim().slice(0, 500) };
  }
  return {};
}

/** The `cannot <verb> resource "<r>" in API group "<g>"` part of an RBAC denial, as the apiserver's authorizer writes it. */
const RBAC_DENIAL = /cannot (\S+) resource "([^"]+)" in API group "([^"]*)"/;

/** Server-side apply's field-ownership conflict (409): `Apply failed with 1 conflict: conflict with "kubectl" ...`. */
const SSA_CONFLICT = /^Apply failed with \d+ conflicts?/;

/** The code of a TLS verification failure, wherever the HTTP client put the original error. */
function tlsCode(err: unknown): string | undefined {
  for (
    let e = err as { code?: unknown; errno?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 4;
    e = e.cause as typeof e, depth++
  ) {
    for (const c of [e.code, e.errno]) if (typeof c === 'string' && TLS_CODES.has(c)) return c;
  }
  return undefined;
}

/** Replaces what follows an authorization scheme (Bearer, Basic) with ***. */
export function scrubCredentials(text: string): string {
  return text.replace(/\b(Bearer|Basic)\s+[^\s"',;]+/gi, '$1 ***');
}

/** Maps anything a client-node call threw; `what` (`PATCH Deployment default/web`) starts the message. */
export function toK8sError(err: unknown, what: string, signal?: AbortSignal): AgentError {
  if (err instanceof AgentError) return err;
  if (signal?.aborted) return new AgentError('cancelled', `${what} was aborted`, { cause: err });
  if (isApiException(err)) {
    const status = statusOf(err);
    const message = status.message ?? `HTTP ${err.code}`;
    const details: Record<string, unknown> = { code: err.code, reason: status.reason ?? null };
    if (status.details?.causes?.length) details.causes = status.details.causes;
    const make = (type: ErrorType, text: string, retryable: boolean) =>
      new AgentError(type, `${what}: ${text}`, { cause: err, retryable, details });
    switch (err.code) {
      case 400:
        return make('validation_error', `the API server rejected the request: ${message}`, false);
      case 401:
        return make(
          'unauthorized',
          `the API server rejected the agent's credentials (${status.message ?? '401 Unauthorized, no details given'}); check the service-account token or the kubeconfig's user`,
          false,
        );
      case 403: {
        const m = RBAC_DENIAL.exec(message);
        // Admission webhooks, quotas and a terminating namespace answer 403 too; only an RBAC denial gets the RBAC hint.
        if (!m) return make('forbidden', message, false);
        Object.assign(details, { verb: m[1], resource: m[2], group: m[3] });
        return make(
          'forbidden',
          `${message}. the agent may not ${m[1]} ${m[2]}${m[3] ? ` in API group ${m[3]}` : ''}; ${RBAC_HINT}`,
          false,
        );
      }
      case 404:
        return make('not_found', message, false);
      case 409:
        if (SSA_CONFLICT.test(message)) {
          return make(
            'conflict',
            `${message}; another field manager owns these fields: set force: true to take them over, or leave them out of the manifest`,
            false,
          );
        }
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
  // Node names the bad header value in some errors ("Bearer … is not a legal HTTP header value"): never repeat a credential.
  const message = scrubCredentials(e?.message ?? String(err));
  const tls = tlsCode(err);
  if (tls)
    return new AgentError('adapter_error', `${what}: TLS verification failed (${tls}: ${message}); ${CA_HINT}`, {
      cause: err,
      retryable: false,
      details: { code: tls, tls: true },
    });
  if (
    e?.name === 'FetchError' ||
    e?.type === 'system' ||
    /ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN|socket hang up/.test(message)
  ) {
    return new AgentError('network_error', `${what}: the API server is unreachable: ${message}`, {
      cause: err,
      details: { code: e?.code ?? null },
    });
  }
  return new AgentError('adapter_error', `${what}: ${message}`, { cause: err });
}

/**
 * The call's own settlement, or a rejection as soon as `signal` aborts. Only for calls that take no
 * signal (discovery, the health check): every request that may change something carries the step's
 * signal itself, so that it is really aborted before the step settles.
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
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

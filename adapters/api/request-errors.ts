import type { StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { findRefusal, type EgressRefusal } from '../shared/egress-refusal.js';
import { gotIfLoaded } from './client.js';

/** Node's codes for a request it refuses to send: retrying cannot help. */
const INVALID_REQUEST_CODES = new Set([
  'ERR_INVALID_CHAR',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_HTTP_INVALID_HEADER_VALUE',
  'ERR_INVALID_URL',
  'ERR_UNESCAPED_CHARACTERS',
]);

/** Maps what got threw to the taxonomy; `what` is `METHOD url` for the message; `timedOut` when our timeoutMs timer cancelled it. */
export function toAgentError(
  err: unknown,
  ctx: StepContext,
  what: string,
  timeoutMs: number,
  timedOut: boolean,
): AgentError {
  // The engine reclassifies a cancel by the signal's reason (cancel, deadline, shutdown).
  if (ctx.signal.aborted) return new AgentError('cancelled', `${what} was aborted`, { cause: err });
  const refusal = findRefusal(err);
  if (refusal) return refused(what, refusal, err);
  const code = (err as { code?: unknown } | null)?.code;
  const got = gotIfLoaded();
  if (timedOut || (got && err instanceof got.TimeoutError) || code === 'ETIMEDOUT') {
    return new AgentError(
      'timeout',
      `${what} did not complete within timeoutMs ${timeoutMs} ms; raise timeoutMs or check the server`,
      {
        cause: err,
        details: { timeoutMs },
      },
    );
  }
  if (got && err instanceof got.RequestError) {
    if (INVALID_REQUEST_CODES.has(err.code)) {
      return new AgentError('validation_error', `${what} cannot be sent: ${err.code} ${err.message}`, {
        cause: err,
        retryable: false,
        details: { code: err.code },
      });
    }
    return new AgentError(
      'network_error',
      `${what} failed: ${err.code} ${err.message}; check that the server is reachable`,
      {
        cause: err,
        details: { code: err.code },
      },
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new AgentError('adapter_error', `${what} failed: ${message}`, { cause: err });
}

/**
 * `forbidden`: the egress policy refused the destination (before the request, at a redirect, or at connect
 * time after DNS); no connection to it was opened.
 */
export function refused(what: string, refusal: EgressRefusal, cause: unknown = refusal): AgentError {
  const got = gotIfLoaded();
  const redirects = got && cause instanceof got.RequestError ? cause.request?.redirectUrls : undefined;
  const last = redirects?.[redirects.length - 1];
  // Without search and credentials: a redirect URL may carry tokens.
  const to = last && `${last.protocol}//${last.host}${last.pathname}`;
  return new AgentError(
    'forbidden',
    `${what} ${to ? `redirected to ${to}; the redirect was not followed` : 'was not sent'}: ${refusal.message}`,
    {
      cause,
      retryable: false,
      details: { ...refusal.details, ...(to ? { redirectedTo: to } : {}) },
    },
  );
}

/**
 * Errors on the Socket.IO channel: `{ error_type, message, details }` as on HTTP, with one change for the
 * channel's existing clients: an unexpected failure is `system_error` (their name for it) rather than
 * `internal_error`. As on HTTP, a server-side failure shows no details, and an unknown throw shows only an
 * incident id that the agent's log has under the same id.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AgentError } from '../../../../adapters/errors.js';

export type ErrorBody = {
  error_type: string;
  message: string;
  details: Record<string, unknown>;
};

export type Ack = { ok: true; [field: string]: unknown } | { ok: false; error: ErrorBody };

/** The wire form of anything a command threw; `operation` names the command (the seed's `details.operation`). */
export function errorBody(
  err: unknown,
  operation: string,
  logger: Logger,
  /** The command's own name for the failure (CommandSpec.errorType), else the taxonomy's. */
  typeOf: (err: AgentError) => string | undefined = () => undefined,
): ErrorBody {
  if (err instanceof AgentError && err.status < 500)
    return { error_type: typeOf(err) ?? err.type, message: err.message, details: { ...err.details, operation } };
  if (err instanceof AgentError) {
    logger.warn({ err, operation }, 'socket command failed');
    return { error_type: typeOf(err) ?? wireType(err.type), message: err.message, details: { operation } };
  }
  const incident = randomUUID();
  logger.error({ err, incident, operation }, 'unexpected error while serving a socket command');
  return {
    error_type: 'system_error',
    message: `internal error; the agent log has the details under incident ${incident}`,
    details: { operation, incident },
  };
}

function wireType(type: string): string {
  return type === 'internal_error' ? 'system_error' : type;
}

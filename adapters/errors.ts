/**
 * The one error taxonomy (docs/http-api.md#errors), shared by adapters, the engine and
 * the HTTP layer. Adapters throw these; the engine records them on steps and
 * executions; one Koa middleware turns them into `{ error_type, message, details }`.
 */
export const ERROR_TYPES = [
  'validation_error',
  'template_error',
  'not_found',
  'conflict',
  'unauthorized',
  'forbidden',
  'payload_too_large',
  'rate_limited',
  'timeout',
  'cancelled',
  'interrupted',
  'command_failed',
  'http_status',
  'network_error',
  'adapter_error',
  'internal_error',
] as const;

export type ErrorType = (typeof ERROR_TYPES)[number];

/** HTTP status used when an error of this type answers an API call. */
export const HTTP_STATUS: Record<ErrorType, number> = {
  validation_error: 400,
  template_error: 400,
  not_found: 404,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  payload_too_large: 413,
  rate_limited: 429,
  timeout: 504,
  cancelled: 409,
  interrupted: 503,
  command_failed: 502,
  http_status: 502,
  network_error: 502,
  adapter_error: 502,
  internal_error: 500,
};

/** Errors the engine never retries: retrying cannot change their outcome. */
const NEVER_RETRIED = new Set<ErrorType>(['validation_error', 'template_error', 'cancelled', 'interrupted']);

export interface ErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Overrides the default retry policy for this one error (e.g. RBAC denials). */
  retryable?: boolean;
  /** HTTP status when this error answers an API call (defaults from the type). */
  status?: number;
}

/** A failure with a taxonomy type, a message that says what to do next, and a cause. */
export class AgentError extends Error {
  readonly type: ErrorType;
  readonly details: Record<string, unknown>;
  readonly retryable: boolean;
  readonly status: number;

  constructor(type: ErrorType, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.type = type;
    this.details = options.details ?? {};
    this.retryable = options.retryable ?? !NEVER_RETRIED.has(type);
    this.status = options.status ?? HTTP_STATUS[type];
  }
}

/** One problem found while validating input, with the JSON path of the offending value. */
export interface Problem {
  path: string;
  message: string;
}

/** A validation failure listing every problem at once. */
export class ValidationError extends AgentError {
  readonly problems: Problem[];
  constructor(message: string, problems: Problem[], options: ErrorOptions = {}) {
    super('validation_error', message, { ...options, details: { ...options.details, errors: problems } });
    this.problems = problems;
  }
}

/** Turns anything thrown into an AgentError; unknown throws become internal_error. */
export function toAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AgentError('internal_error', message, { cause: err });
}

/**
 * The first error of class `kind` in `err` and its causes, at most `depth` deep (clients wrap what failed
 * under them in `cause`).
 */
export function findInCauses<T>(
  err: unknown,
  kind: abstract new (...args: never[]) => T,
  depth: number,
): T | undefined {
  for (let e = err, i = 0; e && i < depth; e = (e as { cause?: unknown }).cause, i++) if (e instanceof kind) return e;
  return undefined;
}

/** The serialisable form stored on steps and executions. */
export interface ErrorRecord {
  type: ErrorType;
  message: string;
  step?: string | null;
  details?: Record<string, unknown>;
}

/**
 * The worker commands' failures, in the agent's taxonomy, each tagged with the error name the Flow
 * Manager's clients switch on (`details.container_error`): the seed's names where the meaning is the
 * same, `kubernetes_api_error` for a failure of the Kubernetes API (where a Docker-based manager said
 * `docker_api_error`).
 */
import { AgentError, type ErrorOptions, type ErrorType } from '../../errors.js';

export const CONTAINER_ERRORS = [
  'image_not_found',
  'container_not_found',
  'kubernetes_api_error',
  'socket_error',
  'socket_timeout_error',
  'socket_connection_error',
  'validation_error',
  'system_error',
] as const;
export type ContainerError = (typeof CONTAINER_ERRORS)[number];

/** An AgentError carrying its container error name. */
export function containerError(
  type: ErrorType,
  name: ContainerError,
  message: string,
  options: ErrorOptions = {},
): AgentError {
  return new AgentError(type, message, { ...options, details: { ...options.details, container_error: name } });
}

export function notFound(name: string, namespace: string): AgentError {
  return containerError(
    'not_found',
    'container_not_found',
    `no worker ${name} in namespace ${namespace} (only workers this agent created are visible; list_containers shows them)`,
    { retryable: false, details: { container_id: name, namespace } },
  );
}

/**
 * The container error name of any failure: its own tag, else by type (a failure of the API server's
 * side is kubernetes_api_error unless it is a validation or a missing object).
 */
export function containerErrorOf(err: AgentError): ContainerError {
  const tagged = err.details.container_error;
  if (typeof tagged === 'string' && (CONTAINER_ERRORS as readonly string[]).includes(tagged))
    return tagged as ContainerError;
  switch (err.type) {
    case 'validation_error':
    case 'template_error':
      return 'validation_error';
    case 'not_found':
      return 'container_not_found';
    case 'internal_error':
      return 'system_error';
    case 'unauthorized':
    case 'forbidden':
    case 'conflict':
    case 'rate_limited':
    case 'network_error':
    case 'adapter_error':
      return 'kubernetes_api_error';
    case 'timeout':
      // A worker's own timeout is tagged socket_timeout_error where it happens; any other is the API server's.
      return 'kubernetes_api_error';
    default:
      return 'system_error';
  }
}

/**
 * The channel's lines in the audit log (GET /audit), as HTTP writes them: state-changing commands and
 * refused ones, with who, which command, which execution and the outcome. The method is `SOCKET` and the
 * path `socket.io:<command>`; the status is the one the same outcome has on HTTP.
 */
import type { Socket } from 'socket.io';
import { ERROR_TYPES, type ErrorType, HTTP_STATUS } from '../../../../adapters/errors.js';
import type { Principal } from '../auth/roles.js';
import type { Store } from '../store/store.js';
import type { ErrorBody } from './answers.js';

export class SocketAudit {
  constructor(private readonly store: Store) {}

  /** A command's outcome: its answer, or the error it was refused with. */
  command(
    socket: Socket,
    principal: Principal | undefined,
    name: string,
    outcome: Record<string, unknown> | ErrorBody,
    payload: unknown,
  ): void {
    const error = isError(outcome) ? outcome : undefined;
    const answer: Record<string, unknown> = error ? {} : outcome;
    const given = (payload ?? {}) as Record<string, unknown>;
    const id = answer.execution_id ?? given.execution_id;
    const detail: Record<string, unknown> = {};
    if (error) detail.error_type = error.error_type;
    for (const k of ['workflow_id', 'dry_run', 'status'])
      if (answer[k] !== undefined && typeof answer[k] !== 'object') detail[k] = answer[k];
    this.append(socket, principal, `socket.io:${name}`, error ? statusOf(error.error_type) : 200, id, detail);
  }

  /** A handshake refused (no token, a bad one, or a page of another site). */
  refused(socket: Socket, error: ErrorBody): void {
    this.append(socket, undefined, 'socket.io:connect', statusOf(error.error_type), undefined, {
      error_type: error.error_type,
    });
  }

  private append(
    socket: Socket,
    principal: Principal | undefined,
    path: string,
    status: number,
    executionId: unknown,
    detail: Record<string, unknown>,
  ): void {
    if (!this.store.isOpen()) return;
    this.store.audit.append({
      ts: new Date().toISOString(),
      actor: principal?.name ?? null,
      role: principal?.role ?? null,
      method: 'SOCKET',
      path: path.slice(0, 512),
      status,
      execution_id: typeof executionId === 'string' ? executionId.slice(0, 64) : null,
      remote: socket.handshake.address || null,
      detail: Object.keys(detail).length ? detail : null,
    });
  }
}

function isError(o: Record<string, unknown> | ErrorBody): o is ErrorBody {
  return typeof o.error_type === 'string' && typeof o.message === 'string' && 'details' in o;
}

/** The HTTP status of the Flow Manager's error names (for the audit log), as their taxonomy types have. */
const CONTAINER_ERROR_STATUS: Record<string, number> = {
  container_not_found: 404,
  image_not_found: 422,
  kubernetes_api_error: 502,
  socket_error: 502,
  socket_connection_error: 502,
  socket_timeout_error: 504,
};

function statusOf(type: string): number {
  if (ERROR_TYPES.includes(type as ErrorType)) return HTTP_STATUS[type as ErrorType];
  return CONTAINER_ERROR_STATUS[type] ?? 500;
}

/**
 * The audit log: every state-changing call (anything but GET, HEAD and
 * OPTIONS, except POST /validate which changes nothing) and every refused
 * one (401, 403), with who, what, which execution, when and the outcome.
 * Kept in the store, read by admins through GET /audit.
 */
import type { Middleware } from 'koa';
import type { Store } from '../store/store.js';
import type { AuthState } from './auth.js';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function auditMiddleware(store: Store): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      const denied = ctx.status === 401 || ctx.status === 403;
      const changes = !READS.has(ctx.method) && ctx.path.toLowerCase() !== '/validate';
      if ((denied || changes) && store.isOpen()) {
        const { principal } = ctx.state as AuthState;
        const body = (ctx.body ?? {}) as Record<string, unknown>;
        const params = (ctx as { params?: Record<string, string> }).params;
        const executionId = typeof body.execution_id === 'string' ? body.execution_id : (params?.id ?? null);
        const detail: Record<string, unknown> = {};
        for (const k of ['error_type', 'workflow_id', 'dry_run', 'status'])
          if (body[k] !== undefined && typeof body[k] !== 'object') detail[k] = body[k];
        store.audit.append({
          ts: new Date().toISOString(),
          actor: principal?.name ?? null,
          role: principal?.role ?? null,
          method: ctx.method,
          // The path only: a query string could carry anything.
          path: ctx.path.slice(0, 512),
          status: ctx.status,
          execution_id: executionId ? executionId.slice(0, 64) : null,
          remote: ctx.ip || null,
          detail: Object.keys(detail).length ? detail : null,
        });
      }
    }
  };
}

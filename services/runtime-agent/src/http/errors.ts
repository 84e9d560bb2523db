/** The one place that turns errors into responses: `{ error_type, message, details }`, no stack traces. */
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { AgentError } from '../../../../adapters/errors.js';

export function errorMiddleware(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      // A method the router does not know at all (TRACE, PROPFIND): like any other method a route does not allow.
      if (ctx.status === 501 && ctx.body === undefined) ctx.status = ctx.response.get('Allow') ? 405 : 404;
      if (ctx.status === 404 && ctx.body === undefined)
        throw new AgentError('not_found', `no route for ${ctx.method} ${ctx.path}; see GET /health for the API`);
      if (ctx.status === 405 && ctx.body === undefined)
        throw new AgentError(
          'validation_error',
          `${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get('Allow') || 'none'}`,
          { status: 405 },
        );
    } catch (err) {
      if (err instanceof AgentError && err.type === 'rate_limited') ctx.set('Retry-After', '5');
      if (err instanceof AgentError && err.status < 500) {
        ctx.status = err.status;
        ctx.body = { error_type: err.type, message: err.message, details: err.details };
        return;
      }
      if (err instanceof AgentError) {
        ctx.status = err.status;
        ctx.body = { error_type: err.type, message: err.message, details: {} };
        logger.warn({ err, path: ctx.path }, 'request failed');
        return;
      }
      const incident = randomUUID();
      logger.error({ err, incident, method: ctx.method, path: ctx.path }, 'unexpected error while serving a request');
      ctx.status = 500;
      ctx.body = {
        error_type: 'internal_error',
        message: `internal error; the agent log has the details under incident ${incident}`,
        details: { incident },
      };
    }
  };
}

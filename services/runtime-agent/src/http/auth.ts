/**
 * Who is calling, and may they. `authenticate` reads the bearer token of every
 * request into `ctx.state.principal`; each route then states the role it needs
 * with `need(role)`, so a route and its rule cannot drift apart. Without a
 * tokens file everyone is `anonymous` with every role (the agent then only
 * listens on loopback, or was told `--insecure-no-auth`).
 */
import type { Context, Middleware, Next } from 'koa';
import { AgentError } from '../../../../adapters/errors.js';
import { rank, ROLES, type Principal, type Role, type Tokens } from './tokens.js';

export const ANONYMOUS: Principal = { name: 'anonymous', role: 'admin' };

export interface AuthState {
  principal?: Principal;
  /** Why the request has no principal (when auth is on). */
  authProblem?: AgentError;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

function unauthorized(message: string): AgentError {
  return new AgentError('unauthorized', message, { details: { scheme: 'Bearer' } });
}

/**
 * Sets `ctx.state.principal` from the Authorization header. It refuses only a request that matched no
 * route and has no valid token (401, not 404: the caller learns nothing about what exists).
 */
export function authenticate(tokens: Tokens | undefined): Middleware {
  return async (ctx, next) => {
    const state = ctx.state as AuthState;
    if (!tokens) {
      state.principal = ANONYMOUS;
      return next();
    }
    const header = ctx.get('Authorization');
    if (header === '') {
      state.authProblem = unauthorized(
        'this call needs a token: send Authorization: Bearer <token> (tokens come from RUNTIME_AGENT_TOKENS_FILE)',
      );
    } else {
      const m = BEARER.exec(header);
      const principal = m ? tokens.verify(m[1]) : undefined;
      if (principal) state.principal = principal;
      else
        state.authProblem = unauthorized(
          m ? 'the bearer token is not valid' : 'the Authorization header must be Bearer <token>',
        );
    }
    await next();
    // What the router answers by itself (404, 405, 501, OPTIONS with Allow) would tell which routes exist.
    if (
      !state.principal &&
      (ctx.method === 'OPTIONS' ||
        ((ctx.status === 404 || ctx.status === 405 || ctx.status === 501) && ctx.body === undefined))
    )
      principalOf(ctx);
  };
}

/** The principal of an authenticated request, or the 401 it earned. */
export function principalOf(ctx: Context): Principal {
  const state = ctx.state as AuthState;
  if (state.principal) return state.principal;
  ctx.set('WWW-Authenticate', 'Bearer realm="runtime-agent"');
  throw state.authProblem ?? unauthorized('this call needs a token');
}

/** Route middleware: 401 without a valid token, 403 when its role is below `role`. */
export function need(role: Role): Middleware {
  return (ctx: Context, next: Next) => {
    const p = principalOf(ctx);
    if (rank(p.role) < rank(role)) {
      throw new AgentError(
        'forbidden',
        `${ctx.method} ${ctx.path} needs the ${role} role; token ${p.name} has ${p.role}`,
        {
          details: { needed_role: role, role: p.role, roles: [...ROLES] },
        },
      );
    }
    return next();
  };
}

/** True when the principal may act on what `owner` submitted without a higher role. */
export function mayActOnOthers(p: Principal): boolean {
  return rank(p.role) >= rank('operator');
}

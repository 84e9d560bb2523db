/**
 * Who is calling. `authenticate` reads the bearer token of every request into `ctx.state.principal`; each
 * route then names the operation it performs with `need(op)`, and the rule for that operation (auth/roles.ts)
 * decides, so a route and its rule cannot drift apart. Without a tokens file everyone is `anonymous` with
 * every role (the agent then only listens on loopback, or was told `--insecure-no-auth`).
 */
import type { Context, Middleware, Next } from 'koa';
import { AgentError } from '../../../../adapters/errors.js';
import { ANONYMOUS, authorize, may, type Operation, type Principal } from '../auth/roles.js';
import type { Tokens } from '../auth/tokens.js';
import { TOKEN_HEADER } from '../../../../adapters/k8s/workers/control.js';

export interface AuthState {
  principal?: Principal;
  /** The bearer token the principal came from (open streams check it again when the tokens change). */
  token?: string;
  /** Why the request has no principal (when auth is on). */
  authProblem?: AgentError;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/**
 * A token may also come in X-Runtime-Agent-Token, for requests that reach the agent through the Kubernetes
 * API server's pod or service proxy, which keeps the Authorization header for itself (the Flow Manager's
 * workers are called so). Authorization wins when both are sent.
 */
const bearerFromTokenHeader = (value: string) => (value === '' ? '' : `Bearer ${value}`);

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
    const header = ctx.get('Authorization') || bearerFromTokenHeader(ctx.get(TOKEN_HEADER));
    if (header === '') {
      state.authProblem = unauthorized(
        'this call needs a token: send Authorization: Bearer <token> (tokens come from RUNTIME_AGENT_TOKENS_FILE)',
      );
    } else {
      const m = BEARER.exec(header);
      const principal = m ? tokens.verify(m[1]) : undefined;
      if (principal) {
        state.principal = principal;
        state.token = m![1];
      } else
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

/** Route middleware: 401 without a valid token, 403 when the token may not perform `op`. */
export function need(op: Operation): Middleware {
  return (ctx: Context, next: Next) => {
    authorize(principalOf(ctx), op, `${ctx.method} ${ctx.path}`);
    return next();
  };
}

/**
 * Calls `onRevoked` once when the request's token no longer grants `op` after the tokens file changed (removed,
 * or its role lowered); returns the function that stops watching. Open streams use it to end in time.
 */
export function watchAuthorization(
  ctx: Context,
  tokens: Tokens | undefined,
  op: Operation,
  onRevoked: () => void,
): () => void {
  const token = (ctx.state as AuthState).token;
  if (!tokens || token === undefined) return () => {};
  return tokens.onChange(() => {
    const p = tokens.verify(token);
    if (!p || !may(p, op)) onRevoked();
  });
}

/**
 * Who connects. The browser guard of HTTP applies to every request of the Socket.IO transport (a refused
 * one gets 403 before any session exists); then the namespace handshake needs the same bearer token as
 * HTTP, in `auth: { token }` (or an `Authorization: Bearer` header). Without a tokens file everyone is
 * `anonymous` with every role, as on HTTP (the agent then listens on loopback, or was told
 * `--insecure-no-auth`).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'socket.io';
import { AgentError } from '../../../../adapters/errors.js';
import { ANONYMOUS, type Principal } from '../auth/roles.js';
import type { Tokens } from '../auth/tokens.js';
import { type BrowserGuardOptions, browserRefusal } from '../http/browser-guard.js';

export interface SocketAuth {
  principal: Principal;
  /** The token the principal came from: its sockets are dropped when the tokens file no longer has it. */
  token?: string;
}

/** socket.io's `allowRequest`: the browser guard, on the transport's own requests. */
export function transportGuard(options: BrowserGuardOptions) {
  return (req: IncomingMessage, answer: (message: string | null | undefined, allowed: boolean) => void): void => {
    const host = req.headers.host ?? '';
    const refused = browserRefusal(
      {
        origin: header(req, 'origin'),
        site: header(req, 'sec-fetch-site'),
        host,
        hostname: hostnameOf(host),
      },
      options,
    );
    answer(refused?.message, refused === undefined);
  };
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** The caller of a new socket, or the unauthorized error its handshake is refused with. */
export function authenticateSocket(tokens: Tokens | undefined, socket: Socket): SocketAuth {
  if (!tokens) return { principal: ANONYMOUS };
  const given = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
  const headerValue = socket.handshake.headers.authorization;
  let token: string | undefined;
  if (given !== undefined) {
    if (typeof given !== 'string' || given === '')
      throw unauthorized('auth.token must be the bearer token as a string');
    token = given;
  } else if (typeof headerValue === 'string' && headerValue !== '') {
    const m = BEARER.exec(headerValue);
    if (!m) throw unauthorized('the Authorization header must be Bearer <token>');
    token = m[1];
  } else {
    throw unauthorized(
      'this channel needs a token: connect with auth: { token } (tokens come from RUNTIME_AGENT_TOKENS_FILE)',
    );
  }
  const principal = tokens.verify(token);
  if (!principal) throw unauthorized('the token is not valid');
  return { principal, token };
}

function unauthorized(message: string): AgentError {
  return new AgentError('unauthorized', message, { details: { scheme: 'Bearer' } });
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
}

/** The Host header without its port (`[::1]:8080` -> `[::1]`), as Koa reads it for HTTP. */
function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  return host.split(':')[0];
}

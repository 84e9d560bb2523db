/**
 * The agent has no browser UI, and a browser is how a web page would reach an
 * agent on loopback: a cross-site POST needs no preflight when its body has no
 * Content-Type, and DNS rebinding lets a page read the answers too. So a
 * request a browser marks as coming from another site (an `Origin` that is not
 * the agent itself, `Sec-Fetch-Site: cross-site` or `same-site`) is refused,
 * and without tokens only loopback names are answered (`Host`), which is what
 * rebinding cannot fake. curl, registries and probes send neither header.
 */
import type { Middleware } from 'koa';
import { AgentError } from '../../../../adapters/errors.js';
import { isLoopback } from '../config.js';

export interface BrowserGuardOptions {
  loopbackHostsOnly: boolean;
}

export function browserGuard(options: BrowserGuardOptions): Middleware {
  return (ctx, next) => {
    const refused = browserRefusal(
      { origin: ctx.get('Origin'), site: ctx.get('Sec-Fetch-Site'), host: ctx.host, hostname: ctx.hostname },
      options,
    );
    if (refused) throw refused;
    return next();
  };
}

/**
 * The check itself, for every surface that takes requests on the agent's port (HTTP, the Socket.IO
 * handshake): the error a request with these headers is refused with, or undefined. `hostname` is `host`
 * without its port.
 */
export function browserRefusal(
  headers: { origin: string; site: string; host: string; hostname: string },
  options: BrowserGuardOptions,
): AgentError | undefined {
  const { origin, host } = headers;
  const site = headers.site.toLowerCase();
  if ((origin !== '' && !sameHost(origin, host)) || site === 'cross-site' || site === 'same-site') {
    return new AgentError(
      'forbidden',
      `requests from web pages of other sites are refused (Origin ${origin || '-'}, Sec-Fetch-Site ${site || '-'}); call the agent from a server or the command line`,
      {
        details: { origin: origin.slice(0, 200) || null },
      },
    );
  }
  // The same test HOST passes at start.
  if (options.loopbackHostsOnly && !isLoopback(headers.hostname.toLowerCase())) {
    return new AgentError(
      'forbidden',
      `Host ${host.slice(0, 200) || '(none)'} is not a loopback name; without tokens the agent answers only to 127.0.0.1, [::1] and localhost`,
      {
        details: { host: host.slice(0, 200) },
      },
    );
  }
  return undefined;
}

function sameHost(origin: string, host: string): boolean {
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false; // "null" (a sandboxed page, a file) and garbage are not the agent
  }
}

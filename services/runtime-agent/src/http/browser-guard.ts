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

export function browserGuard(options: { loopbackHostsOnly: boolean }): Middleware {
  return (ctx, next) => {
    const origin = ctx.get('Origin');
    const site = ctx.get('Sec-Fetch-Site').toLowerCase();
    if ((origin !== '' && !sameHost(origin, ctx.host)) || site === 'cross-site' || site === 'same-site') {
      throw new AgentError(
        'forbidden',
        `requests from web pages of other sites are refused (Origin ${origin || '-'}, Sec-Fetch-Site ${site || '-'}); call the agent from a server or the command line`,
        {
          details: { origin: origin.slice(0, 200) || null },
        },
      );
    }
    // The same test HOST passes at start; Koa's hostname is the Host header without its port.
    if (options.loopbackHostsOnly && !isLoopback(ctx.hostname.toLowerCase())) {
      throw new AgentError(
        'forbidden',
        `Host ${ctx.host.slice(0, 200) || '(none)'} is not a loopback name; without tokens the agent answers only to 127.0.0.1, [::1] and localhost`,
        {
          details: { host: ctx.host.slice(0, 200) },
        },
      );
    }
    return next();
  };
}

function sameHost(origin: string, host: string): boolean {
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false; // "null" (a sandboxed page, a file) and garbage are not the agent
  }
}

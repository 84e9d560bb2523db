/**
 * Support for the egress specs: a local HTTP server on 127.0.0.1 that counts
 * the TCP connections it accepts (so a test can prove that a refused
 * destination received none) and can redirect, a fake DNS resolver, and a
 * step context that keeps its log lines.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { AgentError } from '../../../adapters/errors.js';
import type { Resolver } from '../../../adapters/shared/egress.js';
import { forwardTo } from '../support/forward.js';

export interface CountingServer {
  port: number;
  /** http://127.0.0.1:port */
  url: string;
  /** Connections accepted so far. */
  connections: number;
  /** Requests that arrived: method, path, Host header. */
  requests: Array<{ method: string; url: string; host: string | undefined }>;
  /** Answer `path` with a redirect to `location`. */
  redirect(path: string, location: string): void;
  close(): Promise<void>;
}

export async function countingServer(): Promise<CountingServer> {
  const redirects = new Map<string, string>();
  const requests: CountingServer['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host });
    req.resume();
    const location = redirects.get(req.url ?? '');
    if (location) {
      res.writeHead(302, { location });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  server.keepAliveTimeout = 60_000;
  const counted = { connections: 0 };
  server.on('connection', () => counted.connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return counted.connections;
    },
    requests,
    redirect: (path, location) => void redirects.set(path, location),
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * Two counting servers, `target` and `other`, for each test of the enclosing describe block (started
 * before it, closed after it); each returned object forwards to the current one.
 */
export function useCountingServers(): { target: CountingServer; other: CountingServer } {
  let servers: CountingServer[] = [];
  beforeEach(async () => {
    servers = await Promise.all([countingServer(), countingServer()]);
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const missing = 'the counting servers are only there inside a test of their describe block';
  return { target: forwardTo(() => servers[0], missing), other: forwardTo(() => servers[1], missing) };
}

/** Fake DNS: names resolve to the addresses given, every other name is ENOTFOUND; `asked` lists the lookups. */
export function fakeDns(table: Record<string, string[]>): { resolve: Resolver; asked: string[] } {
  const asked: string[] = [];
  const resolve: Resolver = async (hostname) => {
    asked.push(hostname);
    const found = table[hostname];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
    return found.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { resolve, asked };
}

export { stepContext, type LogLine } from '../support/step-context.js';

/** Awaits a call that the policy must refuse: a non-retryable `forbidden` AgentError, which it returns. */
export async function expectForbidden(pending: Promise<unknown>): Promise<AgentError> {
  try {
    await pending;
  } catch (err) {
    assert.ok(err instanceof AgentError, `expected an AgentError, got ${String(err)}`);
    assert.equal(err.type, 'forbidden', err.message);
    assert.equal(err.retryable, false);
    return err;
  }
  assert.fail('expected the destination to be refused');
}

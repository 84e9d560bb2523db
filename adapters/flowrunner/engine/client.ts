/**
 * HTTP for flows. A simulated user has at most one request in flight, so each user gets its own
 * keep-alive connection per origin (http1.ts: HTTP/1.1 on a plain socket, TLS for https) and a
 * request is one write and a parser fed by the socket: no pool, no streams, nothing shared between
 * users (this is the hot path). Closing a user's connections aborts its request in flight at once (stop).
 */
import type { EgressPolicy } from '../../shared/egress.js';
import { Http1Connection, httpError, type HttpResult } from './http1.js';
import type { Destination } from './url.js';

export { MAX_BODY_BYTES, type HttpResult } from './http1.js';

/** Origins a user keeps a connection to; the least recently used one is closed beyond this (flows over many hosts). */
export const MAX_ORIGINS_PER_USER = 4;

/** The connections of one simulated user (one per origin it talks to). */
export class UserConnections {
  private readonly connections = new Map<string, Http1Connection>();
  private closed = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly egress: EgressPolicy,
  ) {}

  private connection(d: Destination): Http1Connection {
    const key = d.servername ? `${d.origin}|${d.servername}` : d.origin;
    let c = this.connections.get(key);
    if (c) {
      // Most recently used last, so the first entry is the one to close when there are too many.
      if (this.connections.size > 1) {
        this.connections.delete(key);
        this.connections.set(key, c);
      }
    } else {
      // A connection goes only to its origin. An IP literal (or a DNS override) never goes through lookup,
      // so it is judged here, once per origin; a name is judged on every connect by the policy's lookup.
      if (d.address !== undefined) this.egress.checkAddress(d.hostname, d.address);
      else this.egress.checkHost(d.hostname);
      if (this.connections.size >= MAX_ORIGINS_PER_USER) {
        const [oldest, connection] = this.connections.entries().next().value as [string, Http1Connection];
        this.connections.delete(oldest);
        void connection.destroy();
      }
      c = new Http1Connection(d, this.timeoutMs, this.egress.lookup);
      this.connections.set(key, c);
    }
    return c;
  }

  /**
   * One request. Without `decode` the result has the status only (empty headers and text): the body is
   * read to its end as always, and not kept.
   */
  send(
    d: Destination,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    decode = true,
  ): Promise<HttpResult> {
    if (this.closed) return Promise.reject(httpError('UND_ERR_DESTROYED', 'the run was stopped'));
    let connection: Http1Connection;
    try {
      connection = this.connection(d);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<HttpResult>((resolve, reject) =>
      connection.send(method, d.path, headers, body, decode, resolve, reject),
    );
  }

  /** Aborts the request in flight and refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((c) => c.destroy()));
  }
}

/** The error kinds of the stats: timeouts apart from other network failures. */
export function errorKind(err: unknown): 'timeout' | 'network' {
  const code = (err as { code?: string })?.code ?? '';
  return /TIMEOUT/.test(code) ? 'timeout' : 'network';
}

export function errorText(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
}

/**
 * HTTP for flows on undici. A simulated user has at most one request in flight,
 * so each user gets its own keep-alive connection (an undici Client per origin)
 * and requests go straight through `dispatch` with a small handler: no pool
 * scheduling and no body stream per request (this is the hot path). Closing a
 * user's clients aborts its request in flight at once (stop).
 */
import type { Client, Dispatcher } from 'undici';
import { lazyRequire } from '../../shared/lazy-require.js';
import type { EgressPolicy } from '../../shared/egress.js';
import type { Destination } from './url.js';

export interface HttpResult {
  status: number;
  /** Empty when the request asked for no decoding. */
  headers: Record<string, string | string[]>;
  /** Empty when the request asked for no decoding. */
  text: string;
  /** The body was cut at MAX_BODY_BYTES. */
  truncated: boolean;
}

/** Required by the first flow, not at start. */
const undici = lazyRequire<typeof import('undici')>('undici');

/** A response body kept in the context is cut here, and the rest is not read: memory stays bounded whatever the target answers. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Origins a user keeps a connection to; the least recently used one is closed beyond this (flows over many hosts). */
export const MAX_ORIGINS_PER_USER = 4;

/** Collects one response at a time (undici's dispatch handler API). */
class ResponseHandler {
  private chunks: Buffer[] = [];
  private size = 0;
  private status = 0;
  private headers: Record<string, string | string[]> = {};
  private truncated = false;
  /** Decode this response's headers and keep its body (else only its status and size count). */
  private decode = true;
  private resolve: ((r: HttpResult) => void) | undefined;
  private reject: ((e: Error) => void) | undefined;
  private abort: ((err?: Error) => void) | undefined;

  /** Ready for the next response; `decode`: as send()'s. */
  begin(resolve: (r: HttpResult) => void, reject: (e: Error) => void, decode: boolean): void {
    this.resolve = resolve;
    this.reject = reject;
    this.decode = decode;
    this.chunks = [];
    this.size = 0;
    this.status = 0;
    this.headers = {};
    this.truncated = false;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number, raw: Buffer[]): boolean {
    this.status = statusCode;
    if (this.decode) this.headers = undici().util.parseHeaders(raw) as Record<string, string | string[]>;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.decode) this.chunks.push(chunk);
    if (this.size > MAX_BODY_BYTES) {
      // Enough: keep the first MiB and drop the connection instead of reading an endless answer to its end.
      this.truncated = true;
      this.abort?.();
      return false;
    }
    return true;
  }

  onComplete(): void {
    const chunks = this.chunks;
    let text = '';
    if (chunks.length > 0) {
      let buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (buf.length > MAX_BODY_BYTES) {
        buf = buf.subarray(0, MAX_BODY_BYTES);
        this.truncated = true;
      }
      text = buf.toString('utf8');
    } else if (this.size > MAX_BODY_BYTES) {
      this.truncated = true;
    }
    const resolve = this.resolve;
    this.resolve = this.reject = undefined;
    resolve?.({ status: this.status, headers: this.headers, text, truncated: this.truncated });
  }

  onError(err: Error): void {
    if (this.truncated && this.resolve) {
      this.onComplete();
      return;
    }
    const reject = this.reject;
    this.resolve = this.reject = undefined;
    reject?.(err);
  }
}

/** The connections of one simulated user (one per origin it talks to). */
export class UserConnections {
  private readonly clients = new Map<string, Client>();
  private closed = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly egress: EgressPolicy,
  ) {}

  private client(d: Destination): Client {
    const key = d.servername ? `${d.origin}|${d.servername}` : d.origin;
    let c = this.clients.get(key);
    if (c) {
      // Most recently used last, so the first entry is the one to close when there are too many.
      if (this.clients.size > 1) {
        this.clients.delete(key);
        this.clients.set(key, c);
      }
    } else {
      // A Client connects only to its origin. An IP literal (or a DNS override) never goes through lookup,
      // so it is judged here, once per Client; a name is judged on every connect by the policy's lookup.
      if (d.address !== undefined) this.egress.checkAddress(d.hostname, d.address);
      else this.egress.checkHost(d.hostname);
      if (this.clients.size >= MAX_ORIGINS_PER_USER) {
        const [oldest, client] = this.clients.entries().next().value as [string, Client];
        this.clients.delete(oldest);
        void client.close().catch(() => {});
      }
      c = new (undici().Client)(d.origin, {
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        connect: d.servername
          ? { servername: d.servername, timeout: this.timeoutMs, lookup: this.egress.lookup }
          : { timeout: this.timeoutMs, lookup: this.egress.lookup },
      });
      this.clients.set(key, c);
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
    if (this.closed)
      return Promise.reject(Object.assign(new Error('the run was stopped'), { code: 'UND_ERR_DESTROYED' }));
    let client: Client;
    try {
      client = this.client(d);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // One request in flight per user: a single handler per user serves every request (no closures per request).
    return new Promise<HttpResult>((resolve, reject) => {
      this.handler.begin(resolve, reject, decode);
      client.dispatch(
        { path: d.path, method: method as 'GET', headers, body },
        this.handler as unknown as Dispatcher.DispatchHandler,
      );
    });
  }

  private readonly handler = new ResponseHandler();

  /** Aborts the request in flight and refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.destroy().catch(() => {})));
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

/**
 * HTTP for flows on undici. A simulated user has at most one request in flight,
 * so each user gets its own keep-alive connection (an undici Client per origin)
 * and requests go straight through `dispatch` with a small handler: no pool
 * scheduling and no body stream per request (this is the hot path). Closing a
 * user's clients aborts its request in flight at once (stop).
 */
import { Client, util, type Dispatcher } from 'undici';
import type { Destination } from './url.js';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[]>;
  text: string;
  /** The body was cut at MAX_BODY_BYTES. */
  truncated: boolean;
}

/** A response body kept in the context is cut here: memory stays bounded whatever the target answers. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The connections of one simulated user (one per origin it talks to). */
export class UserConnections {
  private readonly clients = new Map<string, Client>();
  private closed = false;

  constructor(private readonly timeoutMs: number) {}

  private client(d: Destination): Client {
    const key = d.servername ? `${d.origin}|${d.servername}` : d.origin;
    let c = this.clients.get(key);
    if (!c) {
      c = new Client(d.origin, {
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        connect: d.servername ? { servername: d.servername, timeout: this.timeoutMs } : { timeout: this.timeoutMs },
      });
      this.clients.set(key, c);
    }
    return c;
  }

  send(d: Destination, method: string, headers: Record<string, string>, body: string | undefined): Promise<HttpResult> {
    if (this.closed) return Promise.reject(Object.assign(new Error('the run was stopped'), { code: 'UND_ERR_DESTROYED' }));
    const client = this.client(d);
    return new Promise<HttpResult>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let status = 0;
      let responseHeaders: Record<string, string | string[]> = {};
      let truncated = false;
      client.dispatch(
        { path: d.path, method: method as 'GET', headers, body },
        {
          onConnect() {},
          onHeaders(statusCode: number, raw: Buffer[]) {
            status = statusCode;
            responseHeaders = util.parseHeaders(raw) as Record<string, string | string[]>;
            return true;
          },
          onData(chunk: Buffer) {
            if (size >= MAX_BODY_BYTES) truncated = true;
            else {
              size += chunk.length;
              chunks.push(chunk);
            }
            return true;
          },
          onComplete() {
            let buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            if (buf.length > MAX_BODY_BYTES) {
              buf = buf.subarray(0, MAX_BODY_BYTES);
              truncated = true;
            }
            resolve({ status, headers: responseHeaders, text: chunks.length === 0 ? '' : buf.toString('utf8'), truncated });
          },
          onError(err: Error) {
            reject(err);
          },
        } as unknown as Dispatcher.DispatchHandler,
      );
    });
  }

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

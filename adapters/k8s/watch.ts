/**
 * One watch stream of a collection, with the kubeconfig's authentication, TLS and proxy (the agent
 * client-node builds for it) and the step's signal, so a cancel aborts it even before the response
 * headers arrive. client-node's Watch cannot take a signal and drops the body of a refused watch,
 * which is what says why (an RBAC denial names the verb).
 *
 * How a stream ends:
 * - `stopped`: the caller saw what it waited for;
 * - `ended`: the server closed the stream (its timeoutSeconds), or the connection broke after the
 *   watch was established: read again and watch anew;
 * - `gone`: an ERROR event with 410 (the resourceVersion is too old): read again and watch anew;
 * - `timeout`: the caller's deadline passed;
 * - otherwise it throws, mapped to the taxonomy: a refused watch (401, 403, 404, 5xx), an ERROR event
 *   with another code, a connection that never got an answer (refused, TLS), or the step's abort.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { StepContext } from '../contract.js';
import type { Clients } from './connection.js';
import { toK8sError } from './errors.js';

export type WatchEnd = 'stopped' | 'ended' | 'gone' | 'timeout';

export interface WatchEvent {
  type: string;
  // biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are read field by field, each checked where it is used
  object: Record<string, any>;
}

/** An error body is read up to this size. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * Watches `path` (a collection) with `query` until `onEvent` returns true, the stream ends, or
 * `deadlineMs` passes. `onEvent` may throw to fail the wait.
 */
export async function watchOnce(
  ctx: Pick<StepContext, 'signal'>,
  clients: Clients,
  what: string,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  deadlineMs: number | undefined,
  onEvent: (event: WatchEvent) => boolean,
): Promise<WatchEnd> {
  if (ctx.signal.aborted) throw toK8sError(ctx.signal.reason, what, ctx.signal);
  let options: { agent?: unknown; headers?: { forEach(cb: (value: string, name: string) => void): void } };
  try {
    options = (await clients.kc.applyToFetchOptions({})) as typeof options;
  } catch (err) {
    throw toK8sError(err, what, ctx.signal);
  }
  const url = new URL(`${clients.server.replace(/\/$/, '')}${path}`);
  url.searchParams.set('watch', 'true');
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = {};
  options.headers?.forEach((value, name) => {
    headers[name] = value;
  });
  headers.accept = 'application/json';

  return new Promise<WatchEnd>((resolve, reject) => {
    let settled = false;
    let established = false;
    let timer: NodeJS.Timeout | undefined;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: 'GET', headers, agent: options.agent as never });
    const finish = (err: unknown, outcome?: WatchEnd) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      req.destroy();
      if (err !== undefined) reject(toK8sError(err, what, ctx.signal));
      else resolve(outcome!);
    };
    // The step's abort ends the request at any point (before or after its headers). Our own listener,
    // not http.request's `signal` option: that one is removed only when the socket has closed, after
    // the step may have settled, and the signal may be shared with later steps.
    const onAbort = () => finish(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (deadlineMs !== undefined) timer = setTimeout(() => finish(undefined, 'timeout'), Math.max(0, deadlineMs));
    req.on('error', (err) => {
      // A connection that breaks after the watch was established is a resync, like a server-side close.
      if (established && !ctx.signal.aborted) finish(undefined, 'ended');
      else finish(err);
    });
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < MAX_ERROR_BODY) chunks.push(c);
          size += c.length;
        });
        res.on('error', (err) => finish(err));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            // not JSON: statusOf keeps the text
          }
          finish(
            new clients.lib.ApiException(
              res.statusCode ?? 500,
              `watch answered ${res.statusCode}`,
              body,
              res.headers as Record<string, string>,
            ),
          );
        });
        return;
      }
      established = true;
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let nl = buffer.indexOf('\n'); nl >= 0 && !settled; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          let event: WatchEvent;
          try {
            event = JSON.parse(line) as WatchEvent;
          } catch {
            continue;
          }
          if (!event || typeof event.type !== 'string') continue;
          if (event.type === 'BOOKMARK') continue;
          if (event.type === 'ERROR') {
            const status = (event.object ?? {}) as { code?: number };
            if (status.code === 410) finish(undefined, 'gone');
            else finish(new clients.lib.ApiException(status.code ?? 500, 'watch ERROR event', status, {}));
            return;
          }
          try {
            if (onEvent(event)) finish(undefined, 'stopped');
          } catch (err) {
            finish(err);
          }
        }
      });
      res.on('end', () => finish(undefined, 'ended'));
      res.on('error', () => finish(ctx.signal.aborted ? ctx.signal.reason : undefined, 'ended'));
      res.on('close', () => finish(ctx.signal.aborted ? ctx.signal.reason : undefined, 'ended'));
    });
    req.end();
  });
}

/**
 * Server-sent events: each message with `id: <seq>` where it has one (a browser's EventSource resumes with
 * Last-Event-ID), a comment line every SSE_HEARTBEAT_MS so proxies keep an idle stream open, and one place
 * that ends the stream whichever side goes first.
 */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';

/** A comment line this often keeps proxies from closing an idle stream. */
export const SSE_HEARTBEAT_MS = 15_000;

export interface SseStream {
  send(event: string, data: unknown, id?: number): void;
  /** Ends the stream (idempotent); the cleanups run once. */
  close(): void;
  /** Runs when the stream ends, by either side. */
  onClose(cleanup: () => void): void;
}

export function openSse(ctx: Context, heartbeatMs = SSE_HEARTBEAT_MS): SseStream {
  const stream = new PassThrough();
  const cleanups: Array<() => void> = [];
  let closed = false;
  const heartbeat = setInterval(() => stream.write(': keep-alive\n\n'), heartbeatMs);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const c of cleanups) c();
    stream.end();
  };
  ctx.req.once('close', close);
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.body = stream;
  return {
    send(event, data, id) {
      if (closed) return;
      stream.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close,
    onClose(cleanup) {
      if (closed) cleanup();
      else cleanups.push(cleanup);
    },
  };
}

/** Where a stream resumes: `Last-Event-ID` (a reconnecting EventSource) wins over the `since` query parameter. */
export function resumeFrom(ctx: Context, since: number | undefined): number | undefined {
  const last = ctx.get('Last-Event-ID');
  return /^\d{1,15}$/.test(last) ? Number(last) : since;
}

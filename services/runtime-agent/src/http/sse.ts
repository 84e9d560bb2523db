/**
 * Server-sent events: each message with `id: <seq>` where it has one (a browser's EventSource resumes with
 * Last-Event-ID), a comment line every SSE_HEARTBEAT_MS so proxies keep an idle stream open, and one place
 * that ends the stream whichever side goes first. Messages are written in batches, at most SSE_BATCH_MS
 * after the first of them: a busy execution logs lines a fraction of a millisecond apart, and a socket
 * write per line (a system call, and a wake-up of the reader) costs the agent more than the line itself
 * (about 10% of an api step's CPU, measured with `npm run bench -- e2e`).
 */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import type { JournalConsumer } from '../metrics.js';

/** A comment line this often keeps proxies from closing an idle stream. */
export const SSE_HEARTBEAT_MS = 15_000;
/** How long a message may wait for others to share its write. */
export const SSE_BATCH_MS = 20;
/** A batch this large is written at once. */
const SSE_BATCH_CHARS = 64 * 1024;

export interface SseStream {
  send(event: string, data: unknown, id?: number): void;
  /** Ends the stream (idempotent); the cleanups run once. */
  close(): void;
  /** Runs when the stream ends, by either side. */
  onClose(cleanup: () => void): void;
}

/**
 * Open streams, for the metrics: how many follow, and how many messages (keep-alives aside) they have not
 * handed on yet: waiting in a batch, or written but still buffered because the client reads slowly.
 */
export class SseStreams implements JournalConsumer {
  private readonly open = new Set<{ waiting: number }>();

  followers(): number {
    return this.open.size;
  }

  backlog(): number {
    let n = 0;
    for (const s of this.open) n += s.waiting;
    return n;
  }

  /** A stream's counter; `close` forgets it. */
  track(): { waiting: number; close(): void } {
    const entry = { waiting: 0, close: () => this.open.delete(entry) };
    this.open.add(entry);
    return entry;
  }
}

export function openSse(ctx: Context, heartbeatMs = SSE_HEARTBEAT_MS, streams?: SseStreams): SseStream {
  const stream = new PassThrough();
  const cleanups: Array<() => void> = [];
  const counter = streams?.track() ?? { waiting: 0, close() {} };
  let closed = false;
  let batch = '';
  let batchMessages = 0;
  let batchTimer: NodeJS.Timeout | undefined;
  // Messages per chunk written and not yet read on towards the socket (the reader pauses when it is full).
  // Counted from the moment the response pipes the stream (a 'data' listener before that would consume it).
  const buffered: number[] = [];
  stream.once('resume', () =>
    stream.on('data', () => {
      counter.waiting -= buffered.shift() ?? 0;
    }),
  );
  const flush = () => {
    clearTimeout(batchTimer);
    batchTimer = undefined;
    if (batch === '') return;
    buffered.push(batchMessages);
    batchMessages = 0;
    stream.write(batch);
    batch = '';
  };
  const write = (text: string, message = true) => {
    batch += text;
    if (message) {
      batchMessages++;
      counter.waiting++;
    }
    if (batch.length >= SSE_BATCH_CHARS) flush();
    else batchTimer ??= setTimeout(flush, SSE_BATCH_MS);
  };
  const heartbeat = setInterval(() => write(': keep-alive\n\n', false), heartbeatMs);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const c of cleanups) c();
    flush();
    counter.close();
    stream.end();
  };
  ctx.req.once('close', close);
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.body = stream;
  // A first comment line sends the headers at once: a client (fetch, EventSource) knows it is following
  // before the first event, which on a quiet journal may be long in coming.
  buffered.push(0);
  stream.write(': open\n\n');
  return {
    send(event, data, id) {
      if (closed) return;
      write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
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

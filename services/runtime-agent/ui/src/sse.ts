/**
 * Server-sent events over fetch(): EventSource cannot send an Authorization header, and the token must never
 * be in a URL. The stream is read and parsed here; after a dropped connection it reconnects with
 * Last-Event-ID, so nothing is missed (the agent resumes after that id).
 */
import { unauthorized } from './api';
import { authHeaders } from './session';

export interface SseMessage {
  event: string;
  id?: string;
  data: string;
}

export interface SseOptions {
  signal: AbortSignal;
  onMessage(m: SseMessage): void;
  /** Reconnect when the stream ends or fails (the journal). A log stream ends on purpose and is not resumed. */
  reconnect: boolean;
  onState?(state: 'open' | 'retrying' | 'closed', detail?: string): void;
  /** Stop (no reconnect) when this returns true for a message, e.g. a log stream's `end`. */
  last?(m: SseMessage): boolean;
}

const RETRY_MS = [500, 1000, 2000, 5000];

/** Splits SSE text into messages; returns what is left over (an incomplete message). */
export function parseSse(buffer: string, emit: (m: SseMessage) => void): string {
  const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    const m: SseMessage = { event: 'message', data: '' };
    const data: string[] = [];
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') m.event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') m.id = value;
    }
    if (data.length === 0) continue;
    m.data = data.join('\n');
    emit(m);
  }
  return rest;
}

export async function followSse(path: string, opts: SseOptions): Promise<void> {
  let lastId: string | undefined;
  let failures = 0;
  let done = false;
  while (!opts.signal.aborted && !done) {
    try {
      const headers: Record<string, string> = { Accept: 'text/event-stream', ...authHeaders() };
      if (lastId !== undefined) headers['Last-Event-ID'] = lastId;
      const res = await fetch(path, { headers, signal: opts.signal, credentials: 'omit', cache: 'no-store' });
      if (!res.ok || !res.body) {
        // A revoked token: its stream ended with an error event, and reconnecting is refused.
        if (res.status === 401) unauthorized();
        opts.onState?.('closed', `the stream was refused (${res.status})`);
        return;
      }
      opts.onState?.('open');
      failures = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        buffer = parseSse(buffer + value, (m) => {
          if (m.id !== undefined) lastId = m.id;
          opts.onMessage(m);
          if (opts.last?.(m)) done = true;
        });
        if (done) {
          await reader.cancel();
          break;
        }
      }
    } catch {
      if (opts.signal.aborted) return;
    }
    if (done || !opts.reconnect || opts.signal.aborted) break;
    opts.onState?.('retrying');
    const wait = RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)];
    await new Promise<void>((resolve) => {
      const onAbort = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        opts.signal.removeEventListener('abort', onAbort);
        resolve();
      }, wait);
      opts.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  opts.onState?.('closed');
}

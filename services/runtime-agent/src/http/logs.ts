/** GET /logs/{id}: a page of log lines, or with follow=true a server-sent event stream until the execution ends. */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import type { Engine } from '../engine/engine.js';
import type { LogRow, Store } from '../store/store.js';

/** A comment line this often keeps proxies from closing an idle stream. */
export const SSE_HEARTBEAT_MS = 15_000;

export function followLogs(
  ctx: Context,
  store: Store,
  engine: Engine,
  id: string,
  since: number,
  step: string | undefined,
): void {
  const stream = new PassThrough();
  let last = since;
  const backlogDone = { value: false };
  const pending: LogRow[] = [];
  const send = (row: LogRow) => {
    if (row.seq <= last || (step !== undefined && row.step !== step)) return;
    last = row.seq;
    stream.write(`id: ${row.seq}\nevent: log\ndata: ${JSON.stringify(row)}\n\n`);
  };
  const onLog = (row: LogRow) => (backlogDone.value ? send(row) : pending.push(row));
  const finish = () => {
    const row = store.getExecution(id);
    stream.write(`event: end\ndata: ${JSON.stringify({ execution_id: id, status: row?.status ?? null })}\n\n`);
    cleanup();
    stream.end();
  };
  const heartbeat = setInterval(() => stream.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
  const cleanup = () => {
    clearInterval(heartbeat);
    engine.bus.off(`log:${id}`, onLog);
    engine.bus.off(`end:${id}`, finish);
  };
  engine.bus.on(`log:${id}`, onLog);
  engine.bus.once(`end:${id}`, finish);
  ctx.req.once('close', () => {
    cleanup();
    stream.end();
  });

  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.body = stream;

  for (;;) {
    const page = store.getLogs(id, { since: last, limit: 1000, step });
    page.forEach(send);
    if (page.length < 1000) break;
  }
  backlogDone.value = true;
  pending.forEach(send);
  if (!engine.isLive(id)) finish();
}

/** The server-sent event stream every following route uses: ids, keep-alive comments, and one clean end. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { openSse, SseStreams, type SseStream } from '../../../services/runtime-agent/src/http/sse.js';
import { waitFor } from '../support/wait.js';

describe('HTTP: server-sent event streams', () => {
  it('sends id and event lines, keep-alive comments while idle, and runs its cleanups once when the client leaves', async () => {
    let cleanups = 0;
    const app = new Koa();
    app.silent = true; // a client that leaves mid-stream is expected here, not an error to print
    app.use((ctx) => {
      const sse = openSse(ctx, 50);
      sse.onClose(() => cleanups++);
      sse.send('greeting', { hello: 'world' }, 7);
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      const reader = res.body!.getReader();
      let text = '';
      const decoder = new TextDecoder();
      while ((text.match(/: keep-alive\n\n/g) ?? []).length < 2) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'the stream stays open while idle');
        text += decoder.decode(value, { stream: true });
      }
      assert.ok(text.startsWith(': open\n\nid: 7\nevent: greeting\ndata: {"hello":"world"}\n\n'), text);
      await reader.cancel();
      await waitFor(() => cleanups === 1, 'the cleanup to run when the client left');
      assert.equal(cleanups, 1);
    } finally {
      server.close();
    }
  });

  it('sends its headers at once, before any event (a quiet journal may have none for long)', async () => {
    const app = new Koa();
    app.silent = true;
    app.use((ctx) => {
      openSse(ctx, 60_000);
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const controller = new AbortController();
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]),
      });
      assert.equal(res.status, 200);
      const { value } = await res.body!.getReader().read();
      assert.equal(new TextDecoder().decode(value), ': open\n\n');
      controller.abort();
    } finally {
      server.close();
    }
  });

  it('counts followers, and as backlog the messages a slow client has not taken yet (keep-alives aside)', async () => {
    const streams = new SseStreams();
    let sse: SseStream | undefined;
    const app = new Koa();
    app.silent = true; // a client that leaves mid-stream is expected here, not an error to print
    app.use((ctx) => {
      sse = openSse(ctx, 20, streams);
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const req = http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    try {
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      res.pause();
      await waitFor(() => streams.followers() === 1, 'the stream to be counted');
      await new Promise((r) => setTimeout(r, 100)); // a few keep-alives go out
      assert.equal(streams.backlog(), 0, 'keep-alive comments are not messages');
      const big = 'x'.repeat(10_000);
      for (let i = 0; i < 2000; i++) sse!.send('m', big, i);
      await waitFor(() => streams.backlog() > 100, 'messages piling up behind a client that does not read');
      res.on('data', () => {});
      res.resume();
      await waitFor(() => streams.backlog() === 0, 'the backlog to drain once the client reads', 20_000);
    } finally {
      req.destroy();
      await waitFor(() => streams.followers() === 0, 'the closed stream to be forgotten');
      server.close();
    }
  });
});

/** The server-sent event stream every following route uses: ids, keep-alive comments, and one clean end. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { openSse } from '../../../services/runtime-agent/src/http/sse.js';
import { waitFor } from '../support/wait.js';

describe('HTTP: server-sent event streams', () => {
  it('sends id and event lines, keep-alive comments while idle, and runs its cleanups once when the client leaves', async () => {
    let cleanups = 0;
    const app = new Koa();
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
      assert.ok(text.startsWith('id: 7\nevent: greeting\ndata: {"hello":"world"}\n\n'), text);
      await reader.cancel();
      await waitFor(() => cleanups === 1, 'the cleanup to run when the client left');
      assert.equal(cleanups, 1);
    } finally {
      server.close();
    }
  });
});

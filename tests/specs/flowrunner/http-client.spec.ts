/**
 * FlowRunner's HTTP/1.1 client (UserConnections on http1.ts) against real node:http and raw net servers
 * on 127.0.0.1: the request bytes are undici's, and the response parser reads Content-Length, chunked
 * (split at every byte), close-delimited, 1xx, HEAD, 204 and 304 answers; keep-alive reuse, a server's
 * close, timeouts, stop, the body cap and garbage are each handled as the runner expects.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Client } from 'undici';
import { DEFAULT_EGRESS_POLICY } from '../../../adapters/shared/egress.js';
import { errorKind, MAX_BODY_BYTES, UserConnections } from '../../../adapters/flowrunner/engine/client.js';
import type { Destination } from '../../../adapters/flowrunner/engine/url.js';

/** Two turns of the loop: a piece written before is read by the client (same process) before the next one. */
const twoTurns = () => new Promise<void>((r) => setImmediate(() => setImmediate(r)));

function dest(port: number, path = '/'): Destination {
  return { origin: `http://127.0.0.1:${port}`, path, hostname: '127.0.0.1' };
}

/** A raw server: `answer` gets each request's head (as text, body included) and its socket. */
async function rawServer(answer: (head: string, socket: net.Socket, n: number) => void | Promise<void>) {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /content-length: (\d+)/i.exec(buf.slice(0, end));
        const total = end + 4 + (m ? Number(m[1]) : 0);
        if (buf.length < total) return;
        const head = buf.slice(0, total);
        buf = buf.slice(total);
        void answer(head, socket, n++);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  let connections = 0;
  server.on('connection', () => connections++);
  return {
    port,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function writePieces(socket: net.Socket, text: string, cuts: number[]): Promise<void> {
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    if (cut > from) socket.write(text.slice(from, cut), 'latin1');
    from = cut;
    await twoTurns();
  }
}

const CHUNKED =
  'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nContent-Type: text/plain\r\n\r\n' +
  '5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n';

describe('FlowRunner HTTP client', function () {
  this.timeout(30_000);
  let conns: UserConnections;
  const closers: (() => Promise<void>)[] = [];
  beforeEach(() => {
    conns = new UserConnections(2000, DEFAULT_EGRESS_POLICY);
  });
  afterEach(async () => {
    await conns.close();
    for (const close of closers.splice(0)) await close();
  });

  async function raw(answer: Parameters<typeof rawServer>[0]) {
    const s = await rawServer(answer);
    closers.push(s.close);
    return s;
  }

  async function node(handler: http.RequestListener) {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    let connections = 0;
    server.on('connection', () => connections++);
    closers.push(async () => {
      server.closeAllConnections();
      server.close();
    });
    return { port: (server.address() as AddressInfo).port, connections: () => connections };
  }

  it('sends the same request bytes as undici (host, connection, headers in order, content-length, body)', async () => {
    const heads: string[] = [];
    const s = await raw((head, socket) => {
      heads.push(head);
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    });
    const requests: [string, Record<string, string>, string | undefined][] = [
      ['GET', { 'user-agent': 'ua/1', accept: '*/*', 'x-forwarded-for': '203.0.113.9' }, undefined],
      ['POST', { 'content-type': 'application/json', 'x-n': '1' }, '{"a":1}'],
      ['POST', { 'x-n': '2' }, '{"name":"Zoë ✓"}'],
      ['POST', {}, undefined],
      ['PUT', { host: 'example.test:8080' }, ''],
      ['GET', { connection: 'close', 'x-a': 'b' }, undefined],
      ['HEAD', { 'x-h': 'h' }, undefined],
    ];
    for (const [method, headers, body] of requests) await conns.send(dest(s.port, '/p?q=1'), method, headers, body);
    const ours = heads.splice(0);
    const undici = new Client(`http://127.0.0.1:${s.port}`);
    try {
      for (const [method, headers, body] of requests) {
        const r = await undici.request({ path: '/p?q=1', method: method as 'GET', headers, body });
        await r.body.dump();
      }
    } finally {
      await undici.close();
    }
    assert.deepEqual(ours, heads);
    assert.match(
      ours[0]!,
      /^GET \/p\?q=1 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nconnection: keep-alive\r\nuser-agent/,
    );
  });

  it('reads a Content-Length body split across packets, and reuses the connection', async () => {
    const body = 'x'.repeat(3000);
    const text = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Case: Yes\r\n\r\n${body}`;
    const s = await raw((_head, socket) => void writePieces(socket, text, [5, 20, 40, 100, 1500]));
    for (let i = 0; i < 2; i++) {
      const r = await conns.send(dest(s.port), 'GET', {}, undefined);
      assert.equal(r.status, 200);
      assert.equal(r.text, body);
      assert.equal(r.headers['x-case'], 'Yes', 'header names are lower-cased');
    }
    assert.equal(s.connections(), 1);
  });

  it('reads a chunked body with extensions and trailers split at every byte boundary', async () => {
    let cut = 1;
    const s = await raw((_head, socket) => void writePieces(socket, CHUNKED, [cut++]));
    for (let i = 1; i < CHUNKED.length; i++) {
      const r = await conns.send(dest(s.port), 'GET', {}, undefined);
      assert.equal(r.text, 'hello world', `split at ${i}`);
      assert.equal(r.headers['content-type'], 'text/plain');
    }
    assert.equal(s.connections(), 1, 'one kept-alive connection for every answer');
  });

  it('reads a chunked body that comes one byte per packet', async () => {
    const cuts = Array.from({ length: CHUNKED.length - 1 }, (_, i) => i + 1);
    const s = await raw((_head, socket) => void writePieces(socket, CHUNKED, cuts));
    const r = await conns.send(dest(s.port), 'GET', {}, undefined);
    assert.equal(r.text, 'hello world');
  });

  it('reads a body that ends at the connection close, then opens a new connection', async () => {
    const s = await raw(async (_head, socket) => {
      await writePieces(socket, 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ', [20]);
      socket.end('part two');
    });
    for (let i = 0; i < 2; i++) {
      const r = await conns.send(dest(s.port), 'GET', {}, undefined);
      assert.equal(r.text, 'part one, part two');
    }
    assert.equal(s.connections(), 2);
  });

  it('skips 1xx interim answers and keeps the final one', async () => {
    const s = await raw((_head, socket) => {
      socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n');
      void writePieces(socket, 'HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok', [10]);
    });
    const r = await conns.send(dest(s.port), 'POST', {}, '{}');
    assert.equal(r.status, 201);
    assert.equal(r.text, 'ok');
    assert.equal(r.headers.link, undefined);
  });

  it('reads no body for HEAD, 204 and 304, and keeps the connection after 204 and 304', async () => {
    const s = await node((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': '1000' });
        res.end();
      } else if (req.url === '/204') {
        res.writeHead(204);
        res.end();
      } else if (req.url === '/304') {
        res.writeHead(304, { etag: '"1"' });
        res.end();
      } else res.end('after');
    });
    const head = await conns.send(dest(s.port), 'HEAD', {}, undefined);
    assert.deepEqual([head.status, head.text, head.headers['content-length']], [200, '', '1000']);
    const before = s.connections();
    assert.equal((await conns.send(dest(s.port, '/204'), 'GET', {}, undefined)).status, 204);
    const notModified = await conns.send(dest(s.port, '/304'), 'GET', {}, undefined);
    assert.deepEqual([notModified.status, notModified.headers.etag], [304, '"1"']);
    assert.equal((await conns.send(dest(s.port, '/x'), 'GET', {}, undefined)).text, 'after');
    assert.equal(s.connections(), before + 1, 'HEAD closes its connection (as undici); 204 and 304 keep theirs');
  });

  it('does not reuse a connection the server answered with Connection: close', async () => {
    const s = await node((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('bye');
    });
    for (let i = 0; i < 3; i++) assert.equal((await conns.send(dest(s.port), 'GET', {}, undefined)).text, 'bye');
    assert.equal(s.connections(), 3);
  });

  it('opens a new connection when the server closed the idle kept-alive one', async () => {
    let serverSide: net.Socket | undefined;
    const s = await raw((_head, socket) => {
      serverSide = socket;
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
    assert.equal((await conns.send(dest(s.port), 'GET', {}, undefined)).text, 'ok');
    if (!serverSide!.closed) await once(serverSide!, 'close');
    assert.equal((await conns.send(dest(s.port), 'GET', {}, undefined)).text, 'ok');
    assert.equal(s.connections(), 2);
  });

  it('sends an idempotent request once more when a reused connection closes before any answer; never a POST', async () => {
    const seen: string[] = [];
    const s = await raw((head, socket, n) => {
      seen.push(head.slice(0, head.indexOf(' ')));
      // The second request of the run comes on a kept-alive connection, and the server drops it unanswered.
      if (n === 1 || n === 3) socket.destroy();
      else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
    await conns.send(dest(s.port), 'GET', {}, undefined);
    assert.equal((await conns.send(dest(s.port), 'GET', {}, undefined)).text, 'ok');
    assert.deepEqual(seen, ['GET', 'GET', 'GET']);
    await assert.rejects(conns.send(dest(s.port), 'POST', {}, '{}'), { code: 'UND_ERR_SOCKET' });
    assert.deepEqual(seen, ['GET', 'GET', 'GET', 'POST'], 'the POST went once');
  });

  it('keeps the first MiB of an oversize body, marks it truncated and drops the connection', async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES * 2, 'a');
    const s = await node((_req, res) => {
      res.setHeader('content-length', big.length);
      res.end(big);
    });
    const r = await conns.send(dest(s.port), 'GET', {}, undefined);
    assert.equal(r.truncated, true);
    assert.equal(r.text.length, MAX_BODY_BYTES);
    const undecoded = await conns.send(dest(s.port), 'GET', {}, undefined, false);
    assert.deepEqual([undecoded.truncated, undecoded.text, undecoded.headers], [true, '', {}]);
    assert.equal(s.connections(), 2, 'each truncated answer dropped its connection');
  });

  it('without decode reads the body to its end, keeps nothing, and reuses the connection', async () => {
    const s = await node((_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end('y'.repeat(300_000));
    });
    const r = await conns.send(dest(s.port), 'GET', {}, undefined, false);
    assert.deepEqual([r.status, r.text, r.headers, r.truncated], [200, '', {}, false]);
    const decoded = await conns.send(dest(s.port), 'GET', {}, undefined);
    assert.equal(decoded.text.length, 300_000);
    assert.deepEqual(decoded.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers are an array');
    assert.equal(s.connections(), 1);
  });

  it('fails a garbage answer with a clear parse error', async () => {
    const s = await raw((_head, socket) => void socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n'));
    await assert.rejects(conns.send(dest(s.port), 'GET', {}, undefined), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'HPE_INVALID_CONSTANT');
      assert.match(err.message, /Expected an HTTP\/1\.x status line, got "SSH-2\.0/);
      assert.equal(errorKind(err), 'network');
      return true;
    });
  });

  it('fails an answer cut before its end with UND_ERR_SOCKET, and a refused connection with ECONNREFUSED', async () => {
    const s = await raw((_head, socket) => void socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort'));
    await assert.rejects(conns.send(dest(s.port), 'GET', {}, undefined), { code: 'UND_ERR_SOCKET' });
    const free = net.createServer().listen(0, '127.0.0.1');
    await once(free, 'listening');
    const port = (free.address() as AddressInfo).port;
    free.close();
    await once(free, 'close');
    await assert.rejects(conns.send(dest(port), 'GET', {}, undefined), { code: 'ECONNREFUSED' });
  });

  it('times out a silent server with a timeout code, and close() aborts the request in flight at once', async () => {
    const s = await raw(() => {});
    const quick = new UserConnections(150, DEFAULT_EGRESS_POLICY);
    await assert.rejects(quick.send(dest(s.port), 'GET', {}, undefined), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'UND_ERR_HEADERS_TIMEOUT');
      assert.equal(errorKind(err), 'timeout');
      return true;
    });
    await quick.close();
    const pending = conns.send(dest(s.port), 'GET', {}, undefined);
    const t0 = performance.now();
    const closed = conns.close();
    await assert.rejects(pending, { code: 'UND_ERR_DESTROYED' });
    await closed;
    assert.ok(performance.now() - t0 < 500);
    await assert.rejects(conns.send(dest(s.port), 'GET', {}, undefined), { code: 'UND_ERR_DESTROYED' });
  });

  it('times out a request on a kept-alive connection after an answered one', async () => {
    const s = await raw((_head, socket, n) => {
      if (n === 0) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    });
    const quick = new UserConnections(150, DEFAULT_EGRESS_POLICY);
    try {
      assert.equal((await quick.send(dest(s.port), 'GET', {}, undefined)).status, 200);
      await assert.rejects(quick.send(dest(s.port), 'GET', {}, undefined), { code: 'UND_ERR_HEADERS_TIMEOUT' });
      assert.equal(s.connections(), 1);
    } finally {
      await quick.close();
    }
  });

  it('refuses a header value with a line break before sending anything (undici: UND_ERR_INVALID_ARG)', async () => {
    const s = await raw((_head, socket) => void socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    await assert.rejects(conns.send(dest(s.port), 'GET', { 'x-a': 'b\r\nx-evil: 1' }, undefined), {
      code: 'UND_ERR_INVALID_ARG',
    });
    assert.equal(s.connections(), 0);
  });
});

/**
 * A loopback HTTP server standing in for a worker's control API behind the fake apiserver's proxy: it answers
 * every request with what it received (method, url, headers, body) as JSON, under the status `?status=N` asks
 * for, and says which server answered (`who`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Echo {
  who: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface EchoServer {
  port: number;
  received: Echo[];
  close(): Promise<void>;
}

export async function startEchoServer(who: string): Promise<EchoServer> {
  const received: Echo[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const echo: Echo = {
        who,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(echo);
      const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
      if (req.url?.startsWith('/moved')) {
        res.writeHead(302, { Location: '/api/elsewhere' });
        return res.end();
      }
      const text = JSON.stringify(echo);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'X-Worker': who,
        'Content-Length': Buffer.byteLength(text),
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A loopback port with nothing listening on it (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

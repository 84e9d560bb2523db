/**
 * A real HTTP receiver of result callbacks on 127.0.0.1: it records every call (headers and raw body) and
 * answers as the test says (a status, or `hang`: no answer at all), and it can be closed and opened again on
 * the same port, as a receiver that goes away and comes back.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jsonOrUndefined } from './json-or-undefined.js';
import { waitFor } from './wait.js';

export interface ReceivedCall {
  headers: IncomingHttpHeaders;
  raw: string;
  body: any;
  deliveryId: string;
  event: string;
  /** What it was answered: a status, or `hang`. */
  answer: number | 'hang';
}

/** How to answer the n-th call (1-based) of all calls received so far. */
export type Answer = (call: Omit<ReceivedCall, 'answer'>, n: number) => number | 'hang';

export class CallbackReceiver {
  readonly calls: ReceivedCall[] = [];
  answer: Answer = () => 200;
  private server: Server | undefined;
  private readonly hanging = new Set<ServerResponse>();
  private constructor(public port: number) {}

  static async start(): Promise<CallbackReceiver> {
    const r = new CallbackReceiver(0);
    await r.open();
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/results`;
  }

  /** Listens (again) on its port. */
  async open(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const body = jsonOrUndefined(raw);
        const call = {
          headers: req.headers,
          raw,
          body,
          deliveryId: String(req.headers['x-runtime-agent-delivery']),
          event: String(req.headers['x-runtime-agent-event']),
        };
        const answer = this.answer(call, this.calls.length + 1);
        this.calls.push({ ...call, answer });
        if (answer === 'hang') {
          this.hanging.add(res);
          return;
        }
        res.writeHead(answer, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops every connection (hanging calls too): the receiver is gone. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    await closed;
  }

  /** Calls about one execution, in the order they came. */
  callsFor(executionId: string): ReceivedCall[] {
    return this.calls.filter((c) => c.body?.execution?.execution_id === executionId);
  }

  /** Distinct delivery ids answered 2xx for one execution. */
  deliveredIds(executionId: string): Set<string> {
    return new Set(
      this.callsFor(executionId)
        .filter((c) => typeof c.answer === 'number' && c.answer >= 200 && c.answer < 300)
        .map((c) => c.deliveryId),
    );
  }

  /** Waits until `probe` holds of the calls received. */
  until<T>(probe: (calls: ReceivedCall[]) => T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
    return waitFor(() => probe(this.calls), what, timeoutMs);
  }
}

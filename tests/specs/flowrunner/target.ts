/**
 * A real HTTP target for FlowRunner tests: a node:http server on 127.0.0.1
 * (a free port) that records every request (method, url, headers, body,
 * arrival time, concurrency at arrival, and whether the client went away
 * before the answer) and answers per path as programmed: status, headers,
 * JSON or raw body, a delay, holding the answer until released, or dropping
 * the connection without an answer.
 */
import assert from 'node:assert/strict';
import {
  FlowRunner,
  parseConfig,
  parseFlowmap,
  type Flowmap,
  type FlowRunnerConfig,
} from '../../../adapters/flowrunner/engine/index.js';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { forwardTo } from '../support/forward.js';

export interface Seen {
  /** 0, 1, 2, … in arrival order. */
  n: number;
  method: string;
  /** Request target as sent: path and query. */
  url: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** Raw header names and values as they came over the wire (duplicates visible). */
  rawHeaders: string[];
  body: string;
  /** performance.now() when the request (with its body) arrived. */
  at: number;
  /** The client's port: one per connection. */
  remotePort: number;
  /** Requests in flight at this target when this one arrived, itself included. */
  concurrent: number;
  /** The client closed the connection before the answer was sent. */
  closedEarly: boolean;
  answered: boolean;
}

export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  /** Sent as JSON (content-type application/json) unless `raw` is given. */
  json?: unknown;
  raw?: string | Buffer;
  delayMs?: number;
  /** Keep the answer until release() (or the client goes away). */
  hold?: boolean;
  /** Destroy the socket without answering: a network error for the client. */
  drop?: boolean;
}

export type Responder = Answer | ((req: Seen, hitsOnPath: number) => Answer);

export class Target {
  readonly requests: Seen[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly routes = new Map<string, Responder>();
  private readonly held = new Set<() => void>();
  private readonly server: http.Server;
  private port = 0;

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
  }

  static async start(): Promise<Target> {
    const t = new Target();
    t.server.listen(0, '127.0.0.1');
    await once(t.server, 'listening');
    t.port = (t.server.address() as AddressInfo).port;
    return t;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get portNumber(): number {
    return this.port;
  }

  /** Answers for a path (exact match on the path without the query); the default is 200 `{"ok":true}`. */
  on(path: string, answer: Responder): this {
    this.routes.set(path, answer);
    return this;
  }

  /** Requests to `path` (without the query), in arrival order. */
  hits(path: string): Seen[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Request bodies to `path`, parsed as JSON. */
  bodies(path: string): any[] {
    return this.hits(path).map((r) => JSON.parse(r.body));
  }

  /** Answers every held request now. */
  release(): void {
    for (const go of [...this.held]) go();
  }

  reset(): void {
    this.release();
    this.requests.length = 0;
    this.routes.clear();
    this.maxInFlight = 0;
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const seen: Seen = {
        n: this.requests.length,
        method: req.method ?? '',
        url,
        path,
        query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
        remotePort: req.socket.remotePort ?? 0,
        concurrent: this.inFlight,
        closedEarly: false,
        answered: false,
      };
      this.requests.push(seen);
      let finished = false;
      const done = () => {
        if (finished) return false;
        finished = true;
        this.inFlight--;
        return true;
      };
      res.on('close', () => {
        if (!res.writableFinished && done()) seen.closedEarly = true;
      });
      const responder = this.routes.get(path) ?? {};
      const answer = typeof responder === 'function' ? responder(seen, this.hits(path).length) : responder;
      const send = () => {
        if (finished || res.destroyed) return;
        if (answer.drop) {
          done();
          req.socket.destroy();
          return;
        }
        const body = answer.raw ?? JSON.stringify(answer.json === undefined ? { ok: true } : answer.json);
        const headers: Record<string, string | number> = {
          'content-length': Buffer.byteLength(body),
          ...answer.headers,
        };
        if (answer.raw === undefined) headers['content-type'] = 'application/json';
        // Counted as answered before the bytes leave, so the next request of the same client never overlaps it.
        if (done()) seen.answered = true;
        res.writeHead(answer.status ?? 200, headers);
        res.end(body);
      };
      if (answer.hold) {
        const go = () => {
          this.held.delete(go);
          send();
        };
        this.held.add(go);
        res.on('close', () => this.held.delete(go));
      } else if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  }
}

/**
 * One target for the enclosing describe block (started before it, closed after it), its routes and
 * requests reset after each test. The returned object forwards to it.
 */
export function useTarget(): Target {
  let current: Target | undefined;
  before(async () => {
    current = await Target.start();
  });
  after(() => current?.close());
  afterEach(() => current?.reset());
  return forwardTo(() => current, 'the target is only there inside the describe block, after its before hook');
}

/** A port on 127.0.0.1 where nothing listens (connections are refused). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ---- Running flows against a target -------------------------------------------------------------

export interface LogLine {
  level: string;
  message: string;
}

/** A valid configuration: no pauses unless asked, overrides as given. */
export function makeConfig(raw: Record<string, unknown>): FlowRunnerConfig {
  const c = parseConfig({ sim_users: 1, min_sleep_ms: 0, max_sleep_ms: 0, ...raw });
  if (!c.ok) assert.fail(`config rejected: ${JSON.stringify(c.problems)}`);
  return c.config;
}

export function makeFlowmap(raw: Record<string, unknown>): Flowmap {
  const f = parseFlowmap({ name: 'test', ...raw });
  if (!f.ok) assert.fail(`flowmap rejected: ${JSON.stringify(f.problems)}`);
  return f.flowmap;
}

export interface Started {
  runner: FlowRunner;
  logs: LogLine[];
}

/** Starts a runner (stopped by the caller, or by its limit). */
export function startRunner(
  config: Record<string, unknown>,
  flowmap: Record<string, unknown>,
  limit?: { durationMs?: number; iterations?: number },
): Started {
  const logs: LogLine[] = [];
  const runner = new FlowRunner(makeConfig(config), makeFlowmap(flowmap), {
    log: (level, message) => void logs.push({ level, message }),
    limit,
  });
  runner.start();
  return { runner, logs };
}

/** Runs `iterations` flow instances per user to the end. */
export async function runFlow(
  config: Record<string, unknown>,
  flowmap: Record<string, unknown>,
  iterations = 1,
): Promise<Started> {
  const started = startRunner(config, flowmap, { iterations, durationMs: 15_000 });
  await started.runner.done;
  return started;
}

/** A request step (GET unless said otherwise). */
export function req(id: string, url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, type: 'request', method: 'GET', url, ...extra };
}

/** A POST step whose JSON body echoes values, for reading the context at the target. */
export function echo(
  id: string,
  body: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { id, type: 'request', method: 'POST', url: `/echo/${id}`, body, ...extra };
}

/** Observes that nothing happens for a while (an assertion window, not synchronisation). */
export function quietPeriod(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

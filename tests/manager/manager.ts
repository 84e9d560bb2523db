/**
 * A Manager that speaks the pull-mode protocol (docs/pull-mode.md) over real HTTP on 127.0.0.1, for tests,
 * benchmarks and `npm run manager:demo`. It hands out tasks to claims (the same task again for a claim
 * retried with the same Idempotency-Key), records every call, and fails on demand: a status code, a lost
 * answer (the request is processed, then the connection is dropped), a request dropped unprocessed, or a
 * slow answer.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ManagerTask {
  task_id: string;
  type: string;
  payload: Record<string, unknown>;
}

export type Endpoint = 'register' | 'heartbeat' | 'claim' | 'report' | 'deregister';

export type Failure =
  | { kind: 'status'; status: number }
  /** Processed as usual, then the connection is dropped before any answer: the caller cannot tell. */
  | { kind: 'lose' }
  /** Dropped before it is processed. */
  | { kind: 'drop' }
  /** Answered as usual after `ms`. */
  | { kind: 'slow'; ms: number };

export interface Call {
  endpoint: Endpoint | 'unknown';
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  at: number;
  /** What the manager answered (undefined when it dropped or lost the answer). */
  status?: number;
}

export interface Report {
  task_id: string;
  agent: string;
  idempotencyKey: string | undefined;
  body: {
    status: 'succeeded' | 'failed' | 'cancelled';
    result?: unknown;
    error?: { type?: string; message?: string } | null;
    execution_id?: string;
    started_at?: string | null;
    finished_at?: string | null;
  };
}

export interface ManagerOptions {
  /** Keys agents must present (X-AGENT-KEY); default: any key is accepted. */
  agentKey?: string;
  heartbeatIntervalS?: number;
  claimIntervalS?: number;
  apiVersion?: string;
  /** Told of every call once it is answered (or dropped). */
  onCall?: (call: Call) => void;
}

export class TestManager {
  readonly calls: Call[] = [];
  /** Every report call the manager processed, duplicates (same Idempotency-Key) included. */
  readonly reports: Report[] = [];
  /** Agents by name: their id, and whether they were removed (their heartbeats answer 404). */
  readonly agents = new Map<
    string,
    { agentId: string; removed: boolean; registrations: number; deregistered: boolean }
  >();
  private readonly pending: ManagerTask[] = [];
  private readonly claimsByKey = new Map<string, ManagerTask>();
  /** task_id → the agent it was handed to (every hand-out, to find a task given to two agents). */
  readonly handedOut = new Map<string, string[]>();
  /** task_id → when it was first handed out (epoch ms). */
  readonly handedOutAt = new Map<string, number>();
  private readonly cancels = new Map<string, Set<string>>();
  private readonly failures = new Map<Endpoint, Failure[]>();
  private readonly sockets = new Set<Socket>();
  private server?: Server;
  url = '';

  constructor(private readonly options: ManagerOptions = {}) {}

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Stops answering (open connections are cut); `start(samePort)` brings it back. */
  async close(): Promise<void> {
    if (!this.server) return;
    const closed = once(this.server, 'close');
    this.server.close();
    for (const s of this.sockets) s.destroy();
    await closed;
    this.server = undefined;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  addTasks(...tasks: ManagerTask[]): void {
    this.pending.push(...tasks);
  }

  /** The next heartbeat of `agent` is told to cancel `taskId`. */
  cancel(agent: string, taskId: string): void {
    if (!this.cancels.has(agent)) this.cancels.set(agent, new Set());
    this.cancels.get(agent)!.add(taskId);
  }

  /** The agent is removed: its heartbeats answer 404 from now on. */
  remove(agent: string): void {
    const a = this.agents.get(agent);
    if (a) a.removed = true;
  }

  /** The next `times` requests to `endpoint` fail as `failure` says. */
  failNext(endpoint: Endpoint, failure: Failure, times = 1): void {
    const list = this.failures.get(endpoint) ?? [];
    for (let i = 0; i < times; i++) list.push(failure);
    this.failures.set(endpoint, list);
  }

  /** Tasks not handed out yet. */
  get queued(): number {
    return this.pending.length;
  }

  /** Distinct reports per task: by Idempotency-Key, the key of a report retried after a lost answer. */
  distinctReports(taskId: string): Report[] {
    const seen = new Map<string, Report>();
    for (const r of this.reports) if (r.task_id === taskId) seen.set(r.idempotencyKey ?? `${seen.size}`, r);
    return [...seen.values()];
  }

  callsTo(endpoint: Endpoint): Call[] {
    return this.calls.filter((c) => c.endpoint === endpoint);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const path = req.url ?? '';
    const endpoint = endpointOf(path, this.options.apiVersion ?? '1');
    const call: Call = { endpoint, method: req.method ?? '', path, headers: req.headers, body, at: Date.now() };
    this.calls.push(call);
    const failure = endpoint === 'unknown' ? undefined : this.failures.get(endpoint)?.shift();
    if (failure?.kind === 'drop') return void req.socket.destroy();
    if (failure?.kind === 'slow') await new Promise((r) => setTimeout(r, failure.ms));
    if (failure?.kind === 'status') return this.answer(res, call, failure.status, { error: 'injected failure' });
    const [status, answer] = this.process(call, req);
    if (failure?.kind === 'lose') return void req.socket.destroy();
    this.answer(res, call, status, answer);
  }

  private answer(res: ServerResponse, call: Call, status: number, body: unknown): void {
    call.status = status;
    this.options.onCall?.(call);
    if (status === 204) return void res.writeHead(204).end();
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  /** The protocol itself: what a Manager does with a request. */
  private process(call: Call, req: IncomingMessage): [number, unknown] {
    const name = String(req.headers['x-agent-name'] ?? '');
    const key = req.headers['x-agent-key'];
    if (call.endpoint === 'unknown' || call.method !== 'POST') return [404, { error: 'no such endpoint' }];
    if (!name || (this.options.agentKey !== undefined && key !== this.options.agentKey))
      return [401, { error: 'unknown agent or wrong key' }];
    const agent = this.agents.get(name);
    switch (call.endpoint) {
      case 'register': {
        const a = agent ?? {
          agentId: `agent-${this.agents.size + 1}`,
          removed: false,
          registrations: 0,
          deregistered: false,
        };
        a.registrations++;
        a.removed = false;
        a.deregistered = false;
        this.agents.set(name, a);
        return [
          agent ? 200 : 201,
          {
            agent_id: a.agentId,
            heartbeat_interval_s: this.options.heartbeatIntervalS ?? 5,
            claim_interval_s: this.options.claimIntervalS ?? 1,
          },
        ];
      }
      case 'heartbeat': {
        if (!agent || agent.removed) return [404, { error: 'agent not registered' }];
        const cancel = [...(this.cancels.get(name) ?? [])];
        this.cancels.delete(name);
        return [200, { cancel }];
      }
      case 'claim': {
        if (!agent || agent.removed) return [404, { error: 'agent not registered' }];
        const idem = header(req, 'idempotency-key');
        const again = idem ? this.claimsByKey.get(idem) : undefined;
        if (again) return [200, again];
        const task = this.pending.shift();
        if (!task) return [204, undefined];
        if (idem) this.claimsByKey.set(idem, task);
        this.handedOut.set(task.task_id, [...(this.handedOut.get(task.task_id) ?? []), name]);
        if (!this.handedOutAt.has(task.task_id)) this.handedOutAt.set(task.task_id, Date.now());
        return [200, task];
      }
      case 'report': {
        const taskId = decodeURIComponent(call.path.split('/').at(-2) ?? '');
        const owners = this.handedOut.get(taskId);
        if (!owners) return [404, { error: 'no such task' }];
        this.reports.push({
          task_id: taskId,
          agent: name,
          idempotencyKey: header(req, 'idempotency-key'),
          body: call.body as Report['body'],
        });
        return [200, { ok: true }];
      }
      case 'deregister':
        if (agent) agent.deregistered = true;
        return [200, { ok: true }];
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function endpointOf(path: string, version: string): Endpoint | 'unknown' {
  const prefix = `/v${version}/agent/`;
  if (!path.startsWith(prefix)) return 'unknown';
  const rest = path.slice(prefix.length);
  if (rest === 'register' || rest === 'heartbeat' || rest === 'deregister') return rest;
  if (rest === 'tasks/claim') return 'claim';
  if (/^tasks\/[^/]+\/result$/.test(rest)) return 'report';
  return 'unknown';
}

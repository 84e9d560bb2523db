/**
 * The FlowRunner control API (docs/flowrunner.md, Control API) through the real
 * agent process over loopback, against a real local HTTP target that records
 * what arrives and when.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FlowControl, FlowControlClosed, parseStartRequest } from '../../../adapters/flowrunner/control.js';
import { decodeLatency, fleetTotals, mergeStats } from '../../../adapters/flowrunner/engine/index.js';
import { SystemSampler } from '../../../adapters/flowrunner/system.js';
import { checkedRequests, type Reply } from '../http/http-support.js';
import { freePort, startAgent, type AgentProcess } from '../support/agent-process.js';
import { waitFor } from '../support/wait.js';

// --- a target that records every request -----------------------------------------------------------

interface Hit {
  method: string;
  /** Path and query as sent. */
  url: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** performance.now() when the request line and headers arrived. */
  at: number;
  answered: boolean;
  /** The client closed the connection before the answer was sent. */
  closedEarly: boolean;
}

class Target {
  readonly hits: Hit[] = [];
  /** Each answer waits this long (requests stay in flight). */
  delayMs = 0;
  /** Answers this many requests, then holds every later one until the client goes away. */
  holdAfter: number | undefined;
  private readonly server = http.createServer((req, res) => this.handle(req, res));

  async listen(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  on(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  inFlight(): Hit[] {
    return this.hits.filter((h) => !h.answered && !h.closedEarly);
  }

  reset(): void {
    this.hits.length = 0;
    this.delayMs = 0;
    this.holdAfter = undefined;
  }

  answered(): number {
    return this.hits.filter((h) => h.answered).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const hit: Hit = {
      method: req.method ?? '',
      url: req.url ?? '/',
      path: (req.url ?? '/').split('?')[0]!,
      headers: req.headers,
      body: '',
      at: performance.now(),
      answered: false,
      closedEarly: false,
    };
    this.hits.push(hit);
    let timer: NodeJS.Timeout | undefined;
    res.on('close', () => {
      clearTimeout(timer);
      if (!res.writableEnded) hit.closedEarly = true;
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => (hit.body += d));
    req.on('end', () => {
      if (this.holdAfter !== undefined && this.answered() >= this.holdAfter) return;
      const send = () => {
        if (res.destroyed) return;
        hit.answered = true;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, token: 'tok-123' }));
      };
      if (this.delayMs > 0) timer = setTimeout(send, this.delayMs);
      else send();
    });
  }
}

// --- helpers --------------------------------------------------------------------------------------

/** A request to the agent; every /api error answer is FastAPI's `{ detail }` and never a stack. */
const api = checkedRequests((r, what) => {
  assert.ok(r.body && 'detail' in r.body, `${what} without detail: ${r.text}`);
  assert.equal(Object.keys(r.body).length, 1, `only detail in ${r.text}`);
});

interface Problem {
  loc: Array<string | number>;
  msg: string;
  type: string;
}

function problems(r: Reply): Problem[] {
  assert.equal(r.status, 400, r.text);
  assert.ok(Array.isArray(r.body.detail), `detail is a list: ${r.text}`);
  for (const p of r.body.detail) {
    assert.deepEqual(Object.keys(p).sort(), ['loc', 'msg', 'type'], JSON.stringify(p));
    assert.ok(Array.isArray(p.loc) && typeof p.msg === 'string' && p.msg.length > 0 && typeof p.type === 'string');
  }
  return r.body.detail;
}

const locs = (ps: Problem[]) => ps.map((p) => p.loc.join('.'));

function config(target: Target, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { flow_target_url: target.url, sim_users: 2, min_sleep_ms: 5, max_sleep_ms: 15, ...extra };
}

function flowmap(path: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: `flow ${path}`,
    steps: [{ id: 'page', name: 'Get page', type: 'request', method: 'GET', url: path, onFailure: 'continue' }],
    ...extra,
  };
}

async function start(agent: AgentProcess, body: unknown): Promise<void> {
  const r = await api(agent, 'POST', '/api/start', body);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, { message: 'Flow runner started with the provided flowmap' });
}

/** POSTs and returns the answer with performance.now() at the moment its headers arrived. */
async function timedPost(
  agent: AgentProcess,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any; at: number }> {
  const res = await fetch(agent.url + path, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const at = performance.now();
  return { status: res.status, body: await res.json(), at };
}

async function health(agent: AgentProcess): Promise<string> {
  const r = await api(agent, 'GET', '/api/health');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'healthy');
  return r.body.app_status;
}

async function apiMetrics(agent: AgentProcess): Promise<any> {
  const r = await api(agent, 'GET', '/api/metrics');
  assert.equal(r.status, 200, r.text);
  return r.body;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(agent: AgentProcess): Promise<{ text: string; samples: Sample[] }> {
  const r = await agent.request('GET', '/metrics');
  assert.equal(r.status, 200);
  const samples: Sample[] = [];
  for (const line of r.text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { text: r.text, samples };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

/** Hits that arrived after `at` (performance.now()). */
const arrivedAfter = (hits: Hit[], at: number) => hits.filter((h) => h.at > at);

/** Watches for `ms` that nothing more arrives: the only way to see an absence. */
async function nothingMoreArrives(target: Target, ms: number): Promise<void> {
  const count = target.hits.length;
  await new Promise((r) => setTimeout(r, ms));
  assert.equal(
    target.hits.length,
    count,
    `requests arrived after the flow stopped: ${target.hits
      .slice(count)
      .map((h) => h.path)
      .join(', ')}`,
  );
}

// --- the API --------------------------------------------------------------------------------------

describe('FlowRunner control API (/api/*) through the agent process', () => {
  let agent: AgentProcess;
  let target: Target;
  let other: Target;

  before(async () => {
    [agent, target, other] = await Promise.all([startAgent(), new Target().listen(), new Target().listen()]);
  });
  afterEach(async () => {
    await agent.request('POST', '/api/stop');
    target.reset();
    other.reset();
  });
  after(async () => {
    await agent?.stop();
    agent?.cleanup();
    await Promise.all([target?.close(), other?.close()]);
  });

  it('is initializing before the first start: health, metrics, stop and update say so', async () => {
    assert.equal(await health(agent), 'initializing');
    assert.equal(value((await scrape(agent)).samples, 'app_status'), 0);
    const m = await apiMetrics(agent);
    assert.equal(m.app_status, 'initializing');
    assert.deepEqual(m.flow_runner, {
      running: false,
      rps: 0,
      total_requests: 0,
      flow_count: 0,
      avg_flow_duration_ms: 0,
      active_users: 0,
    });
    const stats = (await api(agent, 'GET', '/api/stats')).body;
    assert.deepEqual(
      [stats.workers, stats.running, stats.started_at, stats.requests, stats.latency.count],
      [0, false, null, 0, 0],
    );
    assert.equal(decodeLatency(stats.latency.hdr).totalCount, 0);
    const stop = await api(agent, 'POST', '/api/stop');
    assert.deepEqual(stop.body, { message: 'No running flow runner to stop (status=initializing).' });
    const upd = await api(agent, 'POST', '/api/update', { sim_users: 3 });
    assert.equal(upd.status, 400);
    assert.match(upd.body.detail, /not running \(status=initializing\)/);
  });

  it('lists every problem of config and flowmap at once as 400 { detail: [{ loc, msg, type }] } and starts nothing', async () => {
    const bad = {
      flow_target_url: 'relative/path',
      sim_users: 0,
      min_sleep_ms: 500,
      max_sleep_ms: 100,
      flow_target_dns_override: 'not-an-ip.example',
      debug: 'false',
    };
    const noFlowmap = problems(await api(agent, 'POST', '/api/start', { config: bad }));
    assert.deepEqual(locs(noFlowmap).sort(), [
      'body.config.debug',
      'body.config.flow_target_dns_override',
      'body.config.flow_target_url',
      'body.config.max_sleep_ms',
      'body.config.sim_users',
      'body.flowmap',
    ]);
    const byLoc = new Map(noFlowmap.map((p) => [p.loc.join('.'), p]));
    assert.deepEqual(byLoc.get('body.flowmap'), { loc: ['body', 'flowmap'], msg: 'Field required', type: 'missing' });
    assert.equal(byLoc.get('body.config.sim_users')!.type, 'greater_than_equal');
    assert.equal(byLoc.get('body.config.debug')!.type, 'bool_type');
    assert.match(byLoc.get('body.config.max_sleep_ms')!.msg, /min_sleep_ms \(500\).*max_sleep_ms \(100\)/);

    const untyped = problems(
      await api(agent, 'POST', '/api/start', {
        config: { ...bad, min_sleep_ms: 10 },
        flowmap: {
          name: 'x',
          steps: [
            { id: 'ok', type: 'request', url: '/' },
            { id: 'no_type', url: '/x' },
          ],
        },
      }),
    );
    assert.deepEqual(locs(untyped).sort(), [
      'body.config.debug',
      'body.config.flow_target_dns_override',
      'body.config.flow_target_url',
      'body.config.sim_users',
      'body.flowmap.steps.1.type',
    ]);
    assert.deepEqual(
      untyped.find((p) => p.loc.includes('steps')),
      { loc: ['body', 'flowmap', 'steps', 1, 'type'], msg: 'Field required', type: 'missing' },
    );
    assert.equal(await health(agent), 'initializing');
    assert.equal(target.hits.length, 0);
  });

  it('answers malformed JSON, a non-JSON content type and a missing body with 400 { detail }', async () => {
    const malformed = problems(
      await api(agent, 'POST', '/api/start', '{"config": {', { 'content-type': 'application/json' }),
    );
    assert.equal(malformed[0]!.type, 'json_invalid');
    const text = problems(
      await api(agent, 'POST', '/api/start', JSON.stringify({ config: config(target), flowmap: flowmap('/x') }), {
        'content-type': 'text/plain',
      }),
    );
    assert.match(text[0]!.msg, /application\/json/);
    const empty = problems(await api(agent, 'POST', '/api/start'));
    assert.deepEqual(empty, [{ loc: ['body'], msg: 'Field required', type: 'missing' }]);
    const malformedUpdate = problems(
      await api(agent, 'POST', '/api/update', 'sim_users=3', { 'content-type': 'application/json' }),
    );
    assert.equal(malformedUpdate[0]!.type, 'json_invalid');
    // Unknown /api routes and methods in FastAPI's words; the agent's own routes keep their error shape.
    assert.deepEqual((await api(agent, 'GET', '/api/start')).body, { detail: 'Method Not Allowed' });
    assert.deepEqual((await api(agent, 'GET', '/api/nothing-here')).body, { detail: 'Not Found' });
    assert.equal((await agent.request('GET', '/nothing-here')).body.error_type, 'not_found');
    // The router matches paths in any case, and so does the control API's error shape (never a 500).
    const upper = await api(agent, 'POST', '/API/start', {});
    assert.equal(upper.status, 400, upper.text);
    assert.ok(Array.isArray(upper.body.detail));
    assert.equal(await health(agent), 'initializing');
  });

  it('starts the flowmap: its requests arrive with method, path, headers and body', async () => {
    await start(agent, {
      config: config(target, { sim_users: 2, xff_header_name: 'X-Client-IP' }),
      flowmap: {
        name: 'login flow',
        headers: { 'X-Flow': 'control-test' },
        steps: [
          {
            id: 'login',
            type: 'request',
            method: 'POST',
            url: '/login',
            headers: { 'X-Step': '{{userId}}' },
            body: { user: '{{userId}}', n: 1 },
            extract: { token: 'body.token' },
          },
          { id: 'me', type: 'request', method: 'GET', url: '/me?token={{token}}' },
        ],
      },
    });
    await waitFor(() => target.on('/me').length >= 4, 'requests of both steps');
    assert.equal(await health(agent), 'running');
    const login = target.on('/login')[0]!;
    assert.equal(login.method, 'POST');
    assert.equal(login.headers['x-flow'], 'control-test');
    assert.match(String(login.headers['x-step']), /^user-[12]$/);
    assert.match(String(login.headers['x-client-ip']), /^\d+\.\d+\.\d+\.\d+$/);
    assert.match(String(login.headers['content-type']), /application\/json/);
    assert.deepEqual(JSON.parse(login.body), { user: login.headers['x-step'], n: 1 });
    const me = target.on('/me')[0]!;
    assert.equal(me.method, 'GET');
    assert.equal(me.url, '/me?token=tok-123', "the token extracted from /login's answer went into the next step's URL");
    assert.ok(
      target.hits.every((h) => typeof h.headers['user-agent'] === 'string' && h.headers['user-agent'].length > 0),
    );
    assert.deepEqual(new Set(target.on('/login').map((h) => h.headers['x-step'])), new Set(['user-1', 'user-2']));
  });

  it('logs the flow runner through the agent log, debug lines only with debug: true', async () => {
    await start(agent, { config: config(target, { sim_users: 1, debug: false }), flowmap: flowmap('/quiet') });
    await waitFor(() => target.on('/quiet').length >= 3, 'a few requests');
    const debugLines = () => agent.logLines().filter((l) => l.component === 'flowrunner' && l.level === 20);
    assert.equal(debugLines().length, 0);
    assert.ok(
      agent.logLines().some((l) => l.component === 'flowrunner' && l.level === 30 && /started/.test(String(l.msg))),
    );
    await start(agent, { config: config(target, { sim_users: 1, debug: true }), flowmap: flowmap('/chatty') });
    await waitFor(
      () => debugLines().some((l) => String(l.msg).includes('/chatty')),
      'debug lines about /chatty requests',
    );
  });

  it('a second start replaces the first: the first flow sends nothing after the second start answered', async () => {
    await start(agent, { config: config(target, { sim_users: 3 }), flowmap: flowmap('/flow-a') });
    await waitFor(() => target.on('/flow-a').length >= 6, 'flow A requests');
    const before = (await scrape(agent)).samples;
    const second = await timedPost(agent, '/api/start', {
      config: config(target, { sim_users: 2 }),
      flowmap: flowmap('/flow-b'),
    });
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, { message: 'Flow runner started with the provided flowmap' });
    await waitFor(() => target.on('/flow-b').length >= 6, 'flow B requests');
    assert.deepEqual(arrivedAfter(target.on('/flow-a'), second.at), [], 'flow A requests after the second start');
    const m = await apiMetrics(agent);
    assert.equal(m.app_status, 'running');
    assert.equal(m.flow_runner.active_users, 2);
    // Prometheus counters keep counting across flows, the per-step histogram too (both flows have step "page").
    const after = (await scrape(agent)).samples;
    for (const [name, labels] of [
      ['flow_runner_requests_total', {}],
      ['flow_runner_flows_total', {}],
      ['flow_runner_request_duration_seconds_count', { step_id: 'page' }],
      ['flow_runner_request_duration_seconds_bucket', { step_id: 'page', le: '+Inf' }],
    ] as const) {
      const was = value(before, name, labels)!;
      assert.ok(was > 0, `${name} counted flow A`);
      assert.ok(value(after, name, labels)! > was, `${name} kept counting: ${was} -> ${value(after, name, labels)}`);
    }
    // /api/metrics reports the flow that runs now (its own total, as a per-run FlowRunner does).
    assert.ok(m.flow_runner.total_requests < value(after, 'flow_runner_requests_total')!);
  });

  it('stops at once: requests in flight are aborted and none arrives after the stop answer', async () => {
    target.delayMs = 200;
    await start(agent, {
      config: config(target, { sim_users: 3, min_sleep_ms: 0, max_sleep_ms: 0 }),
      flowmap: flowmap('/slow'),
    });
    await waitFor(
      () => target.inFlight().length === 3 && target.hits.length >= 6,
      'three requests in flight after a few answered',
      10_000,
    );
    const stop = await timedPost(agent, '/api/stop');
    assert.equal(stop.status, 200);
    assert.deepEqual(stop.body, { message: 'Flow runner forcibly stopped.' });
    assert.deepEqual(arrivedAfter(target.hits, stop.at), [], 'requests that arrived after the stop answer');
    const cut = target.hits.filter((h) => !h.answered);
    assert.ok(cut.length >= 1, 'requests were in flight at stop');
    await waitFor(() => cut.every((h) => h.closedEarly), 'the target to see the in-flight requests closed');
    await nothingMoreArrives(target, 500);
    assert.equal(await health(agent), 'stopped');
    assert.equal(value((await scrape(agent)).samples, 'app_status'), 2);
    const m = await apiMetrics(agent);
    assert.equal(m.flow_runner.running, false);
    assert.equal(m.flow_runner.active_users, 0);
    assert.deepEqual((await api(agent, 'POST', '/api/stop')).body, { message: 'Flow runner is already stopped.' });
  });

  it('updates sim_users up and down live; fields that cannot change live are 409; not running is 400', async () => {
    const live = {
      name: 'live',
      steps: [{ id: 'live', type: 'request', url: '/live', headers: { 'X-User': '{{userId}}' } }],
    };
    await start(agent, { config: config(target, { sim_users: 2 }), flowmap: live });
    const usersSeenAfter = (at: number) =>
      new Set(arrivedAfter(target.on('/live'), at).map((h) => h.headers['x-user']));
    const users = async (n: number) =>
      waitFor(async () => {
        const m = await apiMetrics(agent);
        return (
          m.metrics.active_simulated_users === n &&
          m.flow_runner.active_users === n &&
          value((await scrape(agent)).samples, 'flow_runner_active_users') === n
        );
      }, `${n} active users in /api/metrics and /metrics`);
    await users(2);

    const up = await api(agent, 'POST', '/api/update', { sim_users: 5 });
    assert.equal(up.status, 200, up.text);
    assert.equal(up.body.message, 'Flow runner updated');
    assert.deepEqual(up.body.changed, ['sim_users']);
    assert.equal(up.body.config.sim_users, 5);
    assert.equal(up.body.config.flow_target_url, target.url);
    const upAt = performance.now();
    await users(5);
    await waitFor(() => usersSeenAfter(upAt).size === 5, 'requests of five users');

    const down = await api(agent, 'POST', '/api/update', { config: { 'Sim Users': 1, max_sleep_ms: 20 } });
    assert.equal(down.status, 200, down.text);
    assert.deepEqual([...down.body.changed].sort(), ['max_sleep_ms', 'sim_users']);
    await users(1);
    const downAt = performance.now();
    await waitFor(() => arrivedAfter(target.on('/live'), downAt).length >= 3, 'more requests');
    assert.deepEqual(usersSeenAfter(downAt), new Set(['user-1']), 'only user 1 sends once one user is active');

    const frozen = await api(agent, 'POST', '/api/update', { flow_target_url: other.url });
    assert.equal(frozen.status, 409, frozen.text);
    assert.deepEqual(
      frozen.body.detail.map((p: Problem) => p.loc),
      [['body', 'flow_target_url']],
    );
    const invalid = problems(await api(agent, 'POST', '/api/update', { sim_users: 0, min_sleep_ms: 'soon' }));
    assert.deepEqual(locs(invalid).sort(), ['body.min_sleep_ms', 'body.sim_users']);
    assert.equal((await apiMetrics(agent)).flow_runner.active_users, 1, 'a refused update changes nothing');
    assert.equal(other.hits.length, 0);

    await api(agent, 'POST', '/api/stop');
    const stopped = await api(agent, 'POST', '/api/update', { sim_users: 3 });
    assert.equal(stopped.status, 400);
    assert.match(stopped.body.detail, /not running \(status=stopped\)/);
  });

  it('stops gracefully with graceful_stop_seconds: requests in flight finish and are counted, nothing new starts', async () => {
    target.delayMs = 300;
    await start(agent, {
      config: config(target, { sim_users: 3, min_sleep_ms: 0, max_sleep_ms: 0 }),
      flowmap: flowmap('/slow'),
    });
    await waitFor(() => target.inFlight().length === 3 && target.hits.length >= 6, 'three requests in flight', 10_000);
    const stop = await timedPost(agent, '/api/stop', { graceful_stop_seconds: 5 });
    assert.equal(stop.status, 200, JSON.stringify(stop.body));
    assert.deepEqual(stop.body, { message: 'Flow runner stopped after its requests in flight finished.' });
    assert.deepEqual(arrivedAfter(target.hits, stop.at), [], 'requests that arrived after the stop answer');
    assert.ok(
      target.hits.every((h) => h.answered && !h.closedEarly),
      'every request was answered, none cut',
    );
    const stats = (await api(agent, 'GET', '/api/stats')).body;
    assert.equal(stats.requests, target.hits.length, 'every request the target saw is counted');
    assert.equal(await health(agent), 'stopped');

    // A grace shorter than the answer: what is still in flight then is aborted, as by a plain stop.
    target.delayMs = 5000;
    await start(agent, {
      config: config(target, { sim_users: 2, min_sleep_ms: 0, max_sleep_ms: 0 }),
      flowmap: flowmap('/slower'),
    });
    await waitFor(() => target.inFlight().length === 2, 'two requests in flight', 10_000);
    const cut = await timedPost(agent, '/api/stop', { graceful_stop_seconds: 0.2 });
    assert.equal(cut.status, 200);
    await waitFor(
      () => target.hits.filter((h) => h.path === '/slower').every((h) => h.closedEarly),
      'the held requests to be cut',
    );
    for (const bad of [-1, 301, 'soon'])
      assert.deepEqual(
        (await api(agent, 'POST', '/api/stop', { graceful_stop_seconds: bad })).body.detail.map((d: any) =>
          d.loc.join('.'),
        ),
        ['body.graceful_stop_seconds'],
      );
  });

  it('/api/stats: counters and a latency histogram that decodes to exactly the requests the target answered', async () => {
    // The target answers 40 requests, then holds the next one of each user: after stop, those were aborted
    // (never answered, not counted), so the run's count must be exactly the target's.
    target.holdAfter = 40;
    await start(agent, { config: config(target, { sim_users: 3 }), flowmap: flowmap('/counted') });
    await waitFor(async () => {
      const s = (await api(agent, 'GET', '/api/stats')).body;
      return s.requests === 40 && target.inFlight().length === 3;
    }, '40 answered requests counted and every user waiting on a held one');
    const running = (await api(agent, 'GET', '/api/stats')).body;
    assert.deepEqual([running.running, running.ended_at, running.workers, running.active_users], [true, null, 1, 3]);
    await api(agent, 'POST', '/api/stop');

    const r = await api(agent, 'GET', '/api/stats');
    assert.equal(r.status, 200, r.text);
    const s = r.body;
    assert.equal(target.answered(), 40);
    assert.equal(s.format, 'flowrunner-stats/1');
    assert.deepEqual([s.running, s.requests, s.latency.count], [false, 40, 40]);
    assert.deepEqual([s.flows_completed, s.flows_failed, s.flows_started], [40, 0, 43], 'three flows cut by stop');
    assert.equal(s.status_classes['2xx'], 40);
    assert.equal(
      Object.values(s.errors as Record<string, number>).reduce((a, b) => a + b, 0),
      0,
      'aborts are no errors',
    );
    assert.deepEqual([s.latency.unit, s.latency.significant_digits], ['us', 3]);
    const h = decodeLatency(s.latency.hdr);
    assert.equal(h.totalCount, 40);
    assert.ok(h.minNonZeroValue >= 1 && h.maxValue <= s.elapsed_seconds * 1e6 * 1.001, 'latencies within the run');
    // The window ends at the stop: it does not grow afterwards.
    assert.ok(
      s.ended_at !== null && Date.parse(s.ended_at) - Date.parse(s.started_at) === Math.round(s.elapsed_seconds * 1000),
    );
    assert.equal((await api(agent, 'GET', '/api/stats')).body.elapsed_seconds, s.elapsed_seconds);
    assert.equal((await apiMetrics(agent)).flow_runner.total_requests, 40, '/api/metrics counts the same requests');
    // Two agents that saw the same: twice the requests, the same percentiles.
    const two = fleetTotals(mergeStats([s, s]));
    const one = fleetTotals(s);
    assert.equal(two.requests, 80);
    assert.deepEqual(two.latency_ms, one.latency_ms);
  });

  it('ramp_up_seconds: /api/start spreads the users, /api/update changes it live, bad values are 400 with their loc', async () => {
    const bad = problems(
      await api(agent, 'POST', '/api/start', {
        config: config(target, { ramp_up_seconds: -2 }),
        flowmap: flowmap('/ramp'),
      }),
    );
    assert.deepEqual(locs(bad), ['body.config.ramp_up_seconds']);
    assert.equal(bad[0]!.type, 'greater_than_equal');
    const notNumber = problems(
      await api(agent, 'POST', '/api/start', {
        config: config(target, { ramp_up_seconds: '10s' }),
        flowmap: flowmap('/ramp'),
      }),
    );
    assert.equal(notNumber[0]!.type, 'float_type');

    const t0 = performance.now();
    await start(agent, {
      config: config(target, { sim_users: 8, ramp_up_seconds: 4, min_sleep_ms: 100, max_sleep_ms: 150 }),
      flowmap: flowmap('/ramp', {
        steps: [{ id: 'r', type: 'request', url: '/ramp', headers: { 'X-User': '{{userId}}' } }],
      }),
    });
    await waitFor(() => target.on('/ramp').length >= 1, 'the first user');
    const m = await apiMetrics(agent);
    assert.equal(m.flow_runner_details.config.ramp_up_seconds, 4);
    // User i of 8 starts after i * 0.5 s: within the first second at most users 1 and 2 can have sent anything.
    const early = new Set(
      target
        .on('/ramp')
        .filter((h) => h.at - t0 < 1000)
        .map((h) => h.headers['x-user']),
    );
    assert.ok(early.size <= 2, `${early.size} users sent within the first second of a 4 s ramp of 8`);
    assert.ok(m.flow_runner.active_users < 8);

    const upd = await api(agent, 'POST', '/api/update', { ramp_up_seconds: 0.5 });
    assert.equal(upd.status, 200, upd.text);
    assert.deepEqual(upd.body.changed, ['ramp_up_seconds']);
    const badUpd = problems(await api(agent, 'POST', '/api/update', { ramp_up_seconds: 100_000 }));
    assert.deepEqual(locs(badUpd), ['body.ramp_up_seconds']);
  });

  it('accepts the display-name aliases ("Sim Users", "Override Step URL Host", ...)', async () => {
    await start(agent, {
      config: {
        'Flow Target URL': other.url,
        'Sim Users': 2,
        'Override Step URL Host': false,
        'Min Sleep MS': 5,
        'Max Sleep MS': 10,
      },
      flowmap: { name: 'absolute', steps: [{ id: 'abs', type: 'request', url: `${target.url}/absolute` }] },
    });
    // With the host override off, the step's absolute URL is used as it is: the requests reach `target`, not `other`.
    await waitFor(() => target.on('/absolute').length >= 4, 'requests to the absolute step URL');
    assert.equal(other.hits.length, 0);
    const m = await apiMetrics(agent);
    assert.equal(m.flow_runner.active_users, 2);
    assert.equal(m.flow_runner_details.config.override_step_url_host, false);
  });

  it('/api/metrics has both client shapes with numbers that move; /metrics has the FlowRunner metrics and per-step buckets', async () => {
    await start(agent, {
      config: config(target, { sim_users: 2 }),
      flowmap: {
        name: 'two steps',
        steps: [
          { id: 'first', type: 'request', url: '/m1' },
          { id: 'second', type: 'request', url: '/m2' },
        ],
      },
    });
    const m1 = await waitFor(async () => {
      const m = await apiMetrics(agent);
      return m.flow_runner.total_requests > 0 && m.flow_runner.flow_count > 0 ? m : undefined;
    }, 'requests counted');
    assert.deepEqual(Object.keys(m1).sort(), [
      'app_status',
      'container_status',
      'flow_runner',
      'flow_runner_details',
      'metrics',
      'network',
      'system',
      'timestamp',
      'traffic_control',
    ]);
    assert.deepEqual(m1.traffic_control, { enabled: false }, 'no container-control file: no traffic control');
    assert.match(m1.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.ok(Math.abs(Date.parse(m1.timestamp) - Date.now()) < 60_000);
    assert.equal(m1.app_status, 'running');
    assert.equal(m1.container_status, 'running');
    assert.deepEqual(Object.keys(m1.network).sort(), [
      'bytes_recv',
      'bytes_sent',
      'dropin',
      'dropout',
      'errin',
      'errout',
      'packets_recv',
      'packets_sent',
    ]);
    for (const v of Object.values(m1.network)) assert.ok(Number.isInteger(v) && (v as number) >= 0);
    assert.deepEqual(Object.keys(m1.system).sort(), [
      'cpu_percent',
      'memory_available_mb',
      'memory_percent',
      'memory_used_mb',
    ]);
    for (const v of Object.values(m1.system)) assert.ok(typeof v === 'number' && v >= 0);
    assert.ok(m1.system.memory_percent > 0 && m1.system.memory_percent <= 100);
    assert.ok(m1.system.memory_used_mb > 0);
    assert.deepEqual(Object.keys(m1.metrics).sort(), ['active_simulated_users', 'average_flow_duration_ms', 'rps']);
    assert.deepEqual(Object.keys(m1.flow_runner).sort(), [
      'active_users',
      'avg_flow_duration_ms',
      'flow_count',
      'rps',
      'running',
      'total_requests',
    ]);
    assert.equal(m1.flow_runner.running, true);
    assert.equal(m1.flow_runner.active_users, 2);
    assert.equal(m1.metrics.active_simulated_users, 2);
    assert.ok(m1.flow_runner.avg_flow_duration_ms > 0);
    assert.equal(m1.metrics.average_flow_duration_ms, m1.flow_runner.avg_flow_duration_ms);
    const d = m1.flow_runner_details;
    assert.deepEqual(Object.keys(d.per_step).sort(), ['first', 'second']);
    assert.ok(d.per_step.first.requests > 0);
    assert.ok(d.status_classes['2xx'] > 0);
    assert.equal(typeof d.errors.network, 'number');
    for (const k of ['p50', 'p95', 'p99']) assert.equal(typeof d.latency_ms[k], 'number');

    const m2 = await waitFor(async () => {
      const m = await apiMetrics(agent);
      return m.flow_runner.total_requests > m1.flow_runner.total_requests + 5 && m.flow_runner.rps > 0 ? m : undefined;
    }, 'total_requests to grow and rps to show');
    assert.ok(m2.metrics.rps > 0 && m2.metrics.rps === m2.flow_runner.rps);
    assert.ok(m2.flow_runner.flow_count >= m1.flow_runner.flow_count);

    const { text, samples } = await scrape(agent);
    for (const [name, type] of [
      ['app_status', 'gauge'],
      ['flow_runner_rps', 'gauge'],
      ['flow_runner_active_users', 'gauge'],
      ['flow_runner_requests_total', 'counter'],
      ['flow_runner_flows_total', 'counter'],
      ['flow_runner_request_duration_seconds', 'histogram'],
      ['container_cpu_percent', 'gauge'],
      ['container_memory_percent', 'gauge'],
    ])
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
    assert.match(text, /^# HELP app_status Application status \(initializing=0, running=1, stopped=2, error=3\)\.$/m);
    assert.equal(value(samples, 'app_status'), 1);
    assert.equal(value(samples, 'flow_runner_active_users'), 2);
    assert.ok(value(samples, 'flow_runner_requests_total')! >= m2.flow_runner.total_requests);
    assert.ok(value(samples, 'flow_runner_flows_total')! > 0);
    assert.ok(value(samples, 'container_memory_percent')! > 0);
    assert.ok(value(samples, 'container_cpu_percent')! >= 0);
    assert.match(text, /^flow_runner_request_duration_seconds_bucket\{step_id="first",le="0\.005"\} \d+$/m);
    for (const step of ['first', 'second']) {
      const count = value(samples, 'flow_runner_request_duration_seconds_count', { step_id: step })!;
      assert.ok(count > 0, `${step} counted`);
      assert.equal(value(samples, 'flow_runner_request_duration_seconds_bucket', { step_id: step, le: '+Inf' }), count);
      assert.ok(value(samples, 'flow_runner_request_duration_seconds_sum', { step_id: step })! > 0);
      const buckets = samples
        .filter((s) => s.name === 'flow_runner_request_duration_seconds_bucket' && s.labels.step_id === step)
        .map((s) => s.value);
      assert.deepEqual(
        buckets,
        [...buckets].sort((a, b) => a - b),
        'buckets are cumulative',
      );
    }
    assert.deepEqual(
      [
        ...new Set(
          samples.filter((s) => s.name.startsWith('flow_runner_request_duration')).map((s) => s.labels.step_id),
        ),
      ].sort(),
      ['first', 'second'],
      'step ids of the flowmap only',
    );
  });

  it("/metrics counts the flows' failed requests by kind in flow_runner_errors_total, as /api/metrics does", async () => {
    const closed = await freePort();
    await start(agent, {
      config: config(target, { sim_users: 1, flow_target_url: `http://127.0.0.1:${closed}` }),
      flowmap: { name: 'refused', steps: [{ id: 'nowhere', type: 'request', url: '/x', onFailure: 'continue' }] },
    });
    const m = await waitFor(async () => {
      const a = await apiMetrics(agent);
      return a.flow_runner_details?.errors.network > 2 ? a : undefined;
    }, 'refused connections counted as network errors');
    const { samples } = await scrape(agent);
    const kinds = samples.filter((x) => x.name === 'flow_runner_errors_total').map((x) => x.labels.kind);
    assert.deepEqual(kinds.sort(), [
      'extraction',
      'http_3xx',
      'http_4xx',
      'http_5xx',
      'invalid_request',
      'network',
      'timeout',
    ]);
    assert.ok(value(samples, 'flow_runner_errors_total', { kind: 'network' })! >= m.flow_runner_details.errors.network);
    assert.equal(value(samples, 'flow_runner_errors_total', { kind: 'http_5xx' }), 0);
    await api(agent, 'POST', '/api/stop');
  });
});

describe('FlowRunner control API: app_status lifecycle, body limit and shutdown', () => {
  let agent: AgentProcess | undefined;
  let target: Target;

  before(async () => {
    target = await new Target().listen();
  });
  afterEach(async () => {
    if (agent) {
      await agent.request('POST', '/api/stop').catch(() => {});
      await agent.stop();
      agent.cleanup();
      agent = undefined;
    }
    target.reset();
  });
  after(async () => {
    await target.close();
  });

  const statuses = async (a: AgentProcess) => [await health(a), value((await scrape(a)).samples, 'app_status')];

  it('app_status follows initializing -> running -> stopped -> running', async () => {
    agent = await startAgent({ env: { BODY_LIMIT_BYTES: '4096' } });
    assert.deepEqual(await statuses(agent), ['initializing', 0]);
    await start(agent, { config: config(target, { sim_users: 1 }), flowmap: flowmap('/cycle') });
    assert.deepEqual(await statuses(agent), ['running', 1]);
    assert.deepEqual((await api(agent, 'POST', '/api/stop')).body, { message: 'Flow runner forcibly stopped.' });
    assert.deepEqual(await statuses(agent), ['stopped', 2]);
    await start(agent, { config: config(target, { sim_users: 1 }), flowmap: flowmap('/again') });
    assert.deepEqual(await statuses(agent), ['running', 1]);

    // A body over BODY_LIMIT_BYTES: 413 in FastAPI's shape, the running flow untouched.
    const big = await api(agent, 'POST', '/api/start', {
      config: config(target),
      flowmap: flowmap('/big', { description: 'x'.repeat(5000) }),
    });
    assert.equal(big.status, 413);
    assert.match(big.body.detail, /larger than 4096 bytes/);
    assert.equal(await health(agent), 'running');
  });

  it('agent shutdown (SIGTERM) stops the flow at once and exits', async () => {
    agent = await startAgent();
    target.delayMs = 200;
    await start(agent, {
      config: config(target, { sim_users: 2, min_sleep_ms: 0, max_sleep_ms: 0 }),
      flowmap: flowmap('/shutdown'),
    });
    await waitFor(() => target.inFlight().length === 2, 'requests in flight');
    const t0 = performance.now();
    assert.equal(await agent.stop('SIGTERM'), 0);
    const exitedAt = performance.now();
    assert.ok(exitedAt - t0 < 5000, `exited after ${Math.round(exitedAt - t0)} ms`);
    assert.deepEqual(arrivedAfter(target.hits, exitedAt), []);
    assert.ok(
      agent.logLines().some((l) => l.component === 'flowrunner' && /shutting down/.test(String(l.msg))),
      'the flow was stopped by the shutdown',
    );
    await waitFor(() => target.inFlight().length === 0, 'in-flight requests closed');
  });

  it('agent shutdown also stops a flowrunner.run step at once: load is not work to finish in the grace period', async () => {
    agent = await startAgent();
    const r = await agent.request('POST', '/execute', {
      wpk_content: {
        apiVersion: 'wpk/v1',
        kind: 'Workflow',
        metadata: { name: 'long-traffic', version: '1.0.0' },
        spec: {
          handlers: [
            {
              name: 'traffic',
              adapter: 'flowrunner',
              action: 'run',
              with: {
                config: config(target, { sim_users: 2, min_sleep_ms: 5, max_sleep_ms: 10 }),
                flowmap: flowmap('/run-step'),
                durationSeconds: 600,
              },
            },
          ],
        },
      },
    });
    assert.equal(r.status, 202, r.text);
    await waitFor(() => target.hits.length >= 5, 'traffic from the run step');
    const t0 = performance.now();
    assert.equal(await agent.stop('SIGTERM'), 0);
    const exitedAt = performance.now();
    assert.ok(exitedAt - t0 < 5000, `exited after ${Math.round(exitedAt - t0)} ms, not after the grace period`);
    assert.deepEqual(arrivedAfter(target.hits, exitedAt), []);
  });
});

// --- FlowControl on its own ------------------------------------------------------------------------

describe('FlowRunner control API: FlowControl', () => {
  let target: Target;
  let control: FlowControl;
  const lines: Array<[string, string]> = [];

  before(async () => {
    target = await new Target().listen();
  });
  beforeEach(() => {
    lines.length = 0;
    control = new FlowControl({ log: (level, message) => lines.push([level, message]) });
  });
  afterEach(async () => {
    await control.shutdown();
    target.reset();
  });
  after(async () => {
    await target.close();
  });

  const parsed = (body: unknown) => {
    const r = parseStartRequest(body);
    assert.ok(r.ok, JSON.stringify(r));
    return r;
  };

  it('is error when every user of the flow fails unexpectedly, and a new start recovers', async () => {
    const good = parsed({ config: config(target, { sim_users: 1 }), flowmap: flowmap('/fine') });
    // A flowmap that breaks the engine's invariants (the parser never gives a request step without a URL): each user throws.
    const broken = { ...good.flowmap, steps: [{ ...good.flowmap.steps[0]!, url: undefined as unknown as string }] };
    await control.start({ ...good.config, sim_users: 2 }, broken);
    await waitFor(() => control.appStatus === 'error', 'app_status error');
    assert.equal(control.live().active_users, 0);
    assert.ok(
      lines.some(([level, m]) => level === 'error' && /all users failed/.test(m)),
      JSON.stringify(lines),
    );
    assert.equal(await control.stop(), 'No running flow runner to stop (status=error).');
    const upd = await control.update({ sim_users: 2 });
    assert.ok(!upd.ok && 'notRunning' in upd && upd.notRunning === 'error');
    await control.start(good.config, good.flowmap);
    assert.equal(control.appStatus, 'running');
    await waitFor(() => target.on('/fine').length > 0, 'requests of the new flow');
  });

  it('takes start and stop in the order asked: a stop right after a start stops that flow', async () => {
    const { config: c, flowmap: f } = parsed({ config: config(target, { sim_users: 2 }), flowmap: flowmap('/order') });
    const [, message] = await Promise.all([control.start(c, f), control.stop()]);
    assert.equal(message, 'Flow runner forcibly stopped.');
    assert.equal(control.appStatus, 'stopped');
    assert.equal(await control.stop(), 'Flow runner is already stopped.');
  });

  it('refuses to start once shut down', async () => {
    const { config: c, flowmap: f } = parsed({ config: config(target, { sim_users: 1 }), flowmap: flowmap('/late') });
    await control.start(c, f);
    await control.shutdown();
    assert.equal(control.appStatus, 'stopped');
    await assert.rejects(control.start(c, f), FlowControlClosed);
  });
});

// --- container numbers ------------------------------------------------------------------------------

describe('FlowRunner control API: container numbers (SystemSampler)', () => {
  let root: string;
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  const MEMINFO = 'MemTotal:       8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    6000000 kB\n';

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'flowrunner-system-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const sampler = (now?: () => number, cpus?: () => number) =>
    new SystemSampler({ proc: join(root, 'proc'), cgroup: join(root, 'cgroup') }, now, cpus);

  it('gives zeros, never an error, when nothing can be read', () => {
    const s = sampler();
    assert.deepEqual(s.system(), { cpu_percent: 0, memory_percent: 0, memory_available_mb: 0, memory_used_mb: 0 });
    assert.deepEqual(s.network(), {
      bytes_sent: 0,
      bytes_recv: 0,
      packets_sent: 0,
      packets_recv: 0,
      errin: 0,
      errout: 0,
      dropin: 0,
      dropout: 0,
    });
  });

  it('sums /proc/net/dev over every interface but lo, with psutil names', () => {
    write(
      'proc/net/dev',
      'Inter-|   Receive                                                |  Transmit\n' +
        ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
        '    lo: 999 9 9 9 0 0 0 0 999 9 9 9 0 0 0 0\n' +
        '  eth0: 1000 10 1 2 0 0 0 0 500 5 3 4 0 0 0 0\n' +
        '  eth1: 24 2 0 1 0 0 0 0 76 3 0 0 0 0 0 0\n',
    );
    assert.deepEqual(sampler().network(), {
      bytes_recv: 1024,
      packets_recv: 12,
      errin: 1,
      dropin: 3,
      bytes_sent: 576,
      packets_sent: 8,
      errout: 3,
      dropout: 4,
    });
  });

  it('takes memory from the cgroup v2 limit when there is one, else from /proc/meminfo', () => {
    write('proc/meminfo', MEMINFO);
    write('proc/self/cgroup', '0::/\n');
    write('cgroup/memory.max', 'max\n');
    assert.deepEqual(sampler().memory(), { memory_percent: 25, memory_available_mb: 5859.38, memory_used_mb: 1953.13 });
    write('cgroup/memory.max', `${512 * 1024 * 1024}\n`);
    write('cgroup/memory.current', `${200 * 1024 * 1024}\n`);
    write('cgroup/memory.stat', `anon 1\ninactive_file ${72 * 1024 * 1024}\n`);
    assert.deepEqual(sampler().memory(), { memory_percent: 25, memory_available_mb: 384, memory_used_mb: 128 });
  });

  it('finds its own cgroup (v1 memory controller) and ignores the "unlimited" v1 value', () => {
    write('proc/meminfo', MEMINFO);
    write('proc/self/cgroup', '4:memory:/pods/abc\n0::/\n');
    write('cgroup/memory/memory.limit_in_bytes', '9223372036854771712\n');
    write('cgroup/memory/pods/abc/memory.limit_in_bytes', `${1024 * 1024 * 1024}\n`);
    write('cgroup/memory/pods/abc/memory.usage_in_bytes', `${300 * 1024 * 1024}\n`);
    write('cgroup/memory/pods/abc/memory.stat', `inactive_file 1\ntotal_inactive_file ${44 * 1024 * 1024}\n`);
    assert.deepEqual(sampler().memory(), { memory_percent: 25, memory_available_mb: 768, memory_used_mb: 256 });
  });

  it("container CPU: the cgroup v2 group's usage against its cpu.max quota, or against every CPU without one", () => {
    let now = 1000;
    write('proc/self/cgroup', '0::/pods/x\n');
    write('cgroup/pods/x/cpu.max', '50000 100000\n'); // half a CPU
    write('cgroup/pods/x/cpu.stat', 'usage_usec 1000000\nuser_usec 1\n');
    const s = sampler(
      () => now,
      () => 4,
    );
    assert.equal(s.containerCpuPercent(), 0, 'no window yet');
    now += 1000;
    write('cgroup/pods/x/cpu.stat', 'usage_usec 1250000\nuser_usec 1\n');
    assert.equal(s.containerCpuPercent(), 50); // 250 ms of the 500 ms it may use
    now += 1000;
    write('cgroup/pods/x/cpu.max', 'max 100000\n');
    write('cgroup/pods/x/cpu.stat', 'usage_usec 2250000\n');
    assert.equal(s.containerCpuPercent(), 25); // 1 s of 4 CPUs for 1 s
  });

  it('container CPU: cgroup v1 cpuacct.usage against cpu.cfs_quota_us, and the host figure outside any cgroup', () => {
    let now = 1000;
    write('proc/self/cgroup', '3:cpu,cpuacct:/pods/y\n0::/\n');
    write('cgroup/cpu,cpuacct/pods/y/cpuacct.usage', '5000000000\n');
    write('cgroup/cpu,cpuacct/pods/y/cpu.cfs_quota_us', '200000\n');
    write('cgroup/cpu,cpuacct/pods/y/cpu.cfs_period_us', '100000\n');
    const s = sampler(() => now);
    s.containerCpuPercent();
    now += 1000;
    write('cgroup/cpu,cpuacct/pods/y/cpuacct.usage', '6000000000\n');
    assert.equal(s.containerCpuPercent(), 50); // 1 s of the 2 CPUs it may use for 1 s

    rmSync(join(root, 'cgroup'), { recursive: true });
    write('proc/stat', 'cpu  100 0 100 700 100 0 0 0 0 0\n');
    assert.equal(sampler().containerCpuPercent(), 20, 'no cgroup: the host figure');
  });

  it('computes CPU percent from /proc/stat deltas (since boot on the first reading)', () => {
    let now = 1000;
    const s = sampler(() => now);
    write('proc/stat', 'cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n');
    assert.equal(s.cpuPercent(), 20); // busy 200 of 1000 since boot
    now += 1000;
    write('proc/stat', 'cpu  400 0 200 800 100 0 0 0 0 0\ncpu0 1 2 3 4\n');
    assert.equal(s.cpuPercent(), 80); // busy 400 of the last 500
    now += 10;
    write('proc/stat', 'cpu  400 0 200 900 100 0 0 0 0 0\n');
    assert.equal(s.cpuPercent(), 80, 'a reading right after the last one repeats it');
  });
});

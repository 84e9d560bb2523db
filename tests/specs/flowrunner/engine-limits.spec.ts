/**
 * What keeps a run from hurting the agent: flows with no I/O still yield the
 * event loop, limits on users, pauses, steps, nesting and headers, bounded
 * connections and bodies per user, and live updates that take effect at once.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { maxUsers, MAX_MS, parseConfig, parseFlowmap, usersFor } from '../../../adapters/flowrunner/engine/index.js';
import { MAX_ORIGINS_PER_USER } from '../../../adapters/flowrunner/engine/client.js';
import { MAX_STEPS } from '../../../adapters/flowrunner/engine/flowmap.js';
import { waitFor } from '../support/wait.js';
import { req, startRunner, Target } from './target.js';

/** A server whose every answer is endless: it keeps writing until the client goes away. */
async function endlessServer(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((_q, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const pump = () => {
      while (res.write(chunk)) if (res.destroyed) return;
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('FlowRunner engine: limits and fairness', function () {
  this.timeout(20_000);
  let target: Target;
  beforeEach(async () => {
    target = await Target.start();
  });
  afterEach(async () => {
    await target.close();
  });

  it('a flow that does no I/O and has no pauses still lets timers and the API run', async () => {
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 3, override_step_url_host: false },
      {
        steps: [
          {
            id: 'c',
            type: 'condition',
            conditionData: { variable: 'x', operator: 'exists' },
            then: [req('never', '/never')],
            else: [],
          },
          req('bad', 'http://127.0.0.1:99999/x', { onFailure: 'continue', retries: { count: 0, delayMs: 0 } }),
        ],
      },
    );
    // A timer firing at all proves the loop is not starved; the runner then stops as a user would ask.
    const fired = await new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 50));
    assert.equal(fired, true);
    const s = runner.snapshot();
    assert.ok(s.flows_failed + s.flow_count > 10, 'the flow kept running meanwhile');
    assert.equal(s.errors.invalid_request > 0, true);
    assert.equal(s.total_requests, 0, 'a URL that cannot be built is not a request');
    await runner.stop();
    assert.equal(target.requests.length, 0);
  });

  it('refuses more users than the open-file limit allows, pauses beyond setTimeout, too many steps, deep values and bad headers', () => {
    assert.equal(usersFor(1024), 768);
    assert.equal(usersFor(undefined), 100_000);
    const c = parseConfig({
      flow_target_url: target.url,
      sim_users: maxUsers() + 1,
      min_sleep_ms: MAX_MS + 1,
      max_sleep_ms: MAX_MS + 2,
      request_timeout_ms: 3e9,
    });
    assert.equal(c.ok, false);
    const fields = (c as { problems: Array<{ loc: unknown[]; msg: string }> }).problems.map((p) => p.loc.at(-1));
    assert.deepEqual(fields.sort(), ['max_sleep_ms', 'min_sleep_ms', 'request_timeout_ms', 'sim_users']);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const steps = Array.from({ length: MAX_STEPS + 1 }, (_, i) => req(`s${i}`, '/'));
    const f = parseFlowmap({ steps, staticVars: { deep }, headers: { 'Bad Header': 'x', 'X-Ok': 'a\r\nInjected: 1' } });
    assert.equal(f.ok, false);
    const msgs = (f as { problems: Array<{ loc: unknown[]; msg: string }> }).problems.map(
      (p) => `${p.loc.slice(2).join('.')}: ${p.msg}`,
    );
    assert.ok(
      msgs.some((m) => /^steps: .*at most 500 steps/.test(m)),
      msgs.join('\n'),
    );
    assert.ok(msgs.some((m) => /^staticVars: .*nested more than 32/.test(m)));
    assert.ok(msgs.some((m) => /^headers.Bad Header: .*header name/.test(m)));
    assert.ok(msgs.some((m) => /^headers.X-Ok: .*CR, LF or NUL/.test(m)));
    const body = parseFlowmap({ steps: [{ ...req('a', '/'), method: 'POST', body: { deep } }] });
    assert.equal(body.ok, false);
    const regex = parseFlowmap({
      steps: [
        {
          id: 'c',
          type: 'condition',
          conditionData: { variable: 'x', operator: 'matches_regex', value: '([unclosed' },
          then: [],
        },
        req('x'.repeat(129), '/'),
      ],
    });
    assert.equal(regex.ok, false);
    const regexMsgs = (regex as { problems: Array<{ loc: unknown[]; msg: string }> }).problems.map(
      (p) => `${p.loc.slice(2).join('.')}: ${p.msg}`,
    );
    assert.ok(
      regexMsgs.some((m) => /^steps.0.conditionData.value: .*invalid regular expression/.test(m)),
      regexMsgs.join('\n'),
    );
    assert.ok(regexMsgs.some((m) => /^steps.1.id: .*128 printable/.test(m)));
  });

  it(`keeps at most ${MAX_ORIGINS_PER_USER} connections per user when a flow talks to many hosts`, async () => {
    // Many origins on one server: 127.0.0.2, .3, … all reach it on Linux loopback.
    const server = http.createServer((_q, r) => r.end('ok'));
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = (server.address() as AddressInfo).port;
    const sockets = new Set<unknown>();
    let mostOpen = 0;
    server.on('connection', (s) => {
      sockets.add(s);
      mostOpen = Math.max(mostOpen, sockets.size);
      s.on('close', () => sockets.delete(s));
    });
    const { runner } = startRunner(
      { flow_target_url: `http://127.0.0.1:${port}`, override_step_url_host: false },
      { steps: [req('a', `http://127.0.0.{{flowInstance}}:${port}/`)] },
      { iterations: 20 },
    );
    await runner.done;
    assert.equal(runner.snapshot().total_requests, 20);
    server.close();
    server.closeAllConnections();
    assert.equal(runner.snapshot().errors_total, 0);
    // The least recently used origin's connection closes as a new one opens (the close may land a moment later).
    assert.ok(mostOpen <= MAX_ORIGINS_PER_USER + 1, `${mostOpen} connections open at once for 20 origins`);
  });

  it('stops reading an answer past 1 MiB and keeps the first MiB', async () => {
    const { server, port } = await endlessServer();
    const { runner } = startRunner(
      { flow_target_url: `http://127.0.0.1:${port}` },
      {
        steps: [
          req('big', '/'),
          { id: 'echo', type: 'request', method: 'POST', url: '/len', body: { n: '{{response_big_body}}' } },
        ],
      },
      { iterations: 1, durationMs: 10_000 },
    );
    await runner.done;
    const s = runner.snapshot();
    assert.equal(s.errors_total, 0, JSON.stringify(s.errors));
    assert.equal(s.per_step.big!.requests, 1);
    server.closeAllConnections();
    server.close();
  });

  it('stops reading an answer past 1 MiB also when nothing reads it', async () => {
    const { server, port } = await endlessServer();
    const { runner } = startRunner(
      { flow_target_url: `http://127.0.0.1:${port}` },
      { steps: [req('big', '/')] },
      { iterations: 1, durationMs: 10_000 },
    );
    await runner.done;
    const s = runner.snapshot();
    assert.equal(s.errors_total, 0, JSON.stringify(s.errors));
    assert.equal(s.per_step.big!.requests, 1);
    server.closeAllConnections();
    server.close();
  });

  it('live updates reach users in a long pause at once: fewer users, a shorter cycle delay', async () => {
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 2, flow_cycle_delay_ms: 60_000 },
      { steps: [req('a', '/a')] },
    );
    await waitFor(() => target.hits('/a').length === 2, 'both users did their first iteration');
    const c = parseConfig({
      flow_target_url: target.url,
      sim_users: 1,
      flow_cycle_delay_ms: 20,
      min_sleep_ms: 0,
      max_sleep_ms: 0,
    });
    assert.ok(c.ok);
    if (c.ok) runner.update(c.config);
    await waitFor(() => target.hits('/a').length >= 6, 'the shorter delay took effect', 3000);
    await waitFor(() => runner.snapshot().active_users === 1, 'the removed user left', 3000);
    assert.equal(runner.snapshot().flows_failed, 0, 'a user removed by an update does not count a failed flow');
    await runner.stop();
  });
});

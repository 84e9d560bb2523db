/**
 * Users and pacing: sim_users concurrent users each repeating the flow until stopped, random pauses
 * between steps (not before the first) and between iterations or a fixed flow_cycle_delay_ms,
 * immediate stop (in-flight requests aborted, nothing after stop() resolves), live update() of
 * users, run limits, and the run's stats.
 */
import assert from 'node:assert/strict';
import { FlowRunner } from '../../../adapters/flowrunner/engine/index.js';
import { makeConfig, makeFlowmap, quietPeriod, req, runFlow, startRunner, useTarget } from './target.js';
import { waitFor } from '../support/wait.js';

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);
const user = { 'X-User': '{{userId}}' };

describe('FlowRunner engine: simulated users', () => {
  const target = useTarget();

  it('runs sim_users users at once: the target sees that many concurrent requests, no more', async () => {
    target.on('/hold', { hold: true });
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 6 },
      { steps: [req('hold', '/hold', { headers: user })] },
    );
    try {
      await waitFor(() => target.inFlight === 6, '6 requests in flight');
      assert.equal(runner.snapshot().active_users, 6);
      assert.equal(new Set(target.requests.map((r) => r.headers['x-user'])).size, 6, 'six different users');
      await quietPeriod(150);
      assert.equal(target.maxInFlight, 6);
      assert.equal(target.requests.length, 6, 'a user has one request in flight at a time');
    } finally {
      await runner.stop();
    }
  });

  it('each user repeats the flow until stopped', async () => {
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 3 },
      { steps: [req('a', '/a', { headers: user }), req('b', '/b', { headers: user })] },
    );
    try {
      await waitFor(() => {
        const perUser = new Map<string, number>();
        for (const r of target.hits('/b'))
          perUser.set(String(r.headers['x-user']), (perUser.get(String(r.headers['x-user'])) ?? 0) + 1);
        return perUser.size === 3 && [...perUser.values()].every((n) => n >= 5);
      }, 'every user completing the flow 5 times');
      // The target counts a /b when it arrives, the runner a flow once the answer to /b is read.
      await waitFor(() => runner.snapshot().flow_count >= 15, 'the runner counting the 15 flows');
      assert.equal(runner.running, true);
    } finally {
      await runner.stop();
    }
  });

  it('stop is immediate: requests in flight are aborted, and nothing reaches the target after stop() resolves', async () => {
    target.on('/hold', { hold: true });
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 4 }, { steps: [req('hold', '/hold')] });
    await waitFor(() => target.inFlight === 4, '4 requests in flight');
    const t0 = performance.now();
    await runner.stop();
    assert.ok(performance.now() - t0 < 500, 'stop() did not wait for the answers');
    await runner.done;
    await waitFor(
      () => target.requests.every((r) => r.closedEarly),
      'the target to see every connection close before its answer',
      2000,
    );
    assert.equal(target.requests.filter((r) => r.answered).length, 0);
    const count = target.requests.length;
    target.release();
    await quietPeriod(300);
    assert.equal(target.requests.length, count, 'a request arrived after stop() resolved');
    const s = runner.snapshot();
    assert.equal(s.active_users, 0);
    assert.equal(s.running, false);
  });

  it('nothing reaches the target after stop() resolves, under full load', async () => {
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 20 },
      { steps: [req('a', '/a'), req('b', '/b', { method: 'POST', body: { n: '##VAR:unquoted:flowInstance##' } })] },
    );
    await waitFor(() => target.requests.length >= 400, '400 requests');
    await runner.stop();
    const count = target.requests.length;
    await quietPeriod(300);
    assert.equal(target.requests.length, count);
    await runner.done;
  });

  it('stop does not wait for a pause between steps', async () => {
    const { runner } = startRunner(
      { flow_target_url: target.url, min_sleep_ms: 10_000, max_sleep_ms: 10_000 },
      { steps: [req('a', '/a'), req('b', '/b')] },
    );
    await waitFor(() => target.hits('/a').length === 1, 'the first step');
    const t0 = performance.now();
    await runner.stop();
    await runner.done;
    assert.ok(performance.now() - t0 < 500);
    await quietPeriod(200);
    assert.equal(target.hits('/b').length, 0);
  });

  it('stop() before start() and a second stop() resolve; update() after stop starts nobody', async () => {
    const never = new FlowRunner(makeConfig({ flow_target_url: target.url }), makeFlowmap({ steps: [req('a', '/a')] }));
    await never.stop();
    await never.done;
    const { runner } = startRunner({ flow_target_url: target.url, sim_users: 2 }, { steps: [req('a', '/a')] });
    await waitFor(() => target.requests.length >= 10, '10 requests');
    await Promise.all([runner.stop(), runner.stop()]);
    await runner.stop();
    runner.update(makeConfig({ flow_target_url: target.url, sim_users: 5 }));
    const count = target.requests.length;
    await quietPeriod(200);
    assert.equal(target.requests.length, count);
    assert.equal(runner.snapshot().active_users, 0);
    assert.equal(never.snapshot().total_requests, 0);
  });

  it('update() raises and lowers the number of users live', async () => {
    target.on('/slow', { delayMs: 60 });
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 2 },
      { steps: [req('slow', '/slow', { headers: user })] },
    );
    try {
      await waitFor(() => target.requests.some((r) => r.concurrent === 2), '2 concurrent users');
      runner.update(makeConfig({ flow_target_url: target.url, sim_users: 5 }));
      await waitFor(() => target.requests.some((r) => r.concurrent === 5), '5 concurrent users after raising');
      assert.equal(runner.snapshot().active_users, 5);
      assert.equal(runner.snapshot().sim_users, 5);

      runner.update(makeConfig({ flow_target_url: target.url, sim_users: 1 }));
      await waitFor(() => runner.snapshot().active_users === 1, 'one active user after lowering');
      const from = target.requests.length;
      await waitFor(() => target.requests.length >= from + 5, '5 more requests');
      const later = target.requests.slice(from);
      assert.deepEqual(
        later.filter((r) => r.concurrent !== 1).map((r) => r.concurrent),
        [],
        'one request at a time after lowering to 1',
      );
      assert.equal(new Set(later.map((r) => r.headers['x-user'])).size, 1);
      assert.equal(runner.running, true);
    } finally {
      await runner.stop();
    }
  });

  it('limits: iterations per user end the run; done resolves', async () => {
    const { runner } = await runFlow(
      { flow_target_url: target.url, sim_users: 3 },
      { steps: [req('a', '/a', { headers: user })] },
      4,
    );
    assert.equal(target.requests.length, 12);
    const perUser = new Map<string, number>();
    for (const r of target.requests)
      perUser.set(String(r.headers['x-user']), (perUser.get(String(r.headers['x-user'])) ?? 0) + 1);
    assert.deepEqual([...perUser.values()], [4, 4, 4], 'each of the 3 users ran 4 iterations');
    const s = runner.snapshot();
    assert.equal(s.flow_count, 12);
    assert.equal(s.active_users, 0);
    assert.equal(s.running, false);
  });

  it('limits: durationMs stops the run', async () => {
    const t0 = performance.now();
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 2 },
      { steps: [req('a', '/a')] },
      { durationMs: 300 },
    );
    await runner.done;
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 290 && elapsed < 1500, `ran ${elapsed.toFixed(0)} ms`);
    assert.ok(target.requests.length > 0);
    const count = target.requests.length;
    await quietPeriod(150);
    assert.equal(target.requests.length, count);
  });

  it('counts requests, flows, status classes, latency and rate in the snapshot', async () => {
    target.on('/bad', { status: 500 });
    target.on('/gone', { status: 410 });
    target.on('/slow', { delayMs: 20 });
    const { runner } = startRunner(
      { flow_target_url: target.url, sim_users: 2 },
      {
        steps: [
          req('slow', '/slow'),
          req('gone', '/gone', { onFailure: 'continue' }),
          req('bad', '/bad', { retries: { count: 0, delayMs: 0 }, onFailure: 'continue' }),
        ],
      },
    );
    try {
      await waitFor(() => runner.snapshot().flow_count >= 10, '10 flows');
      const live = runner.snapshot();
      assert.ok(live.rps > 0, 'rps while running');
      assert.equal(live.active_users, 2);
    } finally {
      await runner.stop();
    }
    const s = runner.snapshot();
    assert.equal(s.total_requests, s.per_step.slow!.requests + s.per_step.gone!.requests + s.per_step.bad!.requests);
    assert.equal(s.status_classes['2xx'], s.per_step.slow!.requests);
    assert.equal(s.status_classes['4xx'], s.per_step.gone!.requests);
    assert.equal(s.status_classes['5xx'], s.per_step.bad!.requests);
    assert.equal(s.errors.http_4xx, s.per_step.gone!.requests);
    assert.equal(s.errors.http_5xx, s.per_step.bad!.requests);
    assert.ok(s.per_step.slow!.p50_ms >= 15, `p50 of a 20 ms step: ${s.per_step.slow!.p50_ms}`);
    assert.ok(s.p50_ms > 0 && s.p95_ms >= s.p50_ms && s.p99_ms >= s.p95_ms && s.max_ms >= s.p99_ms, JSON.stringify(s));
    // Every request that arrived is counted, except the (at most one per user) in flight when stop() aborted it.
    assert.ok(
      s.total_requests <= target.requests.length && s.total_requests >= target.requests.length - 2,
      `${s.total_requests} counted, ${target.requests.length} arrived`,
    );
  });
});

describe('FlowRunner engine: pacing', () => {
  const target = useTarget();

  it('pauses min_sleep_ms..max_sleep_ms between steps and between iterations, not before the first step', async () => {
    const t0 = performance.now();
    await runFlow(
      { flow_target_url: target.url, min_sleep_ms: 150, max_sleep_ms: 300 },
      { steps: [req('a', '/a'), req('b', '/b'), req('c', '/c')] },
      2,
    );
    const times = target.requests.map((r) => r.at);
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/a', '/b', '/c', '/a', '/b', '/c'],
    );
    assert.ok(times[0]! - t0 < 120, `first request after ${(times[0]! - t0).toFixed(0)} ms`);
    const g = gaps(times);
    for (const x of g)
      assert.ok(
        x >= 140 && x <= 450,
        `gap ${x.toFixed(0)} ms outside 150..300 (+ tolerance): ${g.map((y) => y.toFixed(0)).join(', ')}`,
      );
    assert.ok(Math.max(...g) - Math.min(...g) > 10, `pauses are random: ${g.map((y) => y.toFixed(0)).join(', ')}`);
  });

  it('flow_cycle_delay_ms is a fixed pause between iterations, instead of the random one', async () => {
    await runFlow(
      { flow_target_url: target.url, min_sleep_ms: 200, max_sleep_ms: 200, flow_cycle_delay_ms: 550 },
      { steps: [req('a', '/a'), req('b', '/b')] },
      3,
    );
    const times = target.requests.map((r) => r.at);
    assert.equal(times.length, 6);
    const g = gaps(times);
    const between = [g[1]!, g[3]!];
    const within = [g[0]!, g[2]!, g[4]!];
    for (const x of within) assert.ok(x >= 190 && x <= 400, `step gap ${x.toFixed(0)} ms, expected ~200`);
    for (const x of between)
      assert.ok(x >= 540 && x <= 720, `iteration gap ${x.toFixed(0)} ms, expected ~550 (not 550 + 200)`);
  });

  it('no pauses with min_sleep_ms = max_sleep_ms = 0', async () => {
    const t0 = performance.now();
    await runFlow({ flow_target_url: target.url }, { steps: [req('a', '/a'), req('b', '/b')] }, 20);
    assert.equal(target.requests.length, 40);
    assert.ok(performance.now() - t0 < 1500);
  });
});

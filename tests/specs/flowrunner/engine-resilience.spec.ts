/**
 * Resilience: connection errors and 5xx get up to 3 attempts with exponential backoff from 500 ms
 * (measured at the target); a step's `retries` retries any non-2xx or network error; 4xx without
 * step retries is not retried; a stop is never retried; timeouts are their own error kind.
 */
import assert from 'node:assert/strict';
import { closedPort, req, runFlow, startRunner, useTarget, quietPeriod } from './target.js';
import { waitFor } from '../support/wait.js';

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

function assertBackoff(times: number[], what: string): void {
  assert.equal(times.length, 3, `${what}: ${times.length} attempts`);
  const [first, second] = gaps(times) as [number, number];
  assert.ok(first >= 450 && first <= 900, `${what}: first retry after ${first.toFixed(0)} ms, expected ~500`);
  assert.ok(second >= 950 && second <= 1600, `${what}: second retry after ${second.toFixed(0)} ms, expected ~1000`);
}

describe('FlowRunner engine: retries', () => {
  const target = useTarget();

  it('retries 5xx and connection errors up to 3 attempts, ~500 ms then ~1000 ms apart', async () => {
    target.on('/always-503', { status: 503 });
    target.on('/drop', { drop: true });
    target.on('/twice-502', (_r, n) => (n <= 2 ? { status: 502 } : { json: { ok: 'finally' } }));
    const refused = await closedPort();
    const t0 = performance.now();
    const [always, dropped, twice, down] = await Promise.all([
      runFlow({ flow_target_url: target.url }, { steps: [req('a', '/always-503'), req('never', '/never')] }),
      runFlow({ flow_target_url: target.url }, { steps: [req('d', '/drop')] }),
      runFlow(
        { flow_target_url: target.url },
        { steps: [req('t', '/twice-502', { extract: { ok: 'body.ok' } }), req('after', '/after?ok={{ok}}')] },
      ),
      runFlow({ flow_target_url: `http://127.0.0.1:${refused}` }, { steps: [req('r', '/refused')] }),
    ]);
    const elapsed = performance.now() - t0;

    assertBackoff(
      target.hits('/always-503').map((r) => r.at),
      '503',
    );
    assert.equal(target.hits('/never').length, 0);
    assert.equal(always.runner.snapshot().flows_failed, 1);
    assert.equal(always.runner.snapshot().per_step.a!.requests, 3);
    assert.equal(always.runner.snapshot().errors.http_5xx, 3, 'every failed request counts, retries included');
    assert.equal(always.runner.snapshot().per_step.a!.errors, 3);

    assertBackoff(
      target.hits('/drop').map((r) => r.at),
      'dropped connection',
    );
    assert.equal(dropped.runner.snapshot().errors.network, 3);

    assertBackoff(
      target.hits('/twice-502').map((r) => r.at),
      '502, 502, 200',
    );
    assert.deepEqual(
      target.hits('/after').map((r) => r.url),
      ['/after?ok=finally'],
    );
    assert.equal(twice.runner.snapshot().flows_failed, 0);
    assert.equal(twice.runner.snapshot().flow_count, 1);

    // Refused connections never reach a target: count the attempts in the stats and the time taken.
    assert.equal(down.runner.snapshot().per_step.r!.requests, 3);
    assert.equal(down.runner.snapshot().errors.network, 3);
    assert.ok(elapsed >= 1400, `all retried in ${elapsed.toFixed(0)} ms`);
  });

  it('does not retry 4xx without step retries, nor 3xx', async () => {
    target.on('/404', { status: 404 });
    target.on('/429', { status: 429 });
    target.on('/301', { status: 301, headers: { Location: '/x' } });
    await Promise.all([
      runFlow({ flow_target_url: target.url }, { steps: [req('a', '/404')] }),
      runFlow({ flow_target_url: target.url }, { steps: [req('b', '/429')] }),
      runFlow({ flow_target_url: target.url }, { steps: [req('c', '/301')] }),
    ]);
    assert.equal(target.hits('/404').length, 1);
    assert.equal(target.hits('/429').length, 1);
    assert.equal(target.hits('/301').length, 1);
  });

  it('step retries: any non-2xx or network error, count times more, delayMs apart', async () => {
    target.on('/404', { status: 404 });
    target.on('/302', { status: 302, headers: { Location: '/x' } });
    target.on('/drop', { drop: true });
    target.on('/once', (_r, n) => (n === 1 ? { status: 400 } : { status: 204, raw: '' }));
    const [notFound] = await Promise.all([
      runFlow({ flow_target_url: target.url }, { steps: [req('a', '/404', { retries: { count: 2, delayMs: 150 } })] }),
      runFlow({ flow_target_url: target.url }, { steps: [req('b', '/302', { retries: { count: 1, delayMs: 50 } })] }),
      runFlow({ flow_target_url: target.url }, { steps: [req('c', '/drop', { retries: { count: 3, delayMs: 50 } })] }),
      runFlow(
        { flow_target_url: target.url },
        { steps: [req('d', '/once', { retries: { count: 5, delayMs: 50 } }), req('after', '/after')] },
      ),
    ]);
    const at404 = target.hits('/404').map((r) => r.at);
    assert.equal(at404.length, 3);
    for (const g of gaps(at404)) assert.ok(g >= 140 && g <= 450, `step retry gap ${g.toFixed(0)} ms, expected ~150`);
    assert.equal(notFound.runner.snapshot().errors.http_4xx, 3);
    assert.equal(target.hits('/302').length, 2);
    assert.equal(target.hits('/drop').length, 4);
    assert.equal(target.hits('/once').length, 2, 'no retry after a success');
    assert.equal(target.hits('/after').length, 1);
  });

  it('step retries with count 0 replace the default: a 5xx is tried once', async () => {
    target.on('/503', { status: 503 });
    await runFlow(
      { flow_target_url: target.url },
      { steps: [req('a', '/503', { retries: { count: 0, delayMs: 0 } })] },
    );
    assert.equal(target.hits('/503').length, 1);
  });

  it('a stop is never retried: stopping during the backoff ends the attempts', async () => {
    target.on('/503', { status: 503 });
    const { runner } = startRunner({ flow_target_url: target.url }, { steps: [req('a', '/503')] });
    await waitFor(() => target.hits('/503').length === 1, 'the first attempt');
    const t0 = performance.now();
    await runner.stop();
    assert.ok(performance.now() - t0 < 300, 'stop waits for no backoff');
    await runner.done;
    await quietPeriod(800);
    assert.equal(target.hits('/503').length, 1);
  });

  it('a stop that aborts a request in flight is not retried and not counted as an error', async () => {
    target.on('/hold', { hold: true });
    const { runner } = startRunner({ flow_target_url: target.url }, { steps: [req('a', '/hold')] });
    await waitFor(() => target.inFlight === 1, 'the request in flight');
    await runner.stop();
    await quietPeriod(700);
    assert.equal(target.hits('/hold').length, 1);
    const s = runner.snapshot();
    assert.equal(s.errors_total, 0, JSON.stringify(s.errors));
    assert.equal(s.flows_failed, 0);
  });

  it('a request that takes longer than request_timeout_ms is a timeout', async () => {
    target.on('/slow', { delayMs: 3000 });
    const t0 = performance.now();
    const { runner } = await runFlow(
      { flow_target_url: target.url, request_timeout_ms: 300 },
      { steps: [req('a', '/slow', { retries: { count: 0, delayMs: 0 } })] },
    );
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 2500, `timed out after ${elapsed.toFixed(0)} ms`);
    assert.equal(runner.snapshot().errors.timeout, 1);
    assert.equal(runner.snapshot().flows_failed, 1);
  });
});

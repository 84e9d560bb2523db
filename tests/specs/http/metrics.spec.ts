import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { MAX_WORKFLOW_LABELS, Metrics, OVERFLOW_LABEL } from '../../../services/runtime-agent/src/metrics.js';
import { call, hasSeries, parseMetrics, sampleValue, uniqueName, type Sample } from './http-support.js';

const DONE = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

async function scrape(agent: AgentProcess): Promise<{ text: string; samples: Sample[] }> {
  const r = await call(agent, 'GET', '/metrics');
  assert.equal(r.status, 200);
  return { text: r.text, samples: parseMetrics(r.text) };
}

describe('HTTP API: GET /metrics', () => {
  let agent: AgentProcess;
  const ids: string[] = [];
  const okName = uniqueName('metrics-ok');
  const failName = uniqueName('metrics-fail');
  const rollbackName = uniqueName('metrics-rollback');

  async function runToEnd(body: unknown): Promise<any> {
    const r = await call(agent, 'POST', '/execute', body);
    assert.equal(r.status, 202, r.text);
    ids.push(r.body.execution_id);
    return waitForStatus(agent, r.body.execution_id, DONE);
  }

  before(async () => {
    agent = await startAgent({ env: { MAX_CONCURRENT_EXECUTIONS: '4', MAX_QUEUED_EXECUTIONS: '33' } });
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it('answers Prometheus text with the agent metrics and Node process metrics', async () => {
    const r = await call(agent, 'GET', '/metrics');
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    for (const name of [
      'workflow_runs_total',
      'workflow_success_total',
      'workflow_failure_total',
      'workflow_duration_seconds',
      'active_workflows',
      'workflow_step_duration_seconds',
      'workflow_step_retries_total',
      'workflow_rollbacks_total',
      'workflow_queue_depth',
    ]) {
      assert.match(r.text, new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'), `${name} is declared`);
    }
    const samples = parseMetrics(r.text);
    assert.ok(hasSeries(samples, 'process_cpu_user_seconds_total'));
    assert.ok(hasSeries(samples, 'nodejs_heap_size_used_bytes'));
    assert.equal(sampleValue(samples, 'active_workflows'), 0);
    assert.equal(sampleValue(samples, 'workflow_queue_depth'), 0);
  });

  it('counts a completed run in runs_total{status="completed"} and success_total, and observes its duration and steps', async () => {
    const before = (await scrape(agent)).samples;
    assert.equal(sampleValue(before, 'workflow_runs_total', { workflow_name: okName }), 0);
    const stepsBefore = sampleValue(before, 'workflow_step_duration_seconds_count', {
      adapter: 'shell',
      action: 'run',
      status: 'succeeded',
    });

    const rec = await runToEnd({ wpk_content: pkg(okName, [shellStep('a', ['true']), shellStep('b', ['echo', 'x'])]) });
    assert.equal(rec.status, 'completed');

    const after = (await scrape(agent)).samples;
    assert.equal(sampleValue(after, 'workflow_runs_total', { workflow_name: okName, status: 'completed' }), 1);
    assert.equal(sampleValue(after, 'workflow_runs_total', { workflow_name: okName, status: 'failed' }), 0);
    assert.equal(sampleValue(after, 'workflow_success_total', { workflow_name: okName }), 1);
    assert.equal(sampleValue(after, 'workflow_failure_total', { workflow_name: okName }), 0);
    assert.equal(sampleValue(after, 'workflow_duration_seconds_count', { workflow_name: okName }), 1);
    assert.equal(sampleValue(after, 'workflow_duration_seconds_bucket', { workflow_name: okName, le: '+Inf' }), 1);
    assert.ok(sampleValue(after, 'workflow_duration_seconds_sum', { workflow_name: okName }) > 0);
    assert.equal(
      sampleValue(after, 'workflow_step_duration_seconds_count', {
        adapter: 'shell',
        action: 'run',
        status: 'succeeded',
      }) - stepsBefore,
      2,
    );

    await runToEnd({ wpk_content: pkg(okName, [shellStep('a', ['true'])]) });
    const again = (await scrape(agent)).samples;
    assert.equal(sampleValue(again, 'workflow_runs_total', { workflow_name: okName, status: 'completed' }), 2);
  });

  it('counts a failing run in failure_total with its error_type, and each retry in step_retries_total', async () => {
    const before = (await scrape(agent)).samples;
    const retriesBefore = sampleValue(before, 'workflow_step_retries_total', { adapter: 'shell', action: 'run' });
    const rec = await runToEnd({
      wpk_content: pkg(failName, [shellStep('flaky', ['false'], { retries: { count: 2, delayMs: 10 } })]),
    });
    assert.equal(rec.status, 'failed');
    assert.equal(rec.steps[0].attempts, 3);

    const after = (await scrape(agent)).samples;
    assert.equal(sampleValue(after, 'workflow_runs_total', { workflow_name: failName, status: 'failed' }), 1);
    assert.equal(
      sampleValue(after, 'workflow_failure_total', { workflow_name: failName, error_type: 'command_failed' }),
      1,
    );
    assert.equal(sampleValue(after, 'workflow_success_total', { workflow_name: failName }), 0);
    assert.equal(
      sampleValue(after, 'workflow_step_retries_total', { adapter: 'shell', action: 'run' }) - retriesBefore,
      2,
    );
    assert.ok(
      sampleValue(after, 'workflow_step_duration_seconds_count', {
        adapter: 'shell',
        action: 'run',
        status: 'failed',
      }) >= 1,
    );
  });

  it('counts a rollback in rollbacks_total by trigger and result, and the run once as rolled_back', async () => {
    const rec = await runToEnd({
      wpk_content: pkg(
        rollbackName,
        [
          shellStep('make', ['true'], { rollback: { action: 'run', with: { command: ['true'] } } }),
          shellStep('break', ['false']),
        ],
        {
          rollback: { enabled: true },
        },
      ),
    });
    assert.equal(rec.status, 'rolled_back');
    const after = (await scrape(agent)).samples;
    assert.equal(
      sampleValue(after, 'workflow_rollbacks_total', {
        workflow_name: rollbackName,
        trigger: 'automatic',
        result: 'rolled_back',
      }),
      1,
    );
    // The run is counted once, in the status it ended in (after its automatic rollback), and as a failure.
    assert.equal(sampleValue(after, 'workflow_runs_total', { workflow_name: rollbackName }), 1);
    assert.equal(sampleValue(after, 'workflow_runs_total', { workflow_name: rollbackName, status: 'rolled_back' }), 1);
    assert.equal(
      sampleValue(after, 'workflow_failure_total', { workflow_name: rollbackName, error_type: 'command_failed' }),
      1,
    );
    assert.equal(
      sampleValue(after, 'workflow_duration_seconds_count', { workflow_name: rollbackName, status: 'rolled_back' }),
      1,
    );
    assert.equal(
      sampleValue(after, 'workflow_rollbacks_total', { workflow_name: rollbackName, result: 'rollback_failed' }),
      0,
    );
  });

  it('shows a running execution in active_workflows and back to 0 when it ends', async () => {
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('metrics-active'), [shellStep('nap', ['sleep', '30'])]),
    });
    ids.push(r.body.execution_id);
    try {
      await waitForStatus(agent, r.body.execution_id, ['running']);
      assert.equal(sampleValue((await scrape(agent)).samples, 'active_workflows'), 1);
    } finally {
      await call(agent, 'POST', `/execute/${r.body.execution_id}/cancel`);
    }
    await waitForStatus(agent, r.body.execution_id, DONE);
    await waitFor(
      async () => sampleValue((await scrape(agent)).samples, 'active_workflows') === 0,
      'active_workflows to drop to 0',
      5_000,
    );
    const samples = (await scrape(agent)).samples;
    assert.equal(sampleValue(samples, 'workflow_runs_total', { status: 'cancelled' }), 1);
    const name = (await call(agent, 'GET', `/executions/${r.body.execution_id}`)).body.workflow_name;
    assert.equal(sampleValue(samples, 'workflow_failure_total', { workflow_name: name }), 0, 'a cancel is no failure');
  });

  it('counts a manual rollback under trigger="manual", leaving the run counted as completed', async () => {
    const name = uniqueName('metrics-manual');
    const rec = await runToEnd({
      wpk_content: pkg(name, [
        shellStep('make', ['true'], { rollback: { action: 'run', with: { command: ['true'] } } }),
      ]),
    });
    assert.equal(rec.status, 'completed');
    const r = await call(agent, 'POST', `/rollback/${rec.execution_id}`);
    assert.equal(r.status, 202, r.text);
    await waitForStatus(agent, rec.execution_id, ['rolled_back', 'rollback_failed']);
    const after = (await scrape(agent)).samples;
    assert.equal(
      sampleValue(after, 'workflow_rollbacks_total', { workflow_name: name, trigger: 'manual', result: 'rolled_back' }),
      1,
    );
    assert.equal(sampleValue(after, 'workflow_rollbacks_total', { workflow_name: name, trigger: 'automatic' }), 0);
    assert.equal(sampleValue(after, 'workflow_runs_total', { workflow_name: name, status: 'completed' }), 1);
    assert.equal(sampleValue(after, 'workflow_runs_total', { workflow_name: name, status: 'rolled_back' }), 0);
  });

  it("exports the agent's own series: build info, adapter readiness, store size, journal, event-loop lag", async () => {
    const health = (await call(agent, 'GET', '/health')).body;
    const journalSeq = async () => {
      const page = (await call(agent, 'GET', '/events?limit=1000')).body;
      return page.events.length ? page.events.at(-1).seq : 0;
    };
    const seqBefore = await journalSeq();
    assert.ok(seqBefore > 0, 'earlier tests wrote events');
    const { samples } = await scrape(agent);
    assert.equal(sampleValue(samples, 'runtime_agent_build_info', { version: health.version }), 1);
    for (const [adapter, view] of Object.entries(health.adapters as Record<string, { ready: boolean }>))
      assert.equal(sampleValue(samples, 'runtime_agent_adapter_ready', { adapter }), view.ready ? 1 : 0, adapter);
    assert.equal(sampleValue(samples, 'runtime_agent_adapter_ready', { adapter: 'shell' }), 1);
    assert.equal(sampleValue(samples, 'runtime_agent_adapter_ready', { adapter: 'k8s' }), 0, 'no cluster configured');
    assert.equal(sampleValue(samples, 'runtime_agent_adapter_configured', { adapter: 'k8s' }), 0);
    assert.equal(sampleValue(samples, 'runtime_agent_adapter_configured', { adapter: 'shell' }), 1);
    assert.equal(sampleValue(samples, 'runtime_agent_concurrency_limit'), 4, 'MAX_CONCURRENT_EXECUTIONS');
    assert.equal(sampleValue(samples, 'runtime_agent_queue_limit'), 33, 'MAX_QUEUED_EXECUTIONS');
    assert.equal(sampleValue(samples, 'runtime_agent_executions_overdue'), 0);
    const bytes = sampleValue(samples, 'runtime_agent_store_bytes');
    assert.ok(bytes >= statSync(`${agent.dataDir}/runtime-agent.sqlite`).size && bytes > 0, `store_bytes ${bytes}`);
    assert.ok(sampleValue(samples, 'runtime_agent_journal_last_seq') >= seqBefore);
    assert.ok(hasSeries(samples, 'runtime_agent_event_loop_lag_p99_seconds'));
    const lagMax = sampleValue(samples, 'runtime_agent_event_loop_lag_max_seconds');
    assert.ok(lagMax >= 0 && lagMax < 60, `lag ${lagMax}`);
  });

  it('counts open journal streams in runtime_agent_journal_followers{consumer="sse"}', async () => {
    const followers = async () =>
      sampleValue((await scrape(agent)).samples, 'runtime_agent_journal_followers', { consumer: 'sse' });
    assert.equal(await followers(), 0);
    const ac = new AbortController();
    const res = await fetch(`${agent.url}/events?follow=true`, { signal: ac.signal });
    assert.equal(res.status, 200);
    await waitFor(async () => (await followers()) === 1, 'the stream to be counted');
    ac.abort();
    await waitFor(async () => (await followers()) === 0, 'the closed stream to be forgotten');
    assert.ok(hasSeries((await scrape(agent)).samples, 'runtime_agent_journal_backlog', { consumer: 'sse' }));
  });

  it('never puts an execution id in a label', async () => {
    assert.ok(ids.length >= 5, 'earlier tests ran executions');
    const { text, samples } = await scrape(agent);
    for (const id of ids) assert.ok(!text.includes(id), `execution id ${id} appears in /metrics`);
    const labelNames = new Set(samples.flatMap((s) => Object.keys(s.labels)));
    for (const banned of ['execution_id', 'id', 'url', 'pod'])
      assert.ok(!labelNames.has(banned), `label ${banned} is used`);
  });
});

describe('HTTP API: GET /metrics keeps its labels bounded', () => {
  let agent: AgentProcess;
  before(async () => {
    agent = await startAgent({ env: { MAX_QUEUED_EXECUTIONS: '2000' } });
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it(`1,000 distinct workflow names make at most ${MAX_WORKFLOW_LABELS} label values, the rest count under ${OVERFLOW_LABEL}`, async function () {
    this.timeout(180_000);
    const names = Array.from({ length: 1000 }, (_, i) => `bounded-${i}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map(async (name) => {
          const r = await call(agent, 'POST', '/execute', {
            dry_run: true,
            wpk_content: pkg(name, [shellStep('a', ['true'])]),
          });
          assert.equal(r.status, 202, r.text);
        }),
      );
    }
    await waitFor(
      async () => {
        const h = (await call(agent, 'GET', '/health')).body;
        return h.active_executions === 0 && h.queued_executions === 0;
      },
      'every execution to end',
      120_000,
      200,
    );
    const { samples } = await scrape(agent);
    const runs = samples.filter((s) => s.name === 'workflow_runs_total');
    const values = new Set(runs.map((s) => s.labels.workflow_name));
    assert.equal(values.size, MAX_WORKFLOW_LABELS + 1, 'the first names, and the overflow value');
    assert.ok(values.has(OVERFLOW_LABEL));
    assert.equal(sampleValue(samples, 'workflow_runs_total'), 1000, 'every run is counted');
    assert.equal(
      sampleValue(samples, 'workflow_runs_total', { workflow_name: OVERFLOW_LABEL }),
      1000 - MAX_WORKFLOW_LABELS,
    );
    const durationSeries = samples.filter((s) => s.name === 'workflow_duration_seconds_count');
    assert.ok(durationSeries.length <= MAX_WORKFLOW_LABELS + 1, `${durationSeries.length} duration series`);
  });
});

describe('HTTP API: GET /health names its pod', () => {
  it('reports POD_NAME and POD_NAMESPACE (the downward API) as pod, and leaves pod out without them; adapter series from the first scrape', async () => {
    const named = await startAgent({ env: { POD_NAME: 'web-7d9f-abcde', POD_NAMESPACE: 'shop' } });
    const plain = await startAgent();
    try {
      assert.deepEqual((await call(named, 'GET', '/health')).body.pod, { name: 'web-7d9f-abcde', namespace: 'shop' });
      assert.ok(!('pod' in (await call(plain, 'GET', '/health')).body));
      // A fresh agent's first scrape already has every adapter's readiness and configuration.
      const first = parseMetrics((await call(named, 'GET', '/metrics')).text);
      for (const name of ['runtime_agent_adapter_ready', 'runtime_agent_adapter_configured'])
        assert.ok(hasSeries(first, name, { adapter: 'k8s' }) && hasSeries(first, name, { adapter: 'shell' }), name);
    } finally {
      await Promise.all([named.stop(), plain.stop()]);
      named.cleanup();
      plain.cleanup();
    }
  });
});

describe('Metrics: event-loop lag', () => {
  it('reports a blocked event loop as the time it was blocked, and resets between scrapes', async () => {
    const metrics = new Metrics('test');
    const read = async (name: string) => sampleValue(parseMetrics(await metrics.registry.metrics()), name);
    try {
      await new Promise((r) => setTimeout(r, 50));
      await read('runtime_agent_event_loop_lag_max_seconds'); // a fresh window
      // (Node's delay monitor starts measuring again with its next tick after a reset.)
      await new Promise((r) => setTimeout(r, 50));
      const until = Date.now() + 300;
      while (Date.now() < until) {
        // the loop is blocked
      }
      await new Promise((r) => setTimeout(r, 30));
      const max = await read('runtime_agent_event_loop_lag_max_seconds');
      assert.ok(max >= 0.25 && max < 5, `blocked 300 ms, max lag ${max} s`);
      await new Promise((r) => setTimeout(r, 50));
      assert.ok((await read('runtime_agent_event_loop_lag_max_seconds')) < max, 'the next window starts over');
    } finally {
      metrics.close();
    }
  });
});

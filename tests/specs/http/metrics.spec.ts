import assert from 'node:assert/strict';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { call, hasSeries, parseMetrics, sampleValue, uniqueName, type Sample } from './http-support.js';

const DONE = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

describe('HTTP API: GET /metrics', () => {
  let agent: AgentProcess;
  const ids: string[] = [];
  const okName = uniqueName('metrics-ok');
  const failName = uniqueName('metrics-fail');
  const rollbackName = uniqueName('metrics-rollback');

  async function scrape(): Promise<{ text: string; samples: Sample[] }> {
    const r = await call(agent, 'GET', '/metrics');
    assert.equal(r.status, 200);
    return { text: r.text, samples: parseMetrics(r.text) };
  }

  async function runToEnd(body: unknown): Promise<any> {
    const r = await call(agent, 'POST', '/execute', body);
    assert.equal(r.status, 202, r.text);
    ids.push(r.body.execution_id);
    return waitForStatus(agent, r.body.execution_id, DONE);
  }

  before(async () => {
    agent = await startAgent();
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
    const before = (await scrape()).samples;
    assert.equal(sampleValue(before, 'workflow_runs_total', { workflow_name: okName }), 0);
    const stepsBefore = sampleValue(before, 'workflow_step_duration_seconds_count', {
      adapter: 'shell',
      action: 'run',
      status: 'succeeded',
    });

    const rec = await runToEnd({ wpk_content: pkg(okName, [shellStep('a', ['true']), shellStep('b', ['echo', 'x'])]) });
    assert.equal(rec.status, 'completed');

    const after = (await scrape()).samples;
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
    const again = (await scrape()).samples;
    assert.equal(sampleValue(again, 'workflow_runs_total', { workflow_name: okName, status: 'completed' }), 2);
  });

  it('counts a failing run in failure_total with its error_type, and each retry in step_retries_total', async () => {
    const before = (await scrape()).samples;
    const retriesBefore = sampleValue(before, 'workflow_step_retries_total', { adapter: 'shell', action: 'run' });
    const rec = await runToEnd({
      wpk_content: pkg(failName, [shellStep('flaky', ['false'], { retries: { count: 2, delayMs: 10 } })]),
    });
    assert.equal(rec.status, 'failed');
    assert.equal(rec.steps[0].attempts, 3);

    const after = (await scrape()).samples;
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

  it('counts a rollback in rollbacks_total by result', async () => {
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
    const after = (await scrape()).samples;
    assert.equal(
      sampleValue(after, 'workflow_rollbacks_total', { workflow_name: rollbackName, result: 'rolled_back' }),
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
      assert.equal(sampleValue((await scrape()).samples, 'active_workflows'), 1);
    } finally {
      await call(agent, 'POST', `/execute/${r.body.execution_id}/cancel`);
    }
    await waitForStatus(agent, r.body.execution_id, DONE);
    await waitFor(
      async () => sampleValue((await scrape()).samples, 'active_workflows') === 0,
      'active_workflows to drop to 0',
      5_000,
    );
    const samples = (await scrape()).samples;
    assert.equal(sampleValue(samples, 'workflow_runs_total', { status: 'cancelled' }), 1);
  });

  it('never puts an execution id in a label', async () => {
    assert.ok(ids.length >= 5, 'earlier tests ran executions');
    const { text, samples } = await scrape();
    for (const id of ids) assert.ok(!text.includes(id), `execution id ${id} appears in /metrics`);
    const labelNames = new Set(samples.flatMap((s) => Object.keys(s.labels)));
    for (const banned of ['execution_id', 'id', 'url', 'pod'])
      assert.ok(!labelNames.has(banned), `label ${banned} is used`);
  });
});

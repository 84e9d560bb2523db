import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, useAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import {
  assertServing,
  call,
  errorPaths,
  executionCount,
  isAlive,
  parseMetrics,
  sampleValue,
  stepPid,
  uniqueName,
} from './http-support.js';

describe('HTTP API: POST /execute and GET /execute/{id}', () => {
  const agent = useAgent();

  it('answers 202 with Location and {execution_id, status, workflow_id, dry_run}, then the record shows the finished run', async () => {
    const name = uniqueName('exec');
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(
        name,
        [
          shellStep('greet', ['printf', '%s-%s', '${{ params.who }}', '${{ workflow.name }}']),
          shellStep('again', ['echo', '${{ steps.greet.outputs.stdout }}']),
        ],
        {
          parameters: { who: { type: 'string', default: 'world' }, token: { type: 'string', secret: true } },
        },
      ),
      parameters: { token: 's3cr3t-value' },
    });
    assert.equal(r.status, 202);
    assert.deepEqual(Object.keys(r.body).sort(), ['dry_run', 'execution_id', 'status', 'workflow_id']);
    assert.match(r.body.execution_id, /^[0-9a-f-]{36}$/);
    assert.ok(['pending', 'running'].includes(r.body.status), r.body.status);
    assert.equal(r.body.workflow_id, `${name}-1.0.0`);
    assert.equal(r.body.dry_run, false);
    assert.equal(r.headers.get('location'), `/execute/${r.body.execution_id}`);

    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    const viaLocation = await call(agent, 'GET', r.headers.get('location')!);
    assert.equal(viaLocation.status, 200);
    assert.equal(viaLocation.body.execution_id, r.body.execution_id);
    assert.equal(rec.status, 'completed');
    assert.equal(rec.workflow_id, `${name}-1.0.0`);
    assert.equal(rec.steps_total, 2);
    assert.equal(rec.steps_completed, 2);
    assert.equal(rec.current_step, null);
    assert.equal(rec.error, null);
    assert.deepEqual(rec.parameters, { who: 'world', token: '***' });
    assert.ok(!JSON.stringify(rec).includes('s3cr3t-value'), 'the secret never appears in the record');
    assert.deepEqual(
      rec.steps.map((s: { name: string; status: string; attempts: number }) => [s.name, s.status, s.attempts]),
      [
        ['greet', 'succeeded', 1],
        ['again', 'succeeded', 1],
      ],
    );
    assert.equal(rec.steps[0].outputs.stdout, `world-${name}`);
    assert.equal(rec.steps[1].outputs.stdout, `world-${name}\n`);
    for (const k of ['created_at', 'started_at', 'finished_at'])
      assert.ok(!Number.isNaN(Date.parse(rec[k])), `${k}: ${rec[k]}`);
    assert.ok(rec.created_at <= rec.started_at && rec.started_at <= rec.finished_at);
    assert.equal(rec.logs, `/logs/${r.body.execution_id}`);
  });

  it('records a failing step with its error and ends the execution failed', async () => {
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('fails'), [
        shellStep('ok', ['true']),
        shellStep('boom', ['false']),
        shellStep('never', ['true']),
      ]),
    });
    assert.equal(r.status, 202);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.status, 'failed');
    assert.equal(rec.error.type, 'command_failed');
    assert.equal(rec.error.step, 'boom');
    assert.deepEqual(
      rec.steps.map((s: { status: string }) => s.status),
      ['succeeded', 'failed', 'not_run'],
    );
    assert.equal(rec.steps[1].error.type, 'command_failed');
  });

  it('runs a package sent as a YAML string', async () => {
    const name = uniqueName('yaml-exec');
    const yaml = `apiVersion: wpk/v1\nkind: Workflow\nmetadata: { name: ${name}, version: 1.0.0 }\nspec:\n  handlers:\n    - { name: say, adapter: shell, action: run, with: { command: [echo, from-yaml] } }\n`;
    const r = await call(agent, 'POST', '/execute', { wpk_content: yaml });
    assert.equal(r.status, 202);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].outputs.stdout, 'from-yaml\n');
  });

  it('runs a package by workflow_id once it was sent inline before', async () => {
    const name = uniqueName('registered');
    const first = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(name, [shellStep('say', ['echo', 'registered'])]),
    });
    assert.equal(first.status, 202);
    const again = await call(agent, 'POST', '/execute', { workflow_id: `${name}-1.0.0` });
    assert.equal(again.status, 202);
    assert.notEqual(again.body.execution_id, first.body.execution_id);
    const rec = await waitForStatus(agent, again.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].outputs.stdout, 'registered\n');
  });

  it('dry_run: true runs nothing: the shell command leaves no file and the outputs are marked as example outputs', async () => {
    const marker = join(tmpdir(), `${uniqueName('dry-run-marker')}`);
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('dry'), [shellStep('touch', ['touch', marker])]),
      dry_run: true,
    });
    assert.equal(r.status, 202);
    assert.equal(r.body.dry_run, true);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.status, 'completed');
    assert.equal(rec.dry_run, true);
    assert.equal(rec.steps[0].outputs_source, 'example');
    assert.equal(existsSync(marker), false, `dry run created ${marker}`);
    const logs = await call(agent, 'GET', `/logs/${r.body.execution_id}`);
    assert.ok(
      logs.body.logs.some((l: { message: string }) => l.message.includes('would run') && l.message.includes(marker)),
      'the log shows the argv that would run',
    );
    rmSync(marker, { force: true });
  });

  it('answers invalid parameters with 400 listing unknown, missing, wrong type, pattern and enum problems, and queues nothing', async () => {
    const name = uniqueName('params');
    const wpk = pkg(name, [shellStep('a', ['echo', '${{ params.name }}'])], {
      parameters: {
        name: { type: 'string', required: true },
        count: { type: 'integer' },
        tag: { type: 'string', pattern: '^[a-z]+$' },
        mode: { type: 'string', enum: ['fast', 'slow'] },
      },
    });
    const before = await executionCount(agent);
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: wpk,
      parameters: { bogus: 1, count: 1.5, tag: 'UP', mode: 'medium' },
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error_type, 'validation_error');
    assert.deepEqual(errorPaths(r).sort(), [
      '$.parameters.bogus',
      '$.parameters.count',
      '$.parameters.mode',
      '$.parameters.name',
      '$.parameters.tag',
    ]);
    assert.equal(await executionCount(agent), before);
    // The package of a rejected request is not registered under its workflow_id either.
    const byId = await call(agent, 'POST', '/execute', { workflow_id: `${name}-1.0.0`, parameters: { name: 'x' } });
    assert.equal(byId.status, 404);
    await assertServing(agent);
  });

  it('answers invalid parameters for a bundled workflow_id with 400 and queues nothing', async () => {
    const before = await executionCount(agent);
    const r = await call(agent, 'POST', '/execute', {
      workflow_id: 'rollback-demo-1.0.0',
      parameters: { workdir: 'relative/dir', failAt: 'later', workdri: '/tmp/x' },
    });
    assert.equal(r.status, 400);
    assert.deepEqual(errorPaths(r).sort(), ['$.parameters.failAt', '$.parameters.workdir', '$.parameters.workdri']);
    assert.equal(await executionCount(agent), before);
  });
});

describe('HTTP API: Idempotency-Key on POST /execute', () => {
  const agent = useAgent();
  /** POST /execute of `body` under the Idempotency-Key `key`. */
  const executeWithKey = (body: Record<string, unknown>, key: string) =>
    call(agent, 'POST', '/execute', body, { 'Idempotency-Key': key });

  it('answers concurrent requests with one key with one execution, never a 500', async () => {
    const name = uniqueName('idem-race');
    const body = { wpk_content: pkg(name, [shellStep('hi', ['echo', 'hi'])]) };
    const headers = { 'Idempotency-Key': `race-${name}` };
    const answers = await Promise.all(Array.from({ length: 6 }, () => call(agent, 'POST', '/execute', body, headers)));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 202]);
    assert.equal(new Set(answers.map((a) => a.body.execution_id)).size, 1);
    const other = await Promise.all([call(agent, 'POST', '/execute', { ...body, dry_run: true }, headers)]);
    assert.equal(other[0].status, 409);
  });

  it('answers a repeated key with the same body with 200 and the same execution, creating only one', async () => {
    const name = uniqueName('idem');
    const body = { wpk_content: pkg(name, [shellStep('a', ['echo', 'once'])]) };
    const key = uniqueName('key');
    const first = await executeWithKey(body, key);
    assert.equal(first.status, 202);
    const second = await executeWithKey(body, key);
    assert.equal(second.status, 200);
    assert.equal(second.body.execution_id, first.body.execution_id);
    assert.equal(second.body.workflow_id, `${name}-1.0.0`);
    assert.equal(second.headers.get('location'), `/execute/${first.body.execution_id}`);
    await waitForStatus(agent, first.body.execution_id, ['completed']);
    const third = await executeWithKey(body, key);
    assert.equal(third.status, 200);
    assert.equal(third.body.execution_id, first.body.execution_id);
    assert.equal(third.body.status, 'completed', 'a replay reports the current status');
    const list = await call(agent, 'GET', `/executions?workflow_id=${name}-1.0.0`);
    assert.equal(list.body.executions.length, 1);
  });

  it('answers a repeated key with a different body with 409 conflict and creates nothing', async () => {
    const key = uniqueName('key');
    const name = uniqueName('idem-conflict');
    const first = await executeWithKey({ wpk_content: pkg(name, [shellStep('a', ['echo', 'one'])]) }, key);
    assert.equal(first.status, 202);
    const before = await executionCount(agent);
    const other = await executeWithKey({ wpk_content: pkg(name, [shellStep('a', ['echo', 'two'])]) }, key);
    assert.equal(other.status, 409);
    assert.equal(other.body.error_type, 'conflict');
    assert.equal(other.body.details.execution_id, first.body.execution_id);
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it('creates separate executions for the same body under different keys or no key', async () => {
    const body = { wpk_content: pkg(uniqueName('idem-distinct'), [shellStep('a', ['true'])]) };
    const ids = new Set<string>();
    for (const headers of [
      { 'Idempotency-Key': uniqueName('k') },
      { 'Idempotency-Key': uniqueName('k') },
      {},
      {},
    ] as Record<string, string>[]) {
      const r = await call(agent, 'POST', '/execute', body, headers);
      assert.equal(r.status, 202);
      ids.add(r.body.execution_id);
    }
    assert.equal(ids.size, 4);
  });
});

describe('HTTP API: full queue and cancellation (MAX_CONCURRENT_EXECUTIONS=1, MAX_QUEUED_EXECUTIONS=1)', () => {
  let agent: AgentProcess;
  let running: string;
  let queued: string;
  const longPkg = () =>
    pkg(uniqueName('long'), [shellStep('nap', ['sleep', '30']), shellStep('after', ['echo', 'after'])]);

  before(async () => {
    agent = await startAgent({ env: { MAX_CONCURRENT_EXECUTIONS: '1', MAX_QUEUED_EXECUTIONS: '1' } });
    const a = await call(agent, 'POST', '/execute', { wpk_content: longPkg() });
    assert.equal(a.status, 202);
    running = a.body.execution_id;
    await waitForStatus(agent, running, ['running']);
    const b = await call(agent, 'POST', '/execute', { wpk_content: longPkg() });
    assert.equal(b.status, 202);
    assert.equal(b.body.status, 'pending');
    queued = b.body.execution_id;
  });
  after(async () => {
    // Leave nothing running even when a test failed half-way.
    for (const id of [queued, running]) if (id) await agent.request('POST', `/execute/${id}/cancel`);
    await agent.stop();
    agent.cleanup();
  });

  it('reports one active and one queued execution in /health and /metrics', async () => {
    const h = await call(agent, 'GET', '/health');
    assert.equal(h.body.active_executions, 1);
    assert.equal(h.body.queued_executions, 1);
    const samples = parseMetrics((await call(agent, 'GET', '/metrics')).text);
    assert.equal(sampleValue(samples, 'active_workflows'), 1);
    assert.equal(sampleValue(samples, 'workflow_queue_depth'), 1);
  });

  it('answers the next POST /execute with 429 rate_limited and a Retry-After header, and stores nothing', async () => {
    const before = await executionCount(agent);
    const r = await call(agent, 'POST', '/execute', { wpk_content: longPkg() });
    assert.equal(r.status, 429);
    assert.equal(r.body.error_type, 'rate_limited');
    assert.ok(Number(r.headers.get('retry-after')) > 0, `Retry-After: ${r.headers.get('retry-after')}`);
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it('cancels the queued execution at once: 202 and status cancelled, its steps not_run', async () => {
    const r = await call(agent, 'POST', `/execute/${queued}/cancel`);
    assert.equal(r.status, 202);
    assert.equal(r.body.status, 'cancelled');
    const rec = (await call(agent, 'GET', `/execute/${queued}`)).body;
    assert.equal(rec.status, 'cancelled');
    assert.equal(rec.started_at, null);
    assert.equal(rec.error.type, 'cancelled');
    assert.deepEqual(
      rec.steps.map((s: { status: string }) => s.status),
      ['not_run', 'not_run'],
    );
    assert.equal((await call(agent, 'GET', '/health')).body.queued_executions, 0);
    assert.equal(sampleValue(parseMetrics((await call(agent, 'GET', '/metrics')).text), 'workflow_queue_depth'), 0);
  });

  it('cancels the running execution: 202, then cancelled, and its sleep process is gone', async () => {
    const pid = await stepPid(agent, running, 'nap');
    assert.ok(isAlive(pid), `sleep ${pid} should be running before the cancel`);
    const r = await call(agent, 'POST', `/execute/${running}/cancel`);
    assert.equal(r.status, 202);
    assert.equal(r.body.execution_id, running);
    const rec = await waitForStatus(agent, running, ['cancelled', 'failed', 'completed'], 10_000);
    assert.equal(rec.status, 'cancelled');
    assert.equal(rec.error.type, 'cancelled');
    assert.equal(rec.error.step, 'nap');
    assert.deepEqual(
      rec.steps.map((s: { status: string }) => s.status),
      ['cancelled', 'not_run'],
    );
    await waitFor(() => !isAlive(pid), `sleep process ${pid} to be gone`, 5_000);
    await waitFor(
      async () => (await call(agent, 'GET', '/health')).body.active_executions === 0,
      'the slot to be free',
      5_000,
    );
  });

  it('runs a new execution once the cancelled ones freed the slot', async () => {
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('after-cancel'), [shellStep('a', ['echo', 'free'])]),
    });
    assert.equal(r.status, 202);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.status, 'completed');
  });

  it('answers cancel of a finished execution with 409 conflict and leaves its status alone', async () => {
    for (const id of [running, queued]) {
      const r = await call(agent, 'POST', `/execute/${id}/cancel`);
      assert.equal(r.status, 409, id);
      assert.equal(r.body.error_type, 'conflict');
      assert.equal((await call(agent, 'GET', `/execute/${id}`)).body.status, 'cancelled');
    }
  });

  it('answers cancel of an unknown execution with 404', async () => {
    const r = await call(agent, 'POST', '/execute/does-not-exist/cancel');
    assert.equal(r.status, 404);
    assert.equal(r.body.error_type, 'not_found');
  });
});

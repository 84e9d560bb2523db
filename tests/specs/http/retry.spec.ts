import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AgentProcess, startAgent, waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { assertServing, call, errorPaths, executionCount, uniqueName } from './http-support.js';

const DONE = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

describe('HTTP API: POST /execute/{id}/retry', () => {
  let agent: AgentProcess;
  let scratch: string;
  before(async () => {
    agent = await startAgent();
    scratch = mkdtempSync('/tmp/runtime-agent-http-retry-');
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses bad requests with every problem listed, then after a restart asks again for a secret it no longer holds', async () => {
    const gate = join(scratch, 'go');
    const wpk = pkg(
      uniqueName('retry'),
      [
        shellStep('first', ['echo', 'one']),
        shellStep('gate', ['test', '-e', gate]),
        shellStep('use', ['printf', '%s', '${{ params.token }}']),
      ],
      { parameters: { token: { type: 'string', secret: true, required: true } } },
    );
    const r = await call(agent, 'POST', '/execute', { wpk_content: wpk, parameters: { token: 'first-secret' } });
    assert.equal(r.status, 202, r.text);
    const id = r.body.execution_id;
    const failed = await waitForStatus(agent, id, DONE);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error.step, 'gate');

    const before = await executionCount(agent);
    const bad = await call(agent, 'POST', `/execute/${id}/retry`, { from_step: 7, bogus: true });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error_type, 'validation_error');
    assert.deepEqual(errorPaths(bad).sort(), ['$.bogus', '$.from_step']);
    const query = await call(agent, 'POST', `/execute/${id}/retry?from_step=gate`, {});
    assert.equal(query.status, 400, query.text);
    const missing = await call(agent, 'POST', '/execute/no-such-execution/retry', {});
    assert.equal(missing.status, 404, missing.text);
    assert.equal(await executionCount(agent), before, 'nothing stored');

    await agent.stop();
    agent = await startAgent({ dataDir: agent.dataDir });
    writeFileSync(gate, '');

    const noSecret = await call(agent, 'POST', `/execute/${id}/retry`);
    assert.equal(noSecret.status, 400, noSecret.text);
    assert.deepEqual(errorPaths(noSecret), ['$.parameters.token']);
    assert.match(noSecret.body.details.errors[0].message, /no longer holds/);

    const ok = await call(agent, 'POST', `/execute/${id}/retry`, { parameters: { token: 'second-secret' } });
    assert.equal(ok.status, 202, ok.text);
    assert.equal(ok.body.retry_of, id);
    assert.equal(ok.body.from_step, 'gate');
    assert.equal(ok.headers.get('location'), `/execute/${ok.body.execution_id}`);
    const retry = await waitForStatus(agent, ok.body.execution_id, DONE);
    assert.equal(retry.status, 'completed');
    assert.equal(retry.retry_of, id);
    assert.deepEqual(
      retry.steps.map((s: { name: string; outputs_source: string }) => [s.name, s.outputs_source]),
      [
        ['first', 'reused'],
        ['gate', 'run'],
        ['use', 'run'],
      ],
    );
    assert.equal(retry.steps[0].outputs.stdout, 'one\n');
    assert.equal(retry.steps[2].outputs.stdout, '***', 'the new secret is masked like the old one');
    assert.equal(retry.parameters.token, '***');
    assert.ok(!JSON.stringify(retry).includes('second-secret'));

    const original = await call(agent, 'GET', `/execute/${id}`);
    assert.equal(original.body.retried_by, ok.body.execution_id);
    const listed = await call(agent, 'GET', `/executions?status=completed&limit=1`);
    assert.equal(listed.body.executions[0].retry_of, id);
    await assertServing(agent);
  });
});

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { assertServing, call, uniqueName } from './http-support.js';

interface StepView {
  name: string;
  status: string;
  compensates?: string | null;
  outputs: { stdout?: string } | null;
}

const DONE = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

/** Three steps that echo, each with a rollback block that echoes what it undoes. */
function undoablePkg(name: string) {
  const step = (n: string) =>
    shellStep(n, ['echo', `did-${n}`], {
      rollback: { action: 'run', with: { command: ['printf', 'undo-%s:%s', n, `\${{ steps.${n}.outputs.stdout }}`] } },
    });
  return pkg(name, [step('alpha'), step('beta'), step('gamma')]);
}

describe('HTTP API: POST /rollback/{id}', () => {
  let agent: AgentProcess;
  let scratch: string;
  before(async () => {
    agent = await startAgent();
    scratch = mkdtempSync('/tmp/runtime-agent-http-rollback-'); // the demo's workdir must be under /tmp;
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('rolls back a completed run: 202, then rolled_back with the compensations in reverse order', async () => {
    const r = await call(agent, 'POST', '/execute', { wpk_content: undoablePkg(uniqueName('undo')) });
    const done = await waitForStatus(agent, r.body.execution_id, DONE);
    assert.equal(done.status, 'completed');
    assert.equal(done.rollback.status, 'not_started');
    assert.deepEqual(done.rollback.steps, []);

    const rb = await call(agent, 'POST', `/rollback/${r.body.execution_id}`);
    assert.equal(rb.status, 202);
    assert.equal(rb.body.execution_id, r.body.execution_id);
    assert.equal(rb.body.status, 'rolling_back');
    assert.equal(rb.body.rollback.trigger, 'manual');
    assert.equal(rb.headers.get('location'), `/execute/${r.body.execution_id}`);

    const rec = await waitForStatus(agent, r.body.execution_id, ['rolled_back', 'rollback_failed']);
    assert.equal(rec.status, 'rolled_back');
    assert.equal(rec.rollback.status, 'succeeded');
    assert.equal(rec.rollback.trigger, 'manual');
    assert.equal(rec.rollback.requested_by, 'anonymous', 'who asked (anonymous: no tokens configured)');
    const steps: StepView[] = rec.rollback.steps;
    assert.deepEqual(
      steps.map((s) => [s.name, s.compensates, s.status]),
      [
        ['gamma:rollback', 'gamma', 'succeeded'],
        ['beta:rollback', 'beta', 'succeeded'],
        ['alpha:rollback', 'alpha', 'succeeded'],
      ],
    );
    // Each compensation read the outputs of the step it undoes.
    assert.deepEqual(
      steps.map((s) => s.outputs?.stdout),
      ['undo-gamma:did-gamma\n', 'undo-beta:did-beta\n', 'undo-alpha:did-alpha\n'],
    );
    // The main steps are untouched by the rollback.
    assert.deepEqual(
      rec.steps.map((s: StepView) => s.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
  });

  it('answers a second rollback of a rolled-back execution with 409 conflict', async () => {
    const r = await call(agent, 'POST', '/execute', { wpk_content: undoablePkg(uniqueName('undo-twice')) });
    await waitForStatus(agent, r.body.execution_id, DONE);
    assert.equal((await call(agent, 'POST', `/rollback/${r.body.execution_id}`)).status, 202);
    await waitForStatus(agent, r.body.execution_id, ['rolled_back', 'rollback_failed']);
    const again = await call(agent, 'POST', `/rollback/${r.body.execution_id}`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error_type, 'conflict');
  });

  it('answers rollback of a running execution with 409 conflict and lets it run on', async () => {
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('undo-running'), [
        shellStep('nap', ['sleep', '30'], { rollback: { action: 'run', with: { command: ['true'] } } }),
      ]),
    });
    try {
      await waitForStatus(agent, r.body.execution_id, ['running']);
      const rb = await call(agent, 'POST', `/rollback/${r.body.execution_id}`);
      assert.equal(rb.status, 409);
      assert.equal(rb.body.error_type, 'conflict');
      assert.ok(rb.body.message.includes('running'), rb.body.message);
      assert.equal((await call(agent, 'GET', `/execute/${r.body.execution_id}`)).body.status, 'running');
    } finally {
      await agent.request('POST', `/execute/${r.body.execution_id}/cancel`);
    }
    const rec = await waitForStatus(agent, r.body.execution_id, DONE);
    assert.equal(rec.status, 'cancelled');
  });

  it('answers rollback of a run with nothing to compensate with 409 conflict', async () => {
    // Shell steps without a rollback block have no compensation, and the package has no rollback handlers.
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('nothing-to-undo'), [shellStep('a', ['true']), shellStep('b', ['true'])]),
    });
    const done = await waitForStatus(agent, r.body.execution_id, DONE);
    assert.equal(done.status, 'completed');
    const rb = await call(agent, 'POST', `/rollback/${r.body.execution_id}`);
    assert.equal(rb.status, 409);
    assert.equal(rb.body.error_type, 'conflict');
    assert.match(rb.body.message, /nothing to roll back/);
    assert.equal((await call(agent, 'GET', `/execute/${r.body.execution_id}`)).body.status, 'completed');
    await assertServing(agent);
  });

  it('answers rollback of an unknown execution with 404', async () => {
    const rb = await call(agent, 'POST', '/rollback/00000000-0000-4000-8000-00000000dead');
    assert.equal(rb.status, 404);
    assert.equal(rb.body.error_type, 'not_found');
  });

  it('runs the bundled rollback-demo to rolled_back: files removed, error at verify, compensations newest first, then announce', async () => {
    const workdir = join(scratch, 'demo-auto');
    const r = await call(agent, 'POST', '/execute', { workflow_id: 'rollback-demo-1.0.0', parameters: { workdir } });
    assert.equal(r.status, 202);
    const rec = await waitForStatus(agent, r.body.execution_id, ['rolled_back', 'rollback_failed', 'completed']);
    assert.equal(rec.status, 'rolled_back');
    assert.equal(rec.error.step, 'verify');
    assert.equal(rec.error.type, 'command_failed');
    assert.equal(rec.rollback.trigger, 'automatic');
    assert.deepEqual(
      rec.steps.map((s: StepView) => [s.name, s.status]),
      [
        ['make-workdir', 'succeeded'],
        ['write-config', 'succeeded'],
        ['write-release', 'succeeded'],
        ['verify', 'failed'],
      ],
    );
    const steps: StepView[] = rec.rollback.steps;
    assert.deepEqual(
      steps.map((s) => s.name),
      ['write-release:rollback', 'write-config:rollback', 'make-workdir:rollback', 'announce', 'announce-manual'],
    );
    assert.deepEqual(
      steps.map((s) => s.compensates),
      ['write-release', 'write-config', 'make-workdir', null, null],
    );
    assert.deepEqual(
      steps.map((s) => s.status),
      ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'skipped'],
    );
    assert.equal(steps[3].outputs?.stdout, 'rolled back after step verify failed (command_failed)\n');
    assert.match(
      String((steps[4] as StepView & { reason?: string }).reason),
      /^when error\.step .* not_exists is false$/,
    );
    assert.equal(existsSync(workdir), false, `${workdir} should be removed by the rollback`);
    const logs = (await call(agent, 'GET', `/logs/${r.body.execution_id}`)).body.logs.map(
      (l: { message: string }) => l.message,
    );
    assert.ok(
      logs.includes('rollback finished: 4 succeeded, 1 skipped of 5 step(s)'),
      'a skipped compensation is not counted as succeeded',
    );
    const listed = await call(agent, 'GET', '/executions?status=rolled_back&status=failed&since=1h');
    const summary = listed.body.executions.find(
      (e: { execution_id: string }) => e.execution_id === r.body.execution_id,
    );
    assert.deepEqual(
      summary.rollback,
      { status: 'succeeded', trigger: 'automatic' },
      'a list tells automatic from manual',
    );
  });

  it('rolls back a completed rollback-demo on request: its compensations run newest first and remove what it created', async () => {
    const workdir = join(scratch, 'demo-manual');
    const r = await call(agent, 'POST', '/execute', {
      workflow_id: 'rollback-demo-1.0.0',
      parameters: { workdir, failAt: 'never' },
    });
    const done = await waitForStatus(agent, r.body.execution_id, DONE);
    assert.equal(done.status, 'completed');
    assert.equal(done.steps[3].status, 'skipped');
    assert.ok(existsSync(join(workdir, 'release-1')), 'the run created its files');

    const rb = await call(agent, 'POST', `/rollback/${r.body.execution_id}`);
    assert.equal(rb.status, 202);
    const rec = await waitForStatus(agent, r.body.execution_id, ['rolled_back', 'rollback_failed']);
    assert.equal(rec.rollback.trigger, 'manual');
    assert.deepEqual(
      rec.rollback.steps.map((s: StepView) => s.name),
      ['write-release:rollback', 'write-config:rollback', 'make-workdir:rollback', 'announce', 'announce-manual'],
    );
    // A completed run has no error: the handler that reports a failed step is skipped, the other one says why.
    assert.equal(rec.status, 'rolled_back');
    assert.deepEqual(
      rec.rollback.steps.map((s: StepView) => s.status),
      ['succeeded', 'succeeded', 'succeeded', 'skipped', 'succeeded'],
    );
    assert.equal(rec.rollback.steps[4].outputs.stdout, 'rolled back on request; no step had failed\n');
    assert.equal(existsSync(workdir), false);
  });
});

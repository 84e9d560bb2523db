import assert from 'node:assert/strict';
import { waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { ProcessJanitor, startedPid } from './processes.js';

describe('durability: SIGKILL and restart', () => {
  const janitor = new ProcessJanitor();
  afterEach(async () => {
    await janitor.cleanup();
  });

  it('fails the running execution as interrupted, rolls it back, and runs the pending one after a restart', async () => {
    const env = { MAX_CONCURRENT_EXECUTIONS: '1' };
    const first = await janitor.start({ env });
    const interrupted = await first.request('POST', '/execute', {
      wpk_content: pkg(
        'crash-running',
        [
          shellStep('prepare', ['echo', 'prepared'], {
            rollback: { action: 'run', with: { command: ['echo', 'undo prepare'] } },
          }),
          shellStep('wait', ['sleep', '30']),
          shellStep('never', ['echo', 'never']),
        ],
        { rollback: { enabled: true } },
      ),
    });
    assert.equal(interrupted.status, 202, interrupted.text);
    const queued = await first.request('POST', '/execute', {
      wpk_content: pkg('crash-pending', [shellStep('hello', ['echo', 'after restart'])]),
    });
    assert.equal(queued.status, 202, queued.text);
    const runningId: string = interrupted.body.execution_id;
    const pendingId: string = queued.body.execution_id;

    janitor.watchPid(await startedPid(first, runningId, 'wait'));
    const before = (await first.request('GET', `/execute/${runningId}`)).body;
    assert.equal(before.status, 'running');
    assert.deepEqual(
      before.steps.map((s: any) => s.status),
      ['succeeded', 'running', 'pending'],
    );
    assert.equal((await first.request('GET', `/execute/${pendingId}`)).body.status, 'pending');

    assert.equal(await first.stop('SIGKILL'), null, 'the agent died of the signal');

    const second = await janitor.start({ dataDir: first.dataDir, env });
    const rec = await waitForStatus(second, runningId, ['rolled_back', 'rollback_failed']);
    assert.equal(rec.status, 'rolled_back');
    assert.equal(rec.error.type, 'interrupted');
    assert.equal(rec.error.step, 'wait');
    assert.deepEqual(
      rec.steps.map((s: any) => [s.name, s.status]),
      [
        ['prepare', 'succeeded'],
        ['wait', 'abandoned'],
        ['never', 'not_run'],
      ],
    );
    assert.equal(rec.steps[1].error.type, 'interrupted');
    assert.equal(rec.steps[2].started_at, null);
    assert.match(rec.steps[2].reason, /the agent stopped/);
    assert.equal(rec.rollback.status, 'succeeded');
    assert.equal(rec.rollback.trigger, 'recovered', 'the restart started it, not the run');
    assert.equal(rec.rollback.steps.length, 1);
    assert.equal(rec.rollback.steps[0].compensates, 'prepare');
    assert.equal(rec.rollback.steps[0].status, 'succeeded');
    assert.equal(rec.rollback.steps[0].outputs.stdout, 'undo prepare\n');
    const logs = (await second.request('GET', `/logs/${runningId}`)).body.logs.map((l: any) => l.message);
    assert.ok(logs.some((m: string) => m.includes('execution failed: interrupted')));
    assert.ok(logs.includes('rollback finished: 1 succeeded of 1 step(s)'), logs.join('\n'));
    assert.ok(!logs.some((m: string) => m === 'never'), 'the step after the interrupted one never ran');
    assert.equal(logs.filter((m: string) => m === 'undo prepare').length, 1, 'the compensation ran exactly once');

    const done = await waitForStatus(second, pendingId, ['completed', 'failed']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.error, null);
    assert.equal(done.steps[0].outputs.stdout, 'after restart\n');
    const pendingLogs = (await second.request('GET', `/logs/${pendingId}`)).body.logs.map((l: any) => l.message);
    assert.ok(pendingLogs.includes('requeued after agent restart'), pendingLogs.join('\n'));
  });
});

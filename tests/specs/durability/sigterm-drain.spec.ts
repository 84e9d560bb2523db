import assert from 'node:assert/strict';
import { Store } from '../../../services/runtime-agent/src/store/store.js';
import { waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { isRunning, ProcessJanitor, startedPid } from './processes.js';

/** Reads an execution straight from the store of a stopped agent, before a restart recovers it. */
function storedState(dataDir: string, id: string) {
  const store = new Store(dataDir);
  try {
    return { row: store.executions.get(id)!, steps: store.steps.of(id).filter((s) => s.phase === 'main') };
  } finally {
    store.close();
  }
}

const undoBlock = { rollback: { action: 'run', with: { command: ['echo', 'undo prepare'] } } };

describe('durability: SIGTERM drain', () => {
  const janitor = new ProcessJanitor();
  afterEach(async () => {
    await janitor.cleanup();
  });

  it('lets the running step finish, refuses new work with 503, starts no further step, exits 0 and rolls back after the restart', async () => {
    const agent = await janitor.start({ env: { SHUTDOWN_GRACE_SECONDS: '5' } });
    const posted = await agent.request('POST', '/execute', {
      wpk_content: pkg(
        'drain',
        [
          shellStep('prepare', ['echo', 'prepared'], undoBlock),
          shellStep('slow', ['sleep', '1.5']),
          shellStep('next', ['echo', 'next ran']),
        ],
        {
          rollback: { enabled: true },
        },
      ),
    });
    assert.equal(posted.status, 202, posted.text);
    const id: string = posted.body.execution_id;
    const pid = janitor.watchPid(await startedPid(agent, id, 'slow'));
    assert.equal((await agent.request('GET', '/ready')).status, 200);

    const signalledAt = Date.now();
    const exited = agent.stop('SIGTERM');
    const notReady = await waitFor(
      async () => {
        const r = await agent.request('GET', '/ready');
        return r.status === 503 ? r : undefined;
      },
      '/ready to answer 503 while draining',
      1000,
      5,
    );
    assert.deepEqual(notReady.body.reasons, ['shutting down']);
    const refused = await agent.request('POST', '/execute', {
      wpk_content: pkg('too-late', [shellStep('x', ['true'])]),
    });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.error_type, 'rate_limited');
    const during = (await agent.request('GET', `/execute/${id}`)).body;
    assert.equal(during.status, 'running', 'the drain had to wait for the step: the window was observed in time');
    assert.equal(during.steps[1].status, 'running');

    assert.equal(await exited, 0);
    const drainedMs = Date.now() - signalledAt;
    assert.ok(drainedMs < 5000, `exit took ${drainedMs} ms; the step needed ~1.5 s of the 5 s grace`);
    assert.equal(isRunning(pid), false, 'the step ended on its own');

    const { row, steps } = storedState(agent.dataDir, id);
    assert.equal(row.status, 'failed');
    assert.equal(row.error!.type, 'interrupted');
    assert.equal(row.error!.step, 'next');
    assert.equal(row.rollbackStatus, 'pending', 'the rollback is left for the next start');
    assert.deepEqual(
      steps.map((s) => [s.name, s.status]),
      [
        ['prepare', 'succeeded'],
        ['slow', 'succeeded'],
        ['next', 'not_run'],
      ],
    );
    assert.equal(steps[2].startedAt, null, 'the next step never started');
    assert.equal(steps[2].attempts, 0);
    assert.equal(steps[1].outputs!.exitCode, 0);

    const second = await janitor.start({ dataDir: agent.dataDir });
    const rec = await waitForStatus(second, id, ['rolled_back', 'rollback_failed']);
    assert.equal(rec.status, 'rolled_back');
    assert.equal(rec.rollback.trigger, 'recovered', 'the rollback the drain deferred is started by the restart');
    assert.equal(rec.rollback.steps[0].compensates, 'prepare');
    assert.equal(rec.rollback.steps[0].outputs.stdout, 'undo prepare\n');
    assert.equal(rec.steps[2].status, 'not_run');
    const logs = (await second.request('GET', `/logs/${id}`)).body.logs.map((l: any) => l.message);
    assert.ok(!logs.includes('next ran'), 'the next step did not run after the restart either');
  });

  it('aborts a step that outlives the grace period, leaves no process behind and exits 0', async () => {
    const agent = await janitor.start({ env: { SHUTDOWN_GRACE_SECONDS: '1' } });
    const posted = await agent.request('POST', '/execute', {
      wpk_content: pkg('too-long', [shellStep('long', ['sleep', '60']), shellStep('after', ['echo', 'after'])]),
    });
    assert.equal(posted.status, 202, posted.text);
    const id: string = posted.body.execution_id;
    const pid = janitor.watchPid(await startedPid(agent, id, 'long'));

    const signalledAt = Date.now();
    assert.equal(await agent.stop('SIGTERM'), 0, agent.output());
    const tookMs = Date.now() - signalledAt;
    assert.ok(tookMs >= 900, `exited after ${tookMs} ms, before the 1 s grace ended`);
    assert.ok(tookMs < 8000, `exited after ${tookMs} ms`);
    await waitFor(() => !isRunning(pid), `sleep (pid ${pid}) to be gone`, 5000);

    const { row, steps } = storedState(agent.dataDir, id);
    assert.equal(row.status, 'failed');
    assert.equal(row.error!.type, 'interrupted');
    assert.equal(row.error!.step, 'long');
    assert.equal(steps[0].status, 'failed');
    assert.equal(steps[0].error!.type, 'interrupted');
    assert.equal(steps[1].status, 'not_run');
    assert.equal(row.rollbackStatus, null, 'rollback is not enabled for this package');
  });
  it('a second SIGINT during the drain exits at once with 130, ends the running step, and the next start finds it interrupted', async () => {
    // A grace far longer than the test: only the second signal can end the drain in time.
    const agent = await janitor.start({ env: { SHUTDOWN_GRACE_SECONDS: '600' } });
    const posted = await agent.request('POST', '/execute', {
      wpk_content: pkg('ctrl-c-twice', [shellStep('long', ['sleep', '600'])]),
    });
    assert.equal(posted.status, 202, posted.text);
    const id: string = posted.body.execution_id;
    const pid = janitor.watchPid(await startedPid(agent, id, 'long'));

    agent.proc.kill('SIGINT');
    await waitFor(
      () => agent.logLines().some((l) => String(l.msg).startsWith('shutting down')),
      'the agent to start draining',
      10_000,
    );
    const secondAt = Date.now();
    agent.proc.kill('SIGINT');
    const code = await waitFor(
      () => agent.proc.exitCode ?? (agent.proc.signalCode ? `killed by ${agent.proc.signalCode}` : undefined),
      'the agent to exit after the second SIGINT',
      5000,
    );
    assert.equal(code, 130, agent.output());
    const tookMs = Date.now() - secondAt;
    const said = agent.logLines().filter((l) => String(l.msg).startsWith('second SIGINT'));
    assert.equal(said.length, 1, agent.output());
    await waitFor(() => !isRunning(pid), `the step's sleep (pid ${pid}) to be gone`, 5000);

    const second = await janitor.start({ dataDir: agent.dataDir });
    const rec = await waitForStatus(second, id, ['failed']);
    assert.deepEqual([rec.error.type, rec.error.step], ['interrupted', 'long']);
    assert.equal(rec.steps[0].status, 'abandoned', 'the step may or may not have done its work');
    assert.ok(tookMs < 5000, `exited ${tookMs} ms after the second SIGINT`);
  });
  it('still stops on SIGTERM, and exits 0, once nothing reads its log any more', async () => {
    const agent = await janitor.start();
    // The reader of the agent's stdout and stderr goes away, as when the process that started it died.
    agent.proc.stdout!.destroy();
    agent.proc.stderr!.destroy();
    agent.proc.kill('SIGTERM');
    const code = await waitFor(
      () => agent.proc.exitCode ?? (agent.proc.signalCode ? `killed by ${agent.proc.signalCode}` : undefined),
      'the agent to exit after SIGTERM',
      5000,
    );
    assert.equal(code, 0);
  });
});

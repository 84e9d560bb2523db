/**
 * Processes a shell.start step leaves running never outlive their purpose or the agent: they end when their
 * execution is cancelled or fails, when it is rolled back, when the agent stops (SIGTERM), and on the next
 * start after the agent was killed (SIGKILL). Real agent processes, real `sleep` processes.
 */
import assert from 'node:assert/strict';
import { waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { isRunning, ProcessJanitor } from './processes.js';

const startStep = (name: string) => ({ name, adapter: 'shell', action: 'start', with: { command: ['sleep', '120'] } });

describe('durability: processes that start steps leave running', function () {
  this.timeout(60_000);
  const janitor = new ProcessJanitor();
  afterEach(() => janitor.cleanup());

  /** Runs a package with a start step first and returns the execution id and the started pid. */
  async function startServer(
    agent: Awaited<ReturnType<ProcessJanitor['start']>>,
    after: unknown[] = [],
    body: Record<string, unknown> = {},
  ) {
    const posted = await agent.request('POST', '/execute', {
      wpk_content: pkg('left-running', [startStep('server'), ...after]),
      ...body,
    });
    assert.equal(posted.status, 202, posted.text);
    const id = posted.body.execution_id as string;
    const pid = await waitFor(async () => {
      const r = await agent.request('GET', `/execute/${id}`);
      const server = r.body?.steps?.find((s: { name: string }) => s.name === 'server');
      return server?.status === 'succeeded' ? (server.outputs.pid as number) : undefined;
    }, 'the start step to succeed');
    janitor.watchPid(pid);
    return { id, pid };
  }

  it('keeps running after a completed execution, until the agent stops on SIGTERM', async () => {
    const agent = await janitor.start();
    const { id, pid } = await startServer(agent);
    await waitForStatus(agent, id, ['completed']);
    assert.ok(isRunning(pid), 'a completed execution leaves its server running');
    assert.equal(await agent.stop('SIGTERM'), 0);
    assert.equal(isRunning(pid), false, 'nothing it started survives the agent');
  });

  it('ends when its execution is cancelled', async () => {
    const agent = await janitor.start();
    const { id, pid } = await startServer(agent, [shellStep('wait', ['sleep', '60'])]);
    assert.equal((await agent.request('POST', `/execute/${id}/cancel`)).status, 202);
    await waitForStatus(agent, id, ['cancelled']);
    await waitFor(() => !isRunning(pid), 'the started process to end with its cancelled execution');
    const logs = await agent.request('GET', `/logs/${id}`);
    assert.ok(
      logs.body.logs.some((l: { message: string }) => l.message.includes(`left running (pid ${pid})`)),
      'the log says which process the agent stopped',
    );
  });

  it('is stopped by its compensation when its execution fails and rolls back', async () => {
    const agent = await janitor.start();
    const { id, pid } = await startServer(agent, [shellStep('fail', ['false'])], { rollback_on_failure: true });
    const done = await waitForStatus(agent, id, ['rolled_back', 'rollback_failed']);
    assert.equal(done.status, 'rolled_back', JSON.stringify(done.rollback));
    assert.equal(isRunning(pid), false);
    const record = (await agent.request('GET', `/execute/${id}`)).body;
    const stop = record.rollback.steps.find((s: { action: string }) => s.action === 'stop');
    assert.equal(stop?.status, 'succeeded', JSON.stringify(record.rollback));
    assert.equal(stop.outputs.wasRunning, true, 'the compensation, not the clean-up after it, stopped it');
  });

  it('after a SIGKILL of the agent it lives on, and the next start ends it', async () => {
    const first = await janitor.start();
    const { id, pid } = await startServer(first);
    await waitForStatus(first, id, ['completed']);
    await first.stop('SIGKILL');
    assert.ok(isRunning(pid), 'a SIGKILL leaves the process group running (its own session)');
    const second = await janitor.start({ dataDir: first.dataDir });
    await waitFor(() => !isRunning(pid), 'the restarted agent to end what the killed one left running');
    assert.equal((await second.request('GET', '/health')).status, 200);
  });
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { STORE_FILE } from '../../../services/runtime-agent/src/store/store.js';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { runAgentUntilExit } from '../http/http-support.js';
import { stepPid } from '../support/processes.js';

describe('durability: one agent per data directory', () => {
  let first: AgentProcess;
  before(async () => {
    first = await startAgent();
  });
  after(async () => {
    await first.stop('SIGKILL');
    first.cleanup();
  });

  it("a second agent on the same DATA_DIR refuses to start and leaves the first one's executions alone", async () => {
    const wpk = pkg(
      'busy',
      [
        shellStep('mark', ['true'], { rollback: { action: 'run', with: { command: ['true'] } } }),
        shellStep('nap', ['sleep', '30']),
      ],
      {
        rollback: { enabled: true },
      },
    );
    const r = await first.request('POST', '/execute', { wpk_content: wpk });
    const pid = await stepPid(first, r.body.execution_id, 'nap');

    const second = await runAgentUntilExit({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: first.dataDir });
    assert.equal(second.code, 2);
    assert.match(second.stderr, /in use by another runtime-agent process/);
    assert.equal(second.stderr.trim().split('\n').length, 1, 'one clear line');

    const rec = (await first.request('GET', `/execute/${r.body.execution_id}`)).body;
    assert.equal(rec.status, 'running', 'the running execution was not "recovered" by the second process');
    assert.equal(rec.rollback.status, 'not_started');
    process.kill(pid, 0); // its step still runs
    await first.request('POST', `/execute/${r.body.execution_id}/cancel`);
    assert.equal((await waitForStatus(first, r.body.execution_id, ['cancelled'])).status, 'cancelled');
  });

  it('an agent whose port is taken exits before it recovers anything from its store', async () => {
    // A store with a running execution in it: its agent was killed mid-step.
    const crashed = await startAgent();
    const r = await crashed.request('POST', '/execute', {
      wpk_content: pkg('left-running', [shellStep('nap', ['sleep', '30'])]),
    });
    const pid = await stepPid(crashed, r.body.execution_id, 'nap');
    await crashed.stop('SIGKILL');
    process.kill(-pid, 'SIGKILL');

    const again = await runAgentUntilExit({ PORT: String(first.port), HOST: '127.0.0.1', DATA_DIR: crashed.dataDir });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /cannot listen/);
    const db = new Database(join(crashed.dataDir, STORE_FILE), { readonly: true });
    const row = db.prepare('SELECT status FROM executions WHERE id = ?').get(r.body.execution_id) as { status: string };
    db.close();
    assert.equal(row.status, 'running', 'recovery did not run: the next agent that does start will recover it');
    crashed.cleanup();
  });
});

/**
 * Resuming from the journal through the Socket.IO channel: a client that disconnects during a run, while
 * the agent is then SIGKILLed and restarted, subscribes again with the last seq it has and receives every
 * event of the run exactly once and in order, as GET /events has them.
 */
import assert from 'node:assert/strict';
import type { JournalEvent } from '../../../services/runtime-agent/src/store/types.js';
import { type AgentProcess, agentsOnOneDataDir } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { call, uniqueName } from '../http/http-support.js';
import { connect } from './socket-support.js';

const journal = async (agent: AgentProcess, id: string) =>
  (await call(agent, 'GET', `/events?limit=10000&execution_id=${id}`)).body.events as JournalEvent[];

describe('Socket.IO channel: resuming across a SIGKILL of the agent', function () {
  this.timeout(90_000); // two agent starts and a run
  const agents = agentsOnOneDataDir();

  it('delivers every event of the run once, in order, to a client that resubscribes with its last seq', async () => {
    let agent = await agents.start();
    const first = await connect(agent);
    const steps = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => shellStep(n, ['sleep', '0.2']));
    const posted = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('sock-killed'), steps, {
        rollback: { enabled: true, handlers: [shellStep('cleanup', ['true'])] },
      }),
    });
    assert.equal(posted.status, 202, posted.text);
    const id = posted.body.execution_id as string;
    const sub = await first.command('subscribe', { execution_id: id });
    assert.equal(sub.ok, true);
    await first.waitForEvent('activity_log', (a) => a.activity_type === 'step.started' && a.step === 'b');
    first.close(); // the client goes away during the run
    const kept = first.events('activity_log');
    const lastSeq = kept.at(-1).seq as number;

    // The run goes on without the client; the agent dies in the middle of it.
    await waitFor(
      async () => (await journal(agent, id)).some((e) => e.type === 'step.started' && e.step === 'd'),
      'step d to start',
    );
    await agent.stop('SIGKILL');

    agent = await agents.start();
    const second = await connect(agent);
    const resumed = await second.command('subscribe', { execution_id: id, since: lastSeq });
    assert.equal(resumed.ok, true);
    assert.equal(resumed.since, lastSeq);
    await second.waitForEvent(
      'status_changed',
      (s) => s.kind === 'execution' && ['rolled_back', 'rollback_failed'].includes(s.to),
      30_000,
    );
    const stored = await journal(agent, id);
    await waitFor(() => kept.length + second.events('activity_log').length >= stored.length, 'the rest of the journal');
    const seen = [...kept, ...second.events('activity_log')].map((a) => a.seq);
    assert.deepEqual(
      seen,
      stored.map((e) => e.seq),
      'every stored event once, in order, none missing',
    );
    const types = second.events('activity_log').map((a) => a.activity_type);
    assert.ok(types.includes('rollback.started'), 'the recovered rollback reached the resumed client');
    const interrupted = second.events('status_changed').find((s) => s.kind === 'execution' && s.to === 'failed');
    assert.ok(interrupted, 'the interruption is a status change too');
    second.close();
  });
});

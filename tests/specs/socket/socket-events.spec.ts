/**
 * The Socket.IO channel's server events through the agent process: `connected`, and for each journal event
 * a subscription matches, `activity_log` (with its seq) and `status_changed`, in journal order; filters,
 * `since`, unsubscribe, and the connections gauge.
 */
import assert from 'node:assert/strict';
import type { JournalEvent } from '../../../services/runtime-agent/src/store/types.js';
import { useAgent, waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { AGENT_VERSION, call, parseMetrics, sampleValue, uniqueName } from '../http/http-support.js';
import { assertFailed, connect, problemPaths } from './socket-support.js';

const journalOf = async (agent: ReturnType<typeof useAgent>, query: string) =>
  (await call(agent, 'GET', `/events?limit=10000${query}`)).body.events as JournalEvent[];

describe('Socket.IO channel: events', function () {
  this.timeout(60_000);
  const agent = useAgent();

  async function run(name: string, steps = [shellStep('one', ['true']), shellStep('two', ['true'])]) {
    const r = await call(agent, 'POST', '/execute', { wpk_content: pkg(name, steps) });
    assert.equal(r.status, 202, r.text);
    return { id: r.body.execution_id as string, workflowId: r.body.workflow_id as string };
  }

  it('greets a client without a token when HTTP needs none, with the agent, version and role', async () => {
    const client = await connect(agent);
    assert.equal(client.welcome.version, AGENT_VERSION);
    assert.equal(client.welcome.role, 'admin');
    assert.equal(typeof client.welcome.agent, 'string');
    assert.match(client.welcome.message, /connected/);
    client.close();
  });

  it("sends one activity_log per journal event of the subscribed execution, in order, with the journal's seq", async () => {
    const client = await connect(agent);
    const { id } = await run(uniqueName('sock-events'));
    // Where the answer fell among the events, recorded as the packet is read: the client may read the
    // answer and the replay in one go, before any code after an await runs.
    let eventsBeforeAck = -1;
    const ack = await new Promise<any>((resolve, reject) =>
      client.socket.timeout(10_000).emit('subscribe', { execution_id: id }, (err: unknown, answer: any) => {
        eventsBeforeAck = client.events('activity_log').length;
        if (err) reject(err);
        else resolve(answer);
      }),
    );
    assert.equal(ack.ok, true);
    assert.equal(eventsBeforeAck, 0, 'the answer comes before the replay');
    assert.match(ack.subscription_id, /\S/);
    assert.equal(ack.since, 0);
    await waitForStatus(agent, id, ['completed']);
    const stored = await journalOf(agent, `&execution_id=${id}`);
    await waitFor(() => client.events('activity_log').length >= stored.length, 'every activity_log');
    const logs = client.events('activity_log');
    assert.deepEqual(
      logs.map((a) => [a.seq, a.activity_type, a.step ?? null]),
      stored.map((e) => [e.seq, e.type, e.step ?? null]),
    );
    for (const [i, a] of logs.entries()) {
      assert.equal(a.execution_id, id);
      assert.equal(a.subscription_id, ack.subscription_id);
      assert.equal(a.timestamp, stored[i].ts);
      assert.deepEqual(a.details, stored[i].data);
      assert.equal(typeof a.message, 'string');
    }
    client.close();
  });

  it('sends status_changed for the execution and for each step', async () => {
    const client = await connect(agent);
    const { id } = await run(uniqueName('sock-status'));
    await client.command('subscribe', { execution_id: id });
    await waitForStatus(agent, id, ['completed']);
    await client.waitForEvent('status_changed', (s) => s.kind === 'execution' && s.to === 'completed');
    const changes = client.events('status_changed').map((s) => [s.kind, s.id, s.from, s.to]);
    assert.deepEqual(changes, [
      ['execution', id, 'pending', 'running'],
      ['step', 'one', 'pending', 'running'],
      ['step', 'one', 'running', 'succeeded'],
      ['step', 'two', 'pending', 'running'],
      ['step', 'two', 'running', 'succeeded'],
      ['execution', id, 'running', 'completed'],
    ]);
    for (const s of client.events('status_changed')) {
      assert.equal(s.execution_id, id);
      assert.equal(typeof s.seq, 'number');
    }
    client.close();
  });

  it('filters by workflow and by type, and replays only what follows since', async () => {
    const a = await run(uniqueName('sock-filter-a'));
    const b = await run(uniqueName('sock-filter-b'));
    await waitForStatus(agent, a.id, ['completed']);
    await waitForStatus(agent, b.id, ['completed']);
    const client = await connect(agent);
    const byWorkflow = await client.command('subscribe', { workflow_id: b.workflowId, since: 0 });
    const byType = await client.command('subscribe', { types: ['step.finished'], execution_id: a.id });
    const storedB = await journalOf(agent, `&workflow_id=${b.workflowId}`);
    const sinceSeq = storedB[2].seq;
    const bySince = await client.command('subscribe', { execution_id: b.id, since: sinceSeq });
    const of = (sub: any) => client.events('activity_log').filter((x) => x.subscription_id === sub.subscription_id);
    await waitFor(
      () => of(byWorkflow).length === storedB.length && of(byType).length === 2 && of(bySince).length > 0,
      'the replays',
    );
    assert.ok(of(byWorkflow).every((x) => x.workflow_id === b.workflowId));
    assert.deepEqual(
      of(byType).map((x) => [x.activity_type, x.step]),
      [
        ['step.finished', 'one'],
        ['step.finished', 'two'],
      ],
    );
    assert.deepEqual(
      of(bySince).map((x) => x.seq),
      storedB.filter((e) => e.seq > sinceSeq && e.execution_id === b.id).map((e) => e.seq),
    );
    client.close();
  });

  it('stops sending after unsubscribe, and refuses an unknown subscription', async () => {
    const client = await connect(agent);
    const sub = await client.command('subscribe', { types: 'execution.created' });
    const first = await run(uniqueName('sock-unsub-1'));
    await client.waitForEvent('activity_log', (x) => x.execution_id === first.id);
    const ack = await client.command('unsubscribe', { subscription_id: sub.subscription_id });
    assert.deepEqual(ack, { ok: true, unsubscribed: [sub.subscription_id] });
    const second = await run(uniqueName('sock-unsub-2'));
    await waitForStatus(agent, second.id, ['completed']);
    // A probe subscription shows the channel delivered past the second execution's creation.
    const probe = await client.command('subscribe', { execution_id: second.id });
    await client.waitForEvent('activity_log', (x) => x.subscription_id === probe.subscription_id);
    assert.ok(
      !client
        .events('activity_log')
        .some((x) => x.subscription_id === sub.subscription_id && x.execution_id === second.id),
    );
    assertFailed(await client.command('unsubscribe', { subscription_id: 'sub-nope' }), 'not_found');
    assert.equal((await client.command('unsubscribe', {})).ok, true);
    client.close();
  });

  it('answers a bad subscription with a validation_error listing every problem, and an error event', async () => {
    const client = await connect(agent);
    const ack = await client.command('subscribe', { since: -1, types: 7, colour: 'red' });
    const error = assertFailed(ack, 'validation_error');
    assert.deepEqual(problemPaths(error).sort(), ['$.colour', '$.since', '$.types'].sort());
    const bad = assertFailed(await client.command('subscribe', { types: 'step.nope' }), 'validation_error');
    assert.deepEqual(problemPaths(bad), ['query.types']);
    const event = await client.waitForEvent('error', (e) => e.details?.operation === 'subscribe');
    assert.equal(event.error_type, 'validation_error');
    assert.ok(client.socket.connected, 'the socket stays up');
    client.close();
  });

  it('counts connected sockets in runtime_agent_socket_connections', async () => {
    const gauge = async () =>
      sampleValue(parseMetrics((await call(agent, 'GET', '/metrics')).text), 'runtime_agent_socket_connections');
    const base = await gauge();
    const one = await connect(agent);
    const two = await connect(agent);
    assert.equal(await gauge(), base + 2);
    one.close();
    two.close();
    await waitFor(async () => (await gauge()) === base, 'the gauge to drop back');
  });
});

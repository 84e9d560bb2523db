/**
 * The Socket.IO channel's commands through the agent process, with tokens: each answers through its
 * acknowledgement as the matching HTTP route answers, with the role the service layer asks for; a refusal
 * also comes as an `error` event naming the operation; bad payloads get every problem at once and the
 * socket stays up; state-changing commands are in the audit log.
 */
import assert from 'node:assert/strict';
import { useAgentWithTokens } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { uniqueName } from '../http/http-support.js';
import { waitFor } from '../support/wait.js';
import { assertFailed, type Client, connect, problemPaths } from './socket-support.js';

describe('Socket.IO channel: commands and roles', function () {
  this.timeout(60_000);
  const { agent, token } = useAgentWithTokens({
    watcher: ['viewer'],
    runner: ['executor'],
    other: ['executor'],
    oncall: ['operator'],
    root: ['admin'],
  });
  const clients: Record<string, Client> = {};
  before(async () => {
    for (const name of ['watcher', 'runner', 'other', 'oncall', 'root'])
      clients[name] = await connect(agent, { token: token(name) });
  });
  after(() => {
    for (const c of Object.values(clients)) c.close();
  });

  const quick = () => ({ wpk_content: pkg(uniqueName('sock-cmd'), [shellStep('one', ['true'])]) });
  const slow = () => ({ wpk_content: pkg(uniqueName('sock-slow'), [shellStep('wait', ['sleep', '30'])]) });
  const headers = (name: string) => ({ authorization: `Bearer ${token(name)}` });
  const waitForStatus = (_agent: unknown, id: string, statuses: string[]) =>
    waitFor(
      async () => {
        const r = await agent.request('GET', `/execute/${id}`, undefined, headers('watcher'));
        return statuses.includes(r.body?.status) ? r.body : undefined;
      },
      `execution ${id} to reach ${statuses.join('|')}`,
    );

  it('greets each token with its role', () => {
    assert.equal(clients.watcher.welcome.role, 'viewer');
    assert.equal(clients.runner.welcome.role, 'executor');
    assert.equal(clients.oncall.welcome.role, 'operator');
    assert.equal(clients.root.welcome.role, 'admin');
  });

  it('execute: refuses a viewer (ack and error event), accepts an executor as POST /execute does', async () => {
    const refused = assertFailed(await clients.watcher.command('execute', quick()), 'forbidden');
    assert.equal(refused.details.operation, 'execute');
    assert.equal(refused.details.needed_role, 'executor');
    const event = await clients.watcher.waitForEvent('error', (e) => e.details.operation === 'execute');
    assert.equal(event.error_type, 'forbidden');

    const ack = await clients.runner.command('execute', { ...quick(), dry_run: true });
    assert.equal(ack.ok, true);
    assert.equal(ack.created, true);
    assert.equal(ack.dry_run, true);
    assert.match(ack.execution_id, /\S/);
    const record = await waitForStatus(agent, ack.execution_id, ['completed']);
    assert.equal(record.submitted_by, 'runner');
  });

  it('execute: the same idempotency_key and payload answer the same execution; another payload is a conflict', async () => {
    const body = { ...quick(), idempotency_key: uniqueName('key') };
    const first = await clients.runner.command('execute', body);
    const again = await clients.runner.command('execute', body);
    assert.equal(first.created, true);
    assert.equal(again.ok, true);
    assert.equal(again.created, false);
    assert.equal(again.execution_id, first.execution_id);
    const other = await clients.runner.command('execute', { ...quick(), idempotency_key: body.idempotency_key });
    assert.equal(assertFailed(other, 'conflict').details.execution_id, first.execution_id);
  });

  it('execute: a malformed payload gets every problem in one validation_error; nothing is queued', async () => {
    const before = (await agent.request('GET', '/executions?limit=500', undefined, headers('root'))).body.executions
      .length;
    const ack = await clients.runner.command('execute', { workflow_id: 7, dry_run: 'yes', bogus: true });
    const error = assertFailed(ack, 'validation_error');
    assert.deepEqual(problemPaths(error).sort(), ['$.bogus', '$.dry_run', '$.workflow_id']);
    const invalid = assertFailed(
      await clients.runner.command('execute', { wpk_content: { apiVersion: 'wpk/v1' } }),
      'validation_error',
    );
    assert.ok(problemPaths(invalid).length > 0);
    const after = (await agent.request('GET', '/executions?limit=500', undefined, headers('root'))).body.executions
      .length;
    assert.equal(after, before);
    assert.ok(clients.runner.socket.connected);
  });

  it('a command without an acknowledgement, an unknown command, extra arguments and deep payloads get validation_error events', async () => {
    const c = clients.runner;
    c.socket.emit('list_executions', {});
    const noAck = await c.waitForEvent('error', (e) => e.details.operation === 'list_executions');
    assert.equal(noAck.error_type, 'validation_error');
    assert.deepEqual(problemPaths(noAck), ['ack']);

    const unknown = assertFailed(await c.command('launch_missiles', {}), 'validation_error');
    assert.match(unknown.message, /unknown command launch_missiles; known: .*execute/);

    const extra = assertFailed(
      await c.socket.timeout(10_000).emitWithAck('get_execution_status', { execution_id: 'x' }, 'more'),
      'validation_error',
    );
    assert.deepEqual(problemPaths(extra), ['$']);

    let deep: unknown = 'bottom';
    for (let i = 0; i < 200; i++) deep = { d: deep };
    const tooDeep = assertFailed(await c.command('execute', { parameters: { x: deep } }), 'validation_error');
    assert.match(tooDeep.details.errors[0].message, /nested deeper than/);

    const notObject = assertFailed(await c.command('get_execution_status', 'abc'), 'validation_error');
    assert.deepEqual(problemPaths(notObject), ['$']);
    assert.equal((await c.command('list_executions', { limit: 1 })).ok, true, 'the socket still serves');
  });

  it('get_execution_status and list_executions: viewers read, with the filters of GET /executions', async () => {
    const ack = await clients.runner.command('execute', quick());
    await waitForStatus(agent, ack.execution_id, ['completed']);
    const status = await clients.watcher.command('get_execution_status', { execution_id: ack.execution_id });
    assert.equal(status.ok, true);
    assert.equal(status.execution.execution_id, ack.execution_id);
    assert.equal(status.execution.status, 'completed');
    assertFailed(await clients.watcher.command('get_execution_status', { execution_id: 'nope' }), 'not_found');

    const list = await clients.watcher.command('list_executions', {
      workflow_id: ack.workflow_id,
      status: ['completed'],
      limit: 5,
    });
    assert.equal(list.ok, true);
    assert.deepEqual(
      list.executions.map((e: { execution_id: string }) => e.execution_id),
      [ack.execution_id],
    );
    assert.equal(list.next_cursor, null);
    const http = await agent.request(
      'GET',
      `/executions?workflow_id=${ack.workflow_id}`,
      undefined,
      headers('watcher'),
    );
    assert.deepEqual(list.executions, http.body.executions);
    const none = await clients.watcher.command('list_executions', { status: 'failed', workflow_id: ack.workflow_id });
    assert.deepEqual(none.executions, []);
    const bad = assertFailed(
      await clients.watcher.command('list_executions', { status: 'sideways', since: 'yesterday', limit: 0 }),
      'validation_error',
    );
    assert.deepEqual(problemPaths(bad).sort(), ['$.limit']);
    const badValues = assertFailed(
      await clients.watcher.command('list_executions', { status: 'sideways', since: 'yesterday' }),
      'validation_error',
    );
    assert.deepEqual(problemPaths(badValues).sort(), ['query.since', 'query.status']);
  });

  it("cancel_execution: an executor cancels its own, not another's; an operator cancels anyone's", async () => {
    const mine = await clients.runner.command('execute', slow());
    await waitForStatus(agent, mine.execution_id, ['running']);
    const theirs = assertFailed(
      await clients.other.command('cancel_execution', { execution_id: mine.execution_id }),
      'forbidden',
    );
    assert.equal(theirs.details.needed_role, 'operator');
    assertFailed(await clients.watcher.command('cancel_execution', { execution_id: mine.execution_id }), 'forbidden');
    const own = await clients.runner.command('cancel_execution', { execution_id: mine.execution_id });
    assert.equal(own.ok, true);
    assert.equal(own.execution_id, mine.execution_id);
    await waitForStatus(agent, mine.execution_id, ['cancelled']);

    const second = await clients.runner.command('execute', slow());
    await waitForStatus(agent, second.execution_id, ['running']);
    assert.equal((await clients.oncall.command('cancel_execution', { execution_id: second.execution_id })).ok, true);
    await waitForStatus(agent, second.execution_id, ['cancelled']);
    assertFailed(await clients.oncall.command('cancel_execution', { execution_id: second.execution_id }), 'conflict');
  });

  it('rollback_execution: operators only', async () => {
    const undoable = shellStep('made', ['true'], { rollback: { action: 'run', with: { command: ['true'] } } });
    const done = await clients.runner.command('execute', { wpk_content: pkg(uniqueName('sock-undo'), [undoable]) });
    await waitForStatus(agent, done.execution_id, ['completed']);
    const refused = assertFailed(
      await clients.runner.command('rollback_execution', { execution_id: done.execution_id }),
      'forbidden',
    );
    assert.equal(refused.details.needed_role, 'operator');
    const ack = await clients.oncall.command('rollback_execution', { execution_id: done.execution_id });
    assert.equal(ack.ok, true);
    assert.equal(ack.execution_id, done.execution_id);
    assert.equal(ack.rollback.requested_by, 'oncall');
    assert.equal((await waitForStatus(agent, done.execution_id, ['rolled_back'])).rollback.trigger, 'manual');
    assertFailed(await clients.oncall.command('rollback_execution', { execution_id: 'nope' }), 'not_found');
  });

  it('retry_execution: executors retry an ended execution as POST /execute/{id}/retry does; viewers may not', async () => {
    const failing = await clients.runner.command('execute', {
      wpk_content: pkg(uniqueName('sock-retry'), [shellStep('ok', ['true']), shellStep('bad', ['false'])]),
    });
    await waitForStatus(agent, failing.execution_id, ['failed']);
    assertFailed(await clients.watcher.command('retry_execution', { execution_id: failing.execution_id }), 'forbidden');
    const ack = await clients.runner.command('retry_execution', { execution_id: failing.execution_id });
    assert.equal(ack.ok, true);
    assert.equal(ack.retry_of, failing.execution_id);
    assert.equal(ack.from_step, 'bad');
    assert.equal(ack.steps_kept, 1);
    const bad = assertFailed(
      await clients.runner.command('retry_execution', { execution_id: failing.execution_id, from_step: '' }),
      'validation_error',
    );
    assert.deepEqual(problemPaths(bad), ['$.from_step']);
  });

  it('writes state-changing commands and refusals to the audit log', async () => {
    const ack = await clients.runner.command('execute', quick());
    await clients.watcher.command('execute', quick());
    const audit = await agent.request('GET', '/audit?limit=1000', undefined, headers('root'));
    const lines = audit.body.entries.filter((e: { method: string }) => e.method === 'SOCKET');
    const accepted = lines.find((l: any) => l.execution_id === ack.execution_id);
    assert.equal(accepted.path, 'socket.io:execute');
    assert.equal(accepted.actor, 'runner');
    assert.equal(accepted.status, 200);
    const refused = lines.filter((l: any) => l.actor === 'watcher' && l.status === 403);
    assert.ok(refused.length > 0, 'the refused execute is there');
  });
});

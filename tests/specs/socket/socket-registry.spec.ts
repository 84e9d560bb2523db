/**
 * Extending the channel: a command registered on `agent.sockets.commands` is served by the same dispatch
 * (payload checked, answer through the acknowledgement and its named event, errors as `error` events),
 * may be sent without an acknowledgement when it says so, and `broadcast` reaches every connection. The
 * agent is built in-process so the spec can register its own command.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Type } from '@sinclair/typebox';
import { AgentError } from '../../../adapters/errors.js';
import { authorize } from '../../../services/runtime-agent/src/auth/roles.js';
import { defineCommand } from '../../../services/runtime-agent/src/socket/registry.js';
import { type ServiceHarness, startService } from '../support/service-harness.js';
import { assertFailed, connect, problemPaths } from './socket-support.js';

describe('Socket.IO channel: registering commands', function () {
  this.timeout(30_000);
  let h: ServiceHarness;
  let server: Server;
  let url: string;
  const started: string[] = [];
  before(async () => {
    h = await startService();
    h.agent.sockets.commands.register(
      defineCommand({
        name: 'warm_up',
        payload: Type.Object({ container_id: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
        event: 'warmed_up',
        mutates: true,
        ackOptional: true,
        handle(ctx, { container_id }) {
          authorize(ctx.principal, 'rollback', 'starting a container');
          if (container_id === 'missing') throw new AgentError('not_found', `container ${container_id} not found`);
          started.push(container_id);
          return { container_id, status: 'running' };
        },
      }),
    );
    server = h.agent.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    h.agent.sockets.attach(server);
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    h.agent.sockets.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await h.close();
  });

  it('serves a registered command: the answer through the ack and as its named event', async () => {
    const client = await connect({ url });
    const ack = await client.command('warm_up', { container_id: 'c1' });
    assert.deepEqual(ack, { ok: true, container_id: 'c1', status: 'running' });
    const event = await client.waitForEvent('warmed_up');
    assert.deepEqual(event, { container_id: 'c1', status: 'running' });
    client.close();
  });

  it('lets a command that says so be sent without an ack, and reports its errors as error events', async () => {
    const client = await connect({ url });
    client.socket.emit('warm_up', { container_id: 'c2' });
    await client.waitForEvent('warmed_up', (e) => e.container_id === 'c2');
    client.socket.emit('warm_up', { container_id: 'missing' });
    const missing = await client.waitForEvent('error', (e) => e.error_type === 'not_found');
    assert.equal(missing.details.operation, 'warm_up');
    const bad = assertFailed(await client.command('warm_up', { container_id: '', x: 1 }), 'validation_error');
    assert.deepEqual(problemPaths(bad).sort(), ['$.container_id', '$.x']);
    assert.deepEqual(started, ['c1', 'c2']);
    client.close();
  });

  it('broadcasts an event to every connection', async () => {
    const one = await connect({ url });
    const two = await connect({ url });
    h.agent.sockets.broadcast('container_crashed', { container_id: 'c1', restarts: 3 });
    for (const c of [one, two]) assert.equal((await c.waitForEvent('container_crashed')).restarts, 3);
    one.close();
    two.close();
  });

  it('refuses a name registered twice, or one of the channel’s own event names', () => {
    const spec = (name: string) => defineCommand({ name, payload: Type.Object({}), handle: () => ({}) });
    assert.throws(() => h.agent.sockets.commands.register(spec('warm_up')), /registered twice/);
    assert.throws(() => h.agent.sockets.commands.register(spec('activity_log')), /reserved/);
    assert.throws(() => h.agent.sockets.commands.register(spec('execute')), /registered twice/);
  });
});

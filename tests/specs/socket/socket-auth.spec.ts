/**
 * Who may connect to the Socket.IO channel, through the agent process: the HTTP tokens in the handshake
 * (none, a wrong one: connect_error, nothing served), the browser guard on the transport, a token removed
 * from the tokens file disconnecting its sockets within the reload interval, a role lowered applying to
 * the next command.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { type AgentProcess, useAgent, useAgentWithTokens } from '../support/agent-process.js';
import { waitFor } from '../support/wait.js';
import { assertFailed, connect, refusedHandshake } from './socket-support.js';

/** The transport's own handshake request (Engine.IO polling), with the headers a browser would add. */
function pollingHandshake(agent: AgentProcess, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${agent.url}/socket.io/?EIO=4&transport=polling`, { headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Socket.IO channel: handshake with tokens', function () {
  this.timeout(60_000);
  const roles = { stays: ['viewer'], goes: ['viewer'], demoted: ['operator'] };
  const { agent, token, rewrite } = useAgentWithTokens(roles, { TOKENS_RELOAD_SECONDS: '1' });
  const keep = () => token('stays');

  it('refuses a handshake without a token, with a wrong one, or with a token that is not a string', async () => {
    const none = await refusedHandshake(agent);
    assert.equal(none.data.error_type, 'unauthorized');
    assert.match(none.message, /needs a token: connect with auth: \{ token \}/);
    const wrong = await refusedHandshake(agent, { token: 'x'.repeat(40) });
    assert.equal(wrong.data.error_type, 'unauthorized');
    assert.match(wrong.message, /not valid/);
    const notString = await refusedHandshake(agent, { token: 42 as unknown as string });
    assert.match(notString.message, /as a string/);
    const header = await refusedHandshake(agent, { extraHeaders: { authorization: 'Basic abc' } });
    assert.match(header.message, /Bearer <token>/);
  });

  it('accepts the token as an Authorization header too', async () => {
    const client = await connect(agent, { extraHeaders: { authorization: `Bearer ${keep()}` } });
    assert.equal(client.welcome.role, 'viewer');
    client.close();
  });

  it('refuses the transport to a web page of another site (403), before any session', async () => {
    const cross = await pollingHandshake(agent, { origin: 'http://evil.example' });
    assert.equal(cross.status, 403);
    assert.match(cross.body, /web pages of other sites are refused/);
    const site = await pollingHandshake(agent, { 'sec-fetch-site': 'cross-site' });
    assert.equal(site.status, 403);
    const plain = await pollingHandshake(agent, {});
    assert.equal(plain.status, 200, plain.body);
    const viaClient = await refusedHandshake(agent, {
      token: keep(),
      transports: ['polling'],
      extraHeaders: { origin: 'http://evil.example' },
    });
    assert.ok(viaClient instanceof Error);
  });

  it('disconnects the sockets of a token removed from the file within the reload interval, and keeps the others', async () => {
    const staying = await connect(agent, { token: keep() });
    const going = await connect(agent, { token: token('goes') });
    const gone = new Promise<string>((resolve) => going.socket.once('disconnect', resolve));
    rewrite({ stays: roles.stays, demoted: roles.demoted });
    const reason = await gone;
    assert.equal(reason, 'io server disconnect');
    const told = going.events('error').at(-1);
    assert.equal(told.error_type, 'unauthorized');
    assert.match(told.message, /revoked/);
    const again = await refusedHandshake(agent, { token: token('goes') });
    assert.equal(again.data.error_type, 'unauthorized');
    assert.ok(staying.socket.connected);
    assert.equal((await staying.command('list_executions', { limit: 1 })).ok, true);
    staying.close();
  });

  it('applies a role lowered in the file to the next command, without a reconnect', async () => {
    const client = await connect(agent, { token: token('demoted') });
    assert.equal(client.welcome.role, 'operator');
    const before = await client.command('rollback_execution', { execution_id: 'no-such-execution' });
    assertFailed(before, 'not_found'); // allowed to ask; there is nothing to roll back
    rewrite({ stays: roles.stays, demoted: ['viewer'] });
    await waitFor(async () => {
      const ack = await client.command('rollback_execution', { execution_id: 'no-such-execution' });
      return ack.ok === false && ack.error.error_type === 'forbidden';
    }, 'the lowered role to apply');
    assert.ok(client.socket.connected);
    client.close();
  });
});

describe('Socket.IO channel: handshake without tokens', function () {
  this.timeout(30_000);
  const agent = useAgent();

  it('answers only loopback Host names, as HTTP does', async () => {
    const foreign = await pollingHandshake(agent, { host: 'rebound.example:80' });
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /not a loopback name/);
    const local = await pollingHandshake(agent, { host: `localhost:${agent.port}` });
    assert.equal(local.status, 200);
  });
});

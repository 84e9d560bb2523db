/**
 * A flood of concurrent submissions beyond the queue bound, and bursts of one Idempotency-Key: exactly the
 * accepted executions exist, each one whole; the rest get 429 with Retry-After and leave nothing behind,
 * not even their idempotency key.
 */
import assert from 'node:assert/strict';
import { useAgent, waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { isAlive, stepPid, uniqueName } from '../http/http-support.js';
import { waitFor } from '../support/wait.js';
import {
  assertInvariants,
  assertRefused,
  assertWellFormed,
  executionCount,
  postJson,
  raw,
  type RawReply,
  useWitness,
} from './hostile-support.js';

const MAX_CONCURRENT = 1;
const MAX_QUEUED = 5;
const FLOOD = 50;

describe(`hostile input: a flood of executes (MAX_CONCURRENT_EXECUTIONS=${MAX_CONCURRENT}, MAX_QUEUED_EXECUTIONS=${MAX_QUEUED})`, function () {
  this.timeout(60_000);
  const agent = useAgent({
    env: { MAX_CONCURRENT_EXECUTIONS: String(MAX_CONCURRENT), MAX_QUEUED_EXECUTIONS: String(MAX_QUEUED) },
  });
  const witness = useWitness(agent);
  const accepted: string[] = [];
  const slow = () => ({
    wpk_content: pkg(uniqueName('slow'), [shellStep('nap', ['sleep', '30']), shellStep('after', ['echo', 'after'])]),
  });

  after(async () => {
    // Leave nothing running, even when a test failed half-way.
    for (const id of accepted) await agent.request('POST', `/execute/${id}/cancel`).catch(() => undefined);
  });

  it(`accepts exactly ${MAX_CONCURRENT + MAX_QUEUED} of ${FLOOD} concurrent executes and answers the rest 429 rate_limited with Retry-After`, async () => {
    const before = await executionCount(agent);
    const replies = await Promise.all(Array.from({ length: FLOOD }, () => postJson(agent, '/execute', slow())));
    const refused: RawReply[] = [];
    for (const r of replies) {
      assertWellFormed(r, 'flooded /execute');
      if (r.status === 202) accepted.push(r.body.execution_id);
      else {
        assertRefused(r, 'flooded /execute', 429, 'rate_limited');
        assert.ok(Number(r.headers['retry-after']) > 0, `Retry-After: ${r.headers['retry-after']}`);
        assert.match(r.body.message, /queue is full/);
        refused.push(r);
      }
    }
    assert.equal(accepted.length, MAX_CONCURRENT + MAX_QUEUED, `accepted ${accepted.length}`);
    assert.equal(refused.length, FLOOD - accepted.length);
    assert.equal(new Set(accepted).size, accepted.length, 'every accepted execution has its own id');

    // Exactly the accepted ones are stored, each whole: its record, its steps, its package.
    assert.equal(await executionCount(agent), before + accepted.length);
    const list = await raw(agent, 'GET', `/executions?limit=500`);
    const listed = new Set(list.body.executions.map((e: { execution_id: string }) => e.execution_id));
    for (const id of accepted) {
      assert.ok(listed.has(id), `accepted ${id} is not listed`);
      const rec = await raw(agent, 'GET', `/execute/${id}`);
      assert.equal(rec.status, 200);
      assert.ok(['pending', 'running'].includes(rec.body.status), rec.body.status);
      assert.deepEqual(
        rec.body.steps.map((s: { name: string }) => s.name),
        ['nap', 'after'],
        'a stored execution has all its steps',
      );
    }
    const health = await raw(agent, 'GET', '/health');
    assert.equal(health.body.active_executions, MAX_CONCURRENT);
    assert.equal(health.body.queued_executions, MAX_QUEUED);
    await assertInvariants(agent, witness);
  });

  it('keeps refusing while the queue is full, and does not keep the Idempotency-Key of a refused request', async () => {
    const before = await executionCount(agent);
    const body = slow();
    const key = uniqueName('flood-key');
    const r = await postJson(agent, '/execute', body, { 'Idempotency-Key': key });
    assertRefused(r, 'execute with a key on a full queue', 429, 'rate_limited');
    assert.equal(await executionCount(agent), before);
    // A cancelled queued execution frees a place: the same key and body are now accepted as new.
    const freed = accepted.pop()!;
    assert.equal((await raw(agent, 'POST', `/execute/${freed}/cancel`)).status, 202);
    await waitForStatus(agent, freed, ['cancelled']);
    const again = await postJson(agent, '/execute', body, { 'Idempotency-Key': key });
    assert.equal(again.status, 202, `the key of a refused request was kept: ${again.text}`);
    accepted.push(again.body.execution_id);
    assert.equal(await executionCount(agent), before + 1);
    await assertInvariants(agent, witness);
  });

  it('cancels every accepted execution, queued ones at once and the running one with its process', async () => {
    const running = (await raw(agent, 'GET', '/executions?status=running')).body.executions.map(
      (e: { execution_id: string }) => e.execution_id,
    );
    assert.equal(running.length, MAX_CONCURRENT);
    const pid = await stepPid(agent, running[0], 'nap');
    for (const id of accepted) {
      const r = await raw(agent, 'POST', `/execute/${id}/cancel`);
      assert.ok([202, 409].includes(r.status), r.text);
    }
    for (const id of accepted) await waitForStatus(agent, id, ['cancelled']);
    await waitFor(() => !isAlive(pid), `the running step's process ${pid} to be stopped`);
    const health = await raw(agent, 'GET', '/health');
    assert.equal(health.body.active_executions, 0);
    assert.equal(health.body.queued_executions, 0);
    await assertInvariants(agent, witness);
  });

  it('answers a concurrent burst of one Idempotency-Key and one body with one 202 and the same execution everywhere else', async () => {
    const before = await executionCount(agent);
    const body = { wpk_content: pkg(uniqueName('burst'), [shellStep('hi', ['echo', 'hi'])]) };
    const key = uniqueName('burst-key');
    const replies = await Promise.all(
      Array.from({ length: 30 }, () => postJson(agent, '/execute', body, { 'Idempotency-Key': key })),
    );
    for (const r of replies) assertWellFormed(r, 'idempotent burst');
    assert.deepEqual(replies.map((r) => r.status).sort(), [...Array(29).fill(200), 202]);
    assert.equal(new Set(replies.map((r) => r.body.execution_id)).size, 1);
    await waitForStatus(agent, replies[0].body.execution_id, ['completed']);
    assert.equal(await executionCount(agent), before + 1);
    await assertInvariants(agent, witness);
  });

  it('answers a concurrent burst of one Idempotency-Key with two bodies with one execution: 200 for its body, 409 for the other', async () => {
    const before = await executionCount(agent);
    const name = uniqueName('burst2');
    const bodies = [
      { wpk_content: pkg(name, [shellStep('hi', ['echo', 'one'])]) },
      { wpk_content: pkg(name, [shellStep('hi', ['echo', 'two'])]) },
    ];
    const key = uniqueName('burst2-key');
    const sent = Array.from({ length: 30 }, (_, i) => i % 2);
    const replies = await Promise.all(
      sent.map((b) => postJson(agent, '/execute', bodies[b], { 'Idempotency-Key': key })),
    );
    for (const r of replies) assertWellFormed(r, 'idempotent burst with two bodies');
    const winners = replies.flatMap((r, i) => (r.status === 202 ? [sent[i]] : []));
    assert.equal(winners.length, 1, `202s: ${replies.map((r) => r.status).join(',')}`);
    const id = replies.find((r) => r.status === 202)!.body.execution_id;
    replies.forEach((r, i) => {
      if (r.status === 202) return;
      if (sent[i] === winners[0]) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.execution_id, id);
      } else {
        assertRefused(r, 'the other body under the same key', 409, 'conflict');
        assert.equal(r.body.details.execution_id, id);
      }
    });
    await waitForStatus(agent, id, ['completed']);
    assert.equal(await executionCount(agent), before + 1);
    await assertInvariants(agent, witness);
  });
});

import assert from 'node:assert/strict';
import { AgentError } from '../../../adapters/errors.js';
import { callsMade, step, useEngine, wpk } from './harness.js';

const isRateLimited = (err: unknown) => err instanceof AgentError && err.type === 'rate_limited' && err.status === 429;

describe('engine: bounded concurrency and queue', () => {
  const h = useEngine();

  it('runs at most maxConcurrent executions, queues the rest and refuses work beyond maxQueued', async () => {
    await h.restart({ maxConcurrent: 2, maxQueued: 3 });
    const ids = Array.from({ length: 5 }, (_, i) => h.submit({ wpk: wpk([step('wait', 'hang', { n: i })]) }));
    const statuses = () => ids.map((id) => h.store.executions.get(id)!.status);
    assert.equal(h.engine.activeCount, 2);
    assert.equal(h.engine.queuedCount, 3);
    await callsMade(h, 'hang', 2);
    assert.deepEqual(statuses(), ['running', 'running', 'pending', 'pending', 'pending']);
    assert.deepEqual(
      h.callsOf('hang').map((c) => c.input.n),
      [0, 1],
    );

    assert.throws(() => h.submit({ wpk: wpk([step('late', 'ok')]) }), isRateLimited);
    assert.equal(h.store.executions.count(), 5, 'a refused execution is not stored');

    // Ending one running execution starts the oldest queued one, and frees a queue slot.
    h.engine.cancel(ids[0]);
    assert.equal((await h.finished(ids[0])).status, 'cancelled');
    await callsMade(h, 'hang', 3);
    assert.equal(h.callsOf('hang')[2].input.n, 2);
    assert.deepEqual(statuses(), ['cancelled', 'running', 'running', 'pending', 'pending']);
    assert.equal(h.engine.activeCount, 2);
    const sixth = h.submit({ wpk: wpk([step('wait', 'hang', { n: 5 })]) });
    assert.equal(h.store.executions.get(sixth)!.status, 'pending');
    assert.throws(() => h.submit({ wpk: wpk([step('late', 'ok')]) }), isRateLimited);

    for (const id of [...ids, sixth]) if (h.store.executions.get(id)!.status === 'pending') h.engine.cancel(id);
    for (const id of [...ids, sixth]) if (h.store.executions.get(id)!.status === 'running') h.engine.cancel(id);
    const ends = await Promise.all([...ids, sixth].map((id) => h.finished(id)));
    assert.ok(ends.every((r) => r.status === 'cancelled'));
    assert.equal(h.callsOf('hang').length, 3, 'queued executions cancelled before they started never ran');
  });

  it('accepts an execution that can start at once even when maxQueued is 0', async () => {
    await h.restart({ maxConcurrent: 1, maxQueued: 0 });
    const first = h.submit({ wpk: wpk([step('wait', 'hang')]) });
    await callsMade(h, 'hang', 1);
    assert.equal(h.store.executions.get(first)!.status, 'running');
    assert.throws(() => h.submit({ wpk: wpk([step('a', 'ok')]) }), isRateLimited, 'no free slot and no queue');
    h.engine.cancel(first);
    await h.finished(first);
    const second = await h.run({ wpk: wpk([step('a', 'ok', { value: 2 })]) });
    assert.equal(second.status, 'completed');
  });

  it('refuses new executions with 503 once shutdown began', async () => {
    const stopping = h.engine.shutdown();
    assert.throws(
      () => h.submit({ wpk: wpk([step('a', 'ok')]) }),
      (err: unknown) => err instanceof AgentError && err.status === 503,
    );
    await stopping;
  });
});

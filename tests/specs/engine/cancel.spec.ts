import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { testAdapter } from '../support/test-adapter.js';
import { AgentError } from '../../../adapters/errors.js';
import { ABANDON_AFTER_ABORT_MS } from '../../../services/runtime-agent/src/engine/step-runner.js';
import { callsMade, step, useEngine, wpk } from './harness.js';
import { waitFor } from '../support/wait.js';

describe('engine: cancel', () => {
  const h = useEngine();

  it('aborts the running step, cancels the rest and does not roll back on its own', async () => {
    const id = h.submit({
      wpk: wpk(
        [
          step('made', 'create', { name: 'made' }),
          step('wait', 'hang', {}, { retries: { count: 3, delayMs: 1 } }),
          step('later', 'record'),
        ],
        { rollback: { enabled: true } },
      ),
    });
    const [hang] = await callsMade(h, 'hang');
    const answered = h.engine.cancel(id);
    assert.equal(answered.status, 'running', 'cancel of a running execution answers before the step stopped');
    const rec = await h.finished(id);
    assert.ok(hang.abortedAt, 'the action saw its signal abort');
    assert.equal(rec.status, 'cancelled');
    assert.equal((rec.error as any).type, 'cancelled');
    assert.equal((rec.error as any).step, 'wait');
    assert.deepEqual(
      rec.steps.map((s) => [s.name, s.status]),
      [
        ['made', 'succeeded'],
        ['wait', 'cancelled'],
        ['later', 'not_run'],
      ],
    );
    assert.equal(rec.steps[1].attempts, 1, 'a cancel is never retried');
    assert.equal(rec.rollback.status, 'not_started');
    assert.deepEqual(rec.rollback.steps, []);
    assert.equal(h.callsOf('delete').length, 0);
    assert.equal(h.callsOf('record').length, 0);

    // A cancelled run can be rolled back on request.
    h.engine.rollback(id);
    const rolled = await h.finished(id);
    assert.equal(rolled.status, 'rolled_back');
    assert.equal(rolled.rollback.trigger, 'manual');
    assert.deepEqual(
      h.callsOf('delete').map((c) => c.input),
      [{ id: 'id-made' }],
    );
  });

  it('stops waiting for a step that ignores the abort after ABANDON_AFTER_ABORT_MS; the steps before it left no listener behind', async () => {
    const listeners: number[] = [];
    let deafStarted = false;
    const deaf = testAdapter('deaf', 'test double', {
      count: {
        description: 'notes the abort listeners on its signal',
        async run(ctx) {
          listeners.push(getEventListeners(ctx.signal, 'abort').length);
          return {};
        },
      },
      ignore: {
        description: 'never settles and never looks at its signal',
        run: () => ((deafStarted = true), new Promise(() => {})),
      },
    });
    await h.restart({}, [deaf]);
    const counters = Array.from({ length: 20 }, (_, i) => ({ name: `c${i}`, adapter: 'deaf', action: 'count' }));
    const id = h.submit({ wpk: wpk([...counters, { name: 'deaf', adapter: 'deaf', action: 'ignore' }]) });
    await waitFor(() => deafStarted, 'the deaf step to start', 5000);
    const cancelledAt = Date.now();
    h.engine.cancel(id);
    const rec = await h.finished(id, ABANDON_AFTER_ABORT_MS + 5000);
    assert.equal(rec.status, 'cancelled');
    assert.equal(rec.steps[20].status, 'cancelled');
    assert.ok(Date.now() - cancelledAt >= ABANDON_AFTER_ABORT_MS - 100, 'it waited for the action first');
    assert.ok(
      Math.max(...listeners) <= 1,
      `finished steps leave no abort listener on the execution's signal: ${listeners.join(', ')}`,
    );
  });

  it('cancels a pending execution at once, and it never runs', async () => {
    await h.restart({ maxConcurrent: 1 });
    const blocker = h.submit({ wpk: wpk([step('wait', 'hang')]) });
    const queued = h.submit({ wpk: wpk([step('a', 'record'), step('b', 'record')]) });
    assert.equal(h.store.executions.get(queued)!.status, 'pending');
    const answered = h.engine.cancel(queued);
    assert.equal(answered.status, 'cancelled');
    const rec = h.record(queued);
    assert.equal(rec.status, 'cancelled');
    assert.equal((rec.error as any).type, 'cancelled');
    assert.ok(rec.finished_at);
    assert.equal(rec.started_at, null);
    assert.deepEqual(
      rec.steps.map((s) => s.status),
      ['not_run', 'not_run'],
    );
    assert.equal(h.engine.queuedCount, 0);
    assert.equal(h.engine.isLive(queued), false);

    h.engine.cancel(blocker);
    assert.equal((await h.finished(blocker)).status, 'cancelled');
    assert.equal(h.callsOf('record').length, 0, 'the cancelled execution was not started when the slot freed up');
  });

  it('answers conflict for a finished execution and not_found for an unknown one', async () => {
    const rec = await h.run({ wpk: wpk([step('a', 'ok')]) });
    assert.throws(
      () => h.engine.cancel(rec.execution_id),
      (err: unknown) => err instanceof AgentError && err.type === 'conflict' && err.status === 409,
    );
    assert.throws(
      () => h.engine.cancel('no-such-id'),
      (err: unknown) => err instanceof AgentError && err.type === 'not_found',
    );
  });
});

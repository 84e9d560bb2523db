/**
 * A read-only step's outcome and the next read-only step's start are written once that next step's action has
 * been called (engine/held-writes.ts): the record, the journal and the log must still read as if they had been
 * written in order, and nothing may stay held while a step runs.
 */
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { step, useEngine, wpk } from './harness.js';

describe('engine: the writes held while the next request goes out', () => {
  const h = useEngine();

  const journalOf = (id: string) =>
    h.store.journal
      .page({ since: 0, executionId: id, limit: 1000 })
      .filter((e) => e.type.startsWith('step.'))
      .map((e) => `${e.type} ${e.step}`);

  it('keeps the journal and the log in step order across read-only, logging, failing and skipped steps', async () => {
    const rec = await h.run({
      wpk: wpk(
        [
          step('a', 'ok', { value: 1 }),
          step('b', 'ok', { value: 2, delayMs: 20 }),
          step('c', 'leak', { token: 'not-a-secret', note: 'n' }),
          step('d', 'ok', { value: 4 }, { when: { variable: 'params.never', operator: 'is_true' } }),
          step('e', 'ok', { value: 5, delayMs: 20 }),
          step('f', 'fail', { times: 1, key: 'held-f', type: 'adapter_error' }, { onFailure: 'continue' }),
          step('g', 'record', { value: 7 }),
          step('h', 'ok', { value: 8 }),
        ],
        { parameters: { never: { type: 'boolean', default: false } } },
      ),
    });
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    assert.deepEqual(journalOf(rec.execution_id), [
      'step.started a',
      'step.finished a',
      'step.started b',
      'step.finished b',
      'step.started c',
      'step.finished c',
      'step.finished d',
      'step.started e',
      'step.finished e',
      'step.started f',
      'step.finished f',
      'step.started g',
      'step.finished g',
      'step.started h',
      'step.finished h',
    ]);
    // Every line of a step comes after the previous step's last line: the log reads step by step.
    const steps = h
      .logs(rec.execution_id)
      .map((l) => l.split(' ')[1])
      .filter((s) => s !== '-');
    const order = steps.filter((s, i) => i === 0 || s !== steps[i - 1]);
    assert.deepEqual(order, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], h.logs(rec.execution_id).join('\n'));
    for (const s of rec.steps.filter((x) => x.status === 'succeeded')) {
      assert.ok(s.started_at && s.finished_at && s.started_at <= s.finished_at, JSON.stringify(s));
    }
    assert.deepEqual(rec.steps[1].outputs, { value: 2 });
  });

  it("records a read-only step's outcome, and the next step's start, while that next step runs", async () => {
    const id = h.submit({ wpk: wpk([step('first', 'ok', { value: 'x' }), step('waits', 'hang', {})]) });
    await waitFor(() => h.callsOf('hang', id).length === 1, 'the second step to run');
    const running = await waitFor(() => {
      h.store.flush();
      const r = h.record(id);
      return r.steps[0].status === 'succeeded' && r.steps[1].status === 'running' ? r : undefined;
    }, 'the first step recorded as succeeded and the second as running, while the second runs');
    assert.deepEqual(running.steps[0].outputs, { value: 'x' });
    assert.deepEqual(journalOf(id), ['step.started first', 'step.finished first', 'step.started waits']);
    assert.ok(
      h.logs(id).some((l) => l === 'info first step succeeded'),
      h.logs(id).join('\n'),
    );
    h.engine.cancel(id);
    const rec = await h.finished(id);
    assert.equal(rec.status, 'cancelled');
    assert.deepEqual(journalOf(id).slice(3), ['step.finished waits']);
  });
});

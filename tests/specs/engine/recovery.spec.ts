import assert from 'node:assert/strict';
import { callsMade, startEngine, step, wpk, type Harness } from './harness.js';

/**
 * A crash, in-process: engine `before` is left running (never shut down) while
 * engine `after` opens the same store and recovers, as a restarted agent would.
 */
describe('engine: recovery after a crash', () => {
  let before: Harness;
  let after: Harness | undefined;
  beforeEach(() => {
    before = startEngine({ maxConcurrent: 1 });
    after = undefined;
  });
  afterEach(async () => {
    await after?.close(false);
    await before.close();
  });

  it('fails the running execution as interrupted, rolls it back once, and runs the pending one once', async () => {
    const running = before.submit({
      wpk: wpk([step('a', 'create', { name: 'a' }), step('b', 'hang'), step('c', 'record')], {
        rollback: { enabled: true },
      }),
    });
    const pending = before.submit({ wpk: wpk([step('p', 'create', { name: 'p' })]) });
    await callsMade(before, 'hang');

    after = startEngine({ maxConcurrent: 1 }, before.dir);
    assert.deepEqual(after.engine.recover(), { requeued: 1, interrupted: 1, rollbacks: 1 });
    const [rolled, done] = await Promise.all([after.finished(running), after.finished(pending)]);

    assert.equal(rolled.status, 'rolled_back');
    assert.equal((rolled.error as any).type, 'interrupted');
    assert.equal((rolled.error as any).step, 'b');
    assert.deepEqual(
      rolled.steps.map((s) => s.status),
      ['succeeded', 'abandoned', 'cancelled'],
    );
    assert.deepEqual(
      after.callsOf('delete').map((c) => c.input),
      [{ id: 'id-a' }],
      'compensated exactly once',
    );

    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(
      after.callsOf('create').map((c) => c.input.name),
      ['p'],
      'the pending execution ran once, after the restart',
    );
    assert.ok(after.logs(pending).some((l) => l.endsWith('requeued after agent restart')));
    assert.equal(
      new Set(after.store.getLogs(running, { since: 0, limit: 1000 }).map((l) => l.seq)).size,
      after.logs(running).length,
    );
  });

  it('resumes an interrupted rollback: the step that was running is abandoned, the rest run', async () => {
    const id = before.submit({
      wpk: wpk(
        [
          step('a', 'create', { name: 'a' }),
          step('b', 'ok', {}, { rollback: { action: 'hang' } }),
          step('c', 'fail', { times: 9 }),
        ],
        { rollback: { enabled: true } },
      ),
    });
    await callsMade(before, 'hang');
    assert.equal(before.store.getExecution(id)!.status, 'rolling_back');

    after = startEngine({}, before.dir);
    assert.deepEqual(after.engine.recover(), { requeued: 0, interrupted: 0, rollbacks: 1 });
    const rec = await after.finished(id);
    assert.equal(rec.status, 'rollback_failed');
    assert.deepEqual(
      rec.rollback.steps.map((s) => [s.name, s.status]),
      [
        ['b:rollback', 'abandoned'],
        ['a:rollback', 'succeeded'],
      ],
    );
    assert.equal(after.callsOf('hang').length, 0, 'a compensation that may have run is not run again');
    assert.deepEqual(
      after.callsOf('delete').map((c) => c.input),
      [{ id: 'id-a' }],
    );
  });
});

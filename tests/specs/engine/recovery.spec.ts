import assert from 'node:assert/strict';
import type { Adapter } from '../../../adapters/contract.js';
import { waitFor } from '../support/wait.js';
import { testAdapter } from '../support/test-adapter.js';
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
    assert.deepEqual(await after.engine.recover(), { requeued: 1, interrupted: 1, rollbacks: 1, orphans: 0 });
    const [rolled, done] = await Promise.all([after.finished(running), after.finished(pending)]);

    assert.equal(rolled.status, 'rolled_back');
    assert.equal((rolled.error as any).type, 'interrupted');
    assert.equal((rolled.error as any).step, 'b');
    assert.deepEqual(
      rolled.steps.map((s) => s.status),
      ['succeeded', 'abandoned', 'not_run'],
    );
    assert.equal(rolled.rollback.trigger, 'recovered');
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
      new Set(after.store.logs.page(running, { since: 0, limit: 1000 }).map((l) => l.seq)).size,
      after.logs(running).length,
    );
  });

  /**
   * `gate.undo` is a compensation that blocks while `gate.closed` (the crash happens then) and succeeds once
   * opened; every call is counted.
   */
  function gateAdapter(gate: { closed: boolean; calls: number }): Adapter {
    return testAdapter('gate', 'a compensation that blocks until opened', {
      undo: {
        description: 'blocks while the gate is closed',
        mutates: true,
        run(ctx) {
          gate.calls++;
          if (!gate.closed) return Promise.resolve({ undone: true });
          return new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
          );
        },
      },
    });
  }

  function crashingRollback(idempotent?: boolean) {
    return wpk(
      [
        step('a', 'create', { name: 'a' }),
        step(
          'b',
          'ok',
          {},
          { rollback: { adapter: 'gate', action: 'undo', ...(idempotent === undefined ? {} : { idempotent }) } },
        ),
        step('c', 'fail', { times: 9 }),
      ],
      { rollback: { enabled: true } },
    );
  }

  it('resumes an interrupted rollback and runs the interrupted compensation again, then the rest', async () => {
    const gate = { closed: true, calls: 0 };
    await before.close(false);
    before = startEngine({ maxConcurrent: 1 }, before.dir, [gateAdapter(gate)]);
    const id = before.submit({ wpk: crashingRollback() });
    await waitFor(() => gate.calls === 1, 'the compensation to start');
    assert.equal(before.store.executions.get(id)!.status, 'rolling_back');

    gate.closed = false;
    after = startEngine({}, before.dir, [gateAdapter(gate)]);
    assert.deepEqual(await after.engine.recover(), { requeued: 0, interrupted: 0, rollbacks: 1, orphans: 0 });
    const rec = await after.finished(id);
    assert.equal(rec.status, 'rolled_back', 'a crash alone does not make a rollback fail');
    assert.equal(rec.rollback.trigger, 'automatic', 'a resumed rollback keeps its trigger');
    assert.deepEqual(
      rec.rollback.steps.map((s) => [s.name, s.status]),
      [
        ['b:rollback', 'succeeded'],
        ['a:rollback', 'succeeded'],
      ],
    );
    assert.equal(gate.calls, 2, 'the interrupted compensation ran again after the restart');
    assert.deepEqual(
      after.callsOf('delete').map((c) => c.input),
      [{ id: 'id-a' }],
    );
    assert.ok(
      after.logs(id).some((l) => l.includes('resuming the rollback (automatic) interrupted by an agent restart')),
    );
  });

  it('does not run an interrupted compensation again when it says idempotent: false', async () => {
    const gate = { closed: true, calls: 0 };
    await before.close(false);
    before = startEngine({ maxConcurrent: 1 }, before.dir, [gateAdapter(gate)]);
    const id = before.submit({ wpk: crashingRollback(false) });
    await waitFor(() => gate.calls === 1, 'the compensation to start');

    gate.closed = false;
    after = startEngine({}, before.dir, [gateAdapter(gate)]);
    await after.engine.recover();
    const rec = await after.finished(id);
    assert.equal(rec.status, 'rollback_failed');
    assert.deepEqual(
      rec.rollback.steps.map((s) => [s.name, s.status]),
      [
        ['b:rollback', 'abandoned'],
        ['a:rollback', 'succeeded'],
      ],
    );
    assert.equal(gate.calls, 1, 'not run a second time');
    assert.ok(after.logs(id).some((l) => l.includes('idempotent: false')));
  });
});

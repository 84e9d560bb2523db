import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { AgentError } from '../../../adapters/errors.js';
import { callsMade, counterValue, startEngine, useEngine, step, wpk } from './harness.js';

const isConflict = (err: unknown) => err instanceof AgentError && err.type === 'conflict' && err.status === 409;

describe('engine: rollback', () => {
  const h = useEngine();

  it('rolls back succeeded steps in reverse order, then runs the rollback handlers in order', async () => {
    const rec = await h.run({
      wpk: wpk(
        [
          step('one', 'create', { name: 'one' }),
          step(
            'two',
            'record',
            { value: 2 },
            {
              rollback: {
                action: 'record',
                with: {
                  undo: 'two',
                  previous: '${{ steps.two.outputs.value }}',
                  failedStep: '${{ error.step }}',
                  errorType: '${{ error.type }}',
                  why: 'because ${{ error.message }}',
                },
              },
            },
          ),
          step('three', 'create', { name: 'three' }, { rollback: 'none' }),
          step(
            'skipped',
            'ok',
            {},
            {
              when: { variable: 'params.never', operator: 'is_true' },
              rollback: { action: 'record', with: { undo: 'skipped' } },
            },
          ),
          step(
            'optional',
            'fail',
            { times: 99 },
            { onFailure: 'continue', rollback: { action: 'record', with: { undo: 'optional' } } },
          ),
          step('four', 'create', { name: 'four' }),
          step(
            'boom',
            'fail',
            { times: 99, type: 'command_failed', message: 'exit 3' },
            { rollback: { action: 'record', with: { undo: 'boom' } } },
          ),
          step('never', 'create', { name: 'never' }),
        ],
        {
          rollback: {
            enabled: true,
            handlers: [
              step('notify-1', 'record', { undo: 'handler-1', step: '${{ error.step }}' }),
              step('notify-2', 'record', { undo: 'handler-2' }),
            ],
          },
        },
      ),
      params: { never: false },
    });
    assert.equal(rec.status, 'rolled_back');
    assert.deepEqual(
      rec.error,
      { type: 'command_failed', message: 'exit 3', step: 'boom' },
      'the original failure stays on the record',
    );
    assert.equal(rec.rollback.status, 'succeeded');
    assert.equal(rec.rollback.trigger, 'automatic');

    const undone = h.calls
      .filter((c) => c.action === 'delete' || (c.action === 'record' && c.input.undo))
      .map((c) => (c.action === 'delete' ? `delete ${c.input.id}` : `record ${c.input.undo}`));
    assert.deepEqual(undone, ['delete id-four', 'record two', 'delete id-one', 'record handler-1', 'record handler-2']);
    assert.deepEqual(
      rec.rollback.steps.map((s) => [s.name, s.action, s.compensates ?? null, s.status]),
      [
        ['four:rollback', 'delete', 'four', 'succeeded'],
        ['two:rollback', 'record', 'two', 'succeeded'],
        ['one:rollback', 'delete', 'one', 'succeeded'],
        ['notify-1', 'record', null, 'succeeded'],
        ['notify-2', 'record', null, 'succeeded'],
      ],
    );
    const twoUndo = h.calls.find((c) => c.input.undo === 'two')!;
    assert.deepEqual(twoUndo.input, {
      undo: 'two',
      previous: 2,
      failedStep: 'boom',
      errorType: 'command_failed',
      why: 'because exit 3',
    });
    assert.equal(h.calls.find((c) => c.input.undo === 'handler-1')!.input.step, 'boom');
    assert.equal(h.callsOf('create').length, 3, 'the step after the failure never ran');
    assert.equal(
      await counterValue(h.metrics, 'workflow_rollbacks_total', {
        workflow_name: 'engine-test',
        result: 'rolled_back',
      }),
      1,
    );
  });

  it('gives a compensation without its own timeout the workflow deadline per attempt, so a hung one cannot pin the rollback', async () => {
    const rec = await h.run({
      wpk: wpk(
        [
          step('one', 'create', { name: 'one' }, { rollback: { action: 'hang', with: {} } }),
          step('boom', 'fail', { times: 99 }),
        ],
        { timeoutSeconds: 0.3, rollback: { enabled: true, handlers: [step('after', 'record', { value: 'ran' })] } },
      ),
    });
    assert.equal(rec.status, 'rollback_failed');
    assert.deepEqual(
      rec.rollback.steps.map((s) => [s.name, s.status, (s.error as any)?.type ?? null]),
      [
        ['one:rollback', 'failed', 'timeout'],
        ['after', 'succeeded', null],
      ],
    );
  });

  it('keeps going past a failing compensation and ends rollback_failed with every outcome recorded', async () => {
    const rec = await h.run({
      wpk: wpk(
        [
          step('a', 'create', { name: 'a' }),
          step(
            'b',
            'create',
            { name: 'b' },
            { rollback: { action: 'fail', with: { times: 99, message: 'cannot undo b' } } },
          ),
          step('c', 'fail', { times: 99 }),
        ],
        {
          rollback: {
            enabled: true,
            handlers: [
              step('h', 'fail', { times: 99, message: 'handler broke' }),
              step('h2', 'record', { undo: 'h2' }),
            ],
          },
        },
      ),
    });
    assert.equal(rec.status, 'rollback_failed');
    assert.equal(rec.rollback.status, 'failed');
    assert.deepEqual(
      rec.rollback.steps.map((s) => [s.name, s.status, (s.error as any)?.message ?? null]),
      [
        ['b:rollback', 'failed', 'cannot undo b'],
        ['a:rollback', 'succeeded', null],
        ['h', 'failed', 'handler broke'],
        ['h2', 'succeeded', null],
      ],
    );
    assert.deepEqual(
      h.callsOf('delete').map((c) => c.input),
      [{ id: 'id-a' }],
    );
    assert.equal(h.callsOf('record').length, 1);
    const logs = h.logs(rec.execution_id);
    assert.ok(logs.some((l) => l.includes('rollback finished: 2 succeeded, 2 failed of 4 step(s)')));
    assert.ok(logs.some((l) => l.startsWith('error b:rollback') && l.includes('cannot undo b')));
    assert.equal(
      await counterValue(h.metrics, 'workflow_rollbacks_total', {
        workflow_name: 'engine-test',
        result: 'rollback_failed',
      }),
      1,
    );
  });

  it('does not roll back when rollbackOnFailure: false overrides rollback.enabled, and rolls back on request later', async () => {
    const pkg = wpk([step('a', 'create', { name: 'a' }), step('b', 'fail', { times: 99 })], {
      rollback: { enabled: true, handlers: [step('h', 'record', { undo: 'h' })] },
    });
    const rec = await h.run({ wpk: pkg, rollbackOnFailure: false });
    assert.equal(rec.status, 'failed');
    assert.equal(rec.rollback_on_failure, false);
    assert.equal(rec.rollback.status, 'not_started');
    assert.equal(h.callsOf('delete').length, 0);
    assert.equal(h.callsOf('record').length, 0);

    const answer = h.engine.rollback(rec.execution_id);
    assert.equal(answer.status, 'rolling_back');
    const rolled = await h.finished(rec.execution_id);
    assert.equal(rolled.status, 'rolled_back');
    assert.equal(rolled.rollback.trigger, 'manual');
    assert.deepEqual(
      h.calls.filter((c) => c.action === 'delete' || c.action === 'record').map((c) => c.action),
      ['delete', 'record'],
    );
  });

  it('rolls back when rollbackOnFailure: true although the package does not enable it', async () => {
    const rec = await h.run({
      wpk: wpk([step('a', 'create', { name: 'a' }), step('b', 'fail', { times: 99 })]),
      rollbackOnFailure: true,
    });
    assert.equal(rec.status, 'rolled_back');
    assert.equal(h.callsOf('delete').length, 1);
  });

  it('rolls back a completed execution on request, once', async () => {
    const rec = await h.run({ wpk: wpk([step('a', 'create', { name: 'a' }), step('b', 'create', { name: 'b' })]) });
    assert.equal(rec.status, 'completed');
    // The clock moves past the run's end first, so a rollback that wrote its own end would show.
    await waitFor(() => Date.now() > Date.parse(rec.finished_at!) + 2, 'a later millisecond');
    h.engine.rollback(rec.execution_id);
    assert.throws(() => h.engine.rollback(rec.execution_id), isConflict, 'a rollback already under way');
    const rolled = await h.finished(rec.execution_id);
    assert.equal(rolled.status, 'rolled_back');
    assert.equal(rolled.finished_at, rec.finished_at, "a rollback by hand leaves the run's own end (and duration)");
    assert.ok(
      rolled.rollback.steps.every((s) => s.finished_at! > rec.finished_at!),
      'the compensations have theirs',
    );
    assert.deepEqual(
      h.callsOf('delete').map((c) => c.input.id),
      ['id-b', 'id-a'],
    );
    assert.equal(rolled.rollback.trigger, 'manual');
    assert.throws(
      () => h.engine.rollback(rec.execution_id),
      isConflict,
      'a rolled-back execution cannot be rolled back again',
    );
    assert.equal(h.callsOf('delete').length, 2);
  });

  it('answers conflict when there is nothing to roll back or the execution is pending or running', async () => {
    const plain = await h.run({
      wpk: wpk([step('a', 'ok'), step('b', 'create', { name: 'b' }, { rollback: 'none' })]),
    });
    assert.throws(
      () => h.engine.rollback(plain.execution_id),
      (err: unknown) => isConflict(err) && /nothing to roll back/.test((err as Error).message),
    );
    assert.equal(h.record(plain.execution_id).status, 'completed', 'a refused rollback leaves the record alone');

    const failedEarly = await h.run({
      wpk: wpk([step('a', 'fail', { times: 99 }), step('b', 'create', { name: 'b' })]),
    });
    assert.throws(() => h.engine.rollback(failedEarly.execution_id), isConflict, 'no step succeeded');

    const slow = startEngine({ maxConcurrent: 1 });
    try {
      const running = slow.submit({ wpk: wpk([step('a', 'create', { name: 'a' }), step('wait', 'hang')]) });
      const pending = slow.submit({ wpk: wpk([step('a', 'create', { name: 'a' })]) });
      await callsMade(slow, 'hang');
      assert.throws(() => slow.engine.rollback(running), isConflict);
      assert.throws(() => slow.engine.rollback(pending), isConflict);
      assert.throws(
        () => slow.engine.rollback('no-such-id'),
        (err: unknown) => err instanceof AgentError && err.type === 'not_found',
      );
    } finally {
      await slow.close();
    }
  });

  it('rolls back a dry run as a dry run', async () => {
    const rec = await h.run({
      wpk: wpk([step('a', 'create', { name: 'a' }), step('b', 'fail', { times: 99 })], { rollback: { enabled: true } }),
      dryRun: true,
    });
    assert.equal(rec.status, 'rolled_back');
    assert.equal(rec.dry_run, true);
    assert.equal(h.callsOf('create').length, 0, 'the mutating step did not run in the dry run');
    assert.equal(h.callsOf('delete').length, 0, 'the compensation did not run for real');
    const dry = h.callsOf('delete:dry');
    assert.equal(dry.length, 1);
    assert.equal(dry[0].dryRun, true);
    assert.deepEqual(dry[0].input, { id: 'id-example' }, 'compensated from the example output');

    const done = await h.run({ wpk: wpk([step('a', 'create', { name: 'a' })]), dryRun: true });
    h.engine.rollback(done.execution_id);
    assert.equal((await h.finished(done.execution_id)).status, 'rolled_back');
    assert.equal(h.callsOf('delete').length, 0, 'a manual rollback of a dry run is dry too');
    assert.equal(h.callsOf('delete:dry').length, 2);
    assert.ok(h.callsOf('delete:dry').every((c) => c.dryRun));
  });
});

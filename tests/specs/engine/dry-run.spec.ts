import assert from 'node:assert/strict';
import { useEngine, step, wpk } from './harness.js';

describe('engine: dry run', () => {
  const h = useEngine();

  it('does not run a mutating action that has no dry-run hook and fills its outputs from the example', async () => {
    const rec = await h.run({
      wpk: wpk([
        step('read', 'ok', { value: 'real read' }),
        step('write', 'record', { value: 'would change things', from: '${{ steps.read.outputs.value }}' }),
        step('hooked', 'dryable', { value: 1 }),
        step('use', 'ok', {
          value: '${{ steps.write.outputs.value }}/${{ steps.hooked.outputs.value }}/${{ execution.dry_run }}',
        }),
      ]),
      dryRun: true,
    });
    assert.equal(rec.status, 'completed');
    assert.equal(rec.dry_run, true);
    assert.equal(h.callsOf('record').length, 0, 'the mutating action did not run');
    assert.equal(h.callsOf('dryable').length, 0, 'the hooked action did not run for real');

    // Non-mutating actions run for real, and later steps read their real outputs.
    assert.deepEqual(
      h.callsOf('ok').map((c) => [c.step, c.dryRun]),
      [
        ['read', true],
        ['use', true],
      ],
    );
    assert.deepEqual(rec.steps[0].outputs, { value: 'real read' });
    assert.equal(rec.steps[0].outputs_source, 'run');

    // The mutating step's outputs are the action's example, and marked as such.
    assert.equal(rec.steps[1].status, 'succeeded');
    assert.deepEqual(rec.steps[1].outputs, { value: 'example' });
    assert.equal(rec.steps[1].outputs_source, 'example');
    const rows = h.store.steps.of(rec.execution_id);
    assert.deepEqual(
      rows.map((s) => s.outputsSource),
      ['run', 'example', 'dry_run', 'run'],
    );
    assert.deepEqual(rec.steps[1].input, { value: 'would change things', from: 'real read' });
    assert.ok(
      h
        .logs(rec.execution_id)
        .some((l) =>
          l.includes('dry run: would run fake.record with {"value":"would change things","from":"real read"}'),
        ),
    );

    // A dry-run hook is called with ctx.dryRun and its outputs are used.
    const [hook] = h.callsOf('dryable:dry');
    assert.equal(hook.dryRun, true);
    assert.deepEqual(rec.steps[2].outputs, { value: 'from-dry-run' });
    assert.deepEqual(rec.steps[3].outputs, { value: 'example/from-dry-run/true' });
  });

  it('runs the same package for real when dryRun is false', async () => {
    const rec = await h.run({ wpk: wpk([step('write', 'record', { value: 'changed' }), step('hooked', 'dryable')]) });
    assert.equal(rec.dry_run, false);
    assert.deepEqual(
      h.calls.map((c) => [c.action, c.dryRun]),
      [
        ['record', false],
        ['dryable', false],
      ],
    );
    assert.deepEqual(rec.steps[0].outputs, { value: 'changed' });
    assert.deepEqual(
      h.store.steps.of(rec.execution_id).map((s) => s.outputsSource),
      ['run', 'run'],
    );
  });
});

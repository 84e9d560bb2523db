import assert from 'node:assert/strict';
import { useEngine, step, wpk } from './harness.js';

describe('engine: sequential execution and templates', () => {
  const h = useEngine();

  it('runs steps one after another, each starting only after the previous one returned', async () => {
    const rec = await h.run({
      wpk: wpk([
        step('first', 'ok', { value: 1, delayMs: 60 }),
        step('second', 'ok', { value: 2, delayMs: 30 }),
        step('third', 'ok', { value: 3 }),
      ]),
    });
    assert.equal(rec.status, 'completed');
    assert.deepEqual(
      h.calls.map((c) => c.step),
      ['first', 'second', 'third'],
    );
    const [a, b, c] = h.calls;
    assert.ok(b.at >= a.endedAt!, 'second started before first returned');
    assert.ok(c.at >= b.endedAt!, 'third started before second returned');
    assert.deepEqual(
      rec.steps.map((s) => [s.name, s.status, s.attempts]),
      [
        ['first', 'succeeded', 1],
        ['second', 'succeeded', 1],
        ['third', 'succeeded', 1],
      ],
    );
    assert.equal(rec.steps_completed, 3);
    assert.equal(rec.steps_total, 3);
    assert.equal(rec.current_step, null);
    assert.equal(rec.error, null);
    assert.ok(rec.started_at && rec.finished_at);
  });

  it('feeds outputs into later steps: an exact template keeps its type, an embedded one is stringified', async () => {
    const produced = { n: 42, obj: { k: 'v', deep: [1, { x: true }] }, arr: ['a', 'b'], flag: false, nothing: null };
    const rec = await h.run({
      wpk: wpk([
        step('produce', 'ok', { value: produced }),
        step('consume', 'record', {
          num: '${{ steps.produce.outputs.value.n }}',
          obj: '${{ steps.produce.outputs.value.obj }}',
          arr: '${{ steps.produce.outputs.value.arr }}',
          flag: '${{ steps.produce.outputs.value.flag }}',
          padded: '  ${{ steps.produce.outputs.value.n }}  ',
          indexed: '${{ steps.produce.outputs.value.obj.deep[1].x }}',
          text: 'n=${{ steps.produce.outputs.value.n }} obj=${{ steps.produce.outputs.value.obj }} flag=${{steps.produce.outputs.value.flag}} arr=${{ steps.produce.outputs.value.arr }}',
          status: '${{ steps.produce.status }}',
          who: 'hello ${{ params.who }}',
          meta: '${{ workflow.name }}@${{ workflow.version }} dry=${{ execution.dry_run }}',
          exec: '${{ execution.id }}',
          flowmap: '{{ response.body.id }}',
          nested: { list: ['${{ steps.produce.outputs.value.arr[1] }}', 'x-${{ params.who }}'] },
        }),
      ]),
      params: { who: 'world' },
    });
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    const [input] = h.callsOf('record').map((c) => c.input);
    assert.equal(input.num, 42);
    assert.deepEqual(input.obj, produced.obj);
    assert.deepEqual(input.arr, ['a', 'b']);
    assert.equal(input.flag, false);
    assert.equal(input.padded, 42, 'surrounding whitespace does not make a template embedded');
    assert.equal(input.indexed, true);
    assert.equal(input.text, 'n=42 obj={"k":"v","deep":[1,{"x":true}]} flag=false arr=["a","b"]');
    assert.equal(input.status, 'succeeded');
    assert.equal(input.who, 'hello world');
    assert.equal(input.meta, 'engine-test@1.0.0 dry=false');
    assert.equal(input.exec, rec.execution_id);
    assert.equal(input.flowmap, '{{ response.body.id }}', 'a FlowRunner template without $ is left alone');
    assert.deepEqual(input.nested, { list: ['b', 'x-world'] });
    // The rendered input is what the record shows, and the produced outputs are stored.
    assert.deepEqual((rec.steps[1].input as any).obj, produced.obj);
    assert.deepEqual(rec.steps[0].outputs, { value: produced });
  });

  it('fails a step with an unresolved reference with template_error, without retrying it or running later steps', async () => {
    const rec = await h.run({
      wpk: wpk([
        step('a', 'ok', { value: 1 }),
        step('b', 'record', { x: '${{ steps.a.outputs.missing }}' }, { retries: { count: 3, delayMs: 1 } }),
        step('c', 'record', { x: 1 }),
      ]),
    });
    assert.equal(rec.status, 'failed');
    assert.equal((rec.error as any).type, 'template_error');
    assert.equal((rec.error as any).step, 'b');
    assert.match((rec.error as any).message, /steps\.a\.outputs\.missing/);
    assert.deepEqual(
      rec.steps.map((s) => [s.name, s.status, s.attempts]),
      [
        ['a', 'succeeded', 1],
        ['b', 'failed', 1],
        ['c', 'not_run', 0],
      ],
    );
    assert.equal((rec.steps[1].error as any).type, 'template_error');
    assert.equal(h.callsOf('record').length, 0, 'neither b nor c reached the action');
    assert.equal(h.logs(rec.execution_id).filter((l) => l.includes('retrying')).length, 0);
  });

  it('fails a malformed expression and an unknown parameter with template_error as well', async () => {
    const malformed = await h.run({
      wpk: wpk([step('a', 'record', { x: '${{ steps..a }}' }, { retries: { count: 2, delayMs: 1 } })]),
    });
    assert.equal((malformed.error as any).type, 'template_error');
    assert.equal(malformed.steps[0].attempts, 1);
    const unterminated = await h.run({ wpk: wpk([step('a', 'record', { x: 'oops ${{ params.x' })]), params: { x: 1 } });
    assert.equal((unterminated.error as any).type, 'template_error');
    const unknown = await h.run({ wpk: wpk([step('a', 'record', { x: '${{ params.nope }}' })]) });
    assert.equal((unknown.error as any).type, 'template_error');
    assert.equal(h.callsOf('record').length, 0);
  });
});

import assert from 'node:assert/strict';
import { useEngine, step, wpk } from './harness.js';

describe('engine: when conditions and onFailure', () => {
  const h = useEngine();

  it('skips a step whose when is false, and never compensates it', async () => {
    const rec = await h.run({
      wpk: wpk(
        [
          step('maybe', 'create', { name: 'maybe' }, { when: { variable: 'params.enabled', operator: 'is_true' } }),
          step('always', 'create', { name: 'always' }),
          step('boom', 'fail', { times: 9 }),
        ],
        {
          rollback: { enabled: true },
        },
      ),
      params: { enabled: false },
    });
    assert.equal(rec.steps[0].status, 'skipped');
    assert.equal(rec.steps[0].attempts, 0);
    assert.deepEqual(
      h.callsOf('create').map((c) => c.step),
      ['always'],
    );
    assert.equal(rec.status, 'rolled_back');
    assert.deepEqual(
      rec.rollback.steps.map((s) => s.compensates),
      ['always'],
    );
    assert.deepEqual(
      h.callsOf('delete').map((c) => c.input),
      [{ id: 'id-always' }],
    );
    assert.ok(
      h.logs(rec.execution_id).some((l) => / maybe skipped: when params\.enabled \(false\) is_true is false$/.test(l)),
      h.logs(rec.execution_id).join('\n'),
    );
  });

  it('evaluates equals with a template value, exists, is_true and step outputs', async () => {
    const rec = await h.run({
      wpk: wpk([
        step(
          'eq-template',
          'ok',
          { value: 'prod' },
          { when: { variable: 'params.env', operator: 'equals', value: '${{ params.expected }}' } },
        ),
        step(
          'eq-other',
          'ok',
          {},
          { when: { variable: 'params.env', operator: 'equals', value: '${{ params.other }}' } },
        ),
        step('exists', 'ok', {}, { when: { variable: 'params.env', operator: 'exists' } }),
        step('exists-not', 'ok', {}, { when: { variable: 'params.absent', operator: 'exists' } }),
        step('true', 'ok', {}, { when: { variable: 'params.on', operator: 'is_true' } }),
        step('true-not', 'ok', {}, { when: { variable: 'params.off', operator: 'is_true' } }),
        step(
          'on-output',
          'ok',
          {},
          { when: { variable: 'steps.eq-template.outputs.value', operator: 'equals', value: 'prod' } },
        ),
        step(
          'on-skipped',
          'ok',
          {},
          { when: { variable: 'steps.eq-other.status', operator: 'equals', value: 'skipped' } },
        ),
        step(
          'numbers',
          'ok',
          {},
          { when: { variable: 'params.count', operator: 'greater_than', value: '${{ params.limit }}' } },
        ),
      ]),
      params: { env: 'prod', expected: 'prod', other: 'dev', on: true, off: false, count: '10', limit: 9 },
    });
    assert.equal(rec.status, 'completed');
    assert.deepEqual(Object.fromEntries(rec.steps.map((s) => [s.name, s.status])), {
      'eq-template': 'succeeded',
      'eq-other': 'skipped',
      exists: 'succeeded',
      'exists-not': 'skipped',
      true: 'succeeded',
      'true-not': 'skipped',
      'on-output': 'succeeded',
      'on-skipped': 'succeeded',
      numbers: 'succeeded',
    });
    assert.deepEqual(
      h.calls.map((c) => c.step),
      ['eq-template', 'exists', 'true', 'on-output', 'on-skipped', 'numbers'],
    );
  });

  it('treats a bad regex in matches_regex as false, logs a warning and keeps running', async () => {
    const rec = await h.run({
      wpk: wpk([
        step('regex', 'ok', {}, { when: { variable: 'params.name', operator: 'matches_regex', value: '([unclosed' } }),
        step('next', 'ok', { value: 'ran' }),
      ]),
      params: { name: 'web-1' },
    });
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].status, 'skipped');
    assert.equal(rec.steps[1].status, 'succeeded');
    const warn = h.logs(rec.execution_id).find((l) => l.startsWith('warn regex '));
    assert.ok(warn, 'a warning names the step');
    assert.match(warn, /invalid regular expression/);
  });

  it('with onFailure: continue records the failure, runs the rest and can still complete', async () => {
    const rec = await h.run({
      wpk: wpk([
        step(
          'optional',
          'fail',
          { times: 9, type: 'http_status', message: 'upstream said 503' },
          { onFailure: 'continue' },
        ),
        step('main', 'ok', { value: '${{ steps.optional.status }}' }),
      ]),
    });
    assert.equal(rec.status, 'completed');
    assert.equal(rec.error, null);
    assert.equal(rec.steps[0].status, 'failed');
    assert.deepEqual(rec.steps[0].error, { type: 'http_status', message: 'upstream said 503', details: {} });
    assert.equal(rec.steps[1].status, 'succeeded');
    assert.deepEqual(rec.steps[1].outputs, { value: 'failed' }, 'later steps see the failed status');
    assert.equal(rec.steps_completed, 2);
  });
});

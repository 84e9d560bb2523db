import assert from 'node:assert/strict';
import { AgentError } from '../../../adapters/errors.js';
import { evaluateCondition } from '../../../adapters/shared/conditions.js';
import { extractFromResponse } from '../../../adapters/shared/paths.js';
import { renderValue } from '../../../services/runtime-agent/src/engine/templates.js';
import { Redactor } from '../../../services/runtime-agent/src/engine/redact.js';

const scope = {
  params: { n: 3, name: 'web', flags: { a: true }, list: [1, 2] },
  steps: { 'get-x': { status: 'succeeded', outputs: { items: [{ id: 'i1' }, { id: 'i2' }], count: 2 } } },
  execution: { id: 'e1', dry_run: false },
  workflow: { name: 'w', version: '1.0.0' },
};

describe('templates', () => {
  it('keeps the type of a string that is exactly one expression', () => {
    assert.equal(renderValue('${{ params.n }}', scope), 3);
    assert.deepEqual(renderValue(' ${{ params.flags }} ', scope), { a: true });
    assert.deepEqual(renderValue('${{params.list}}', scope), [1, 2]);
    assert.equal(renderValue('${{ execution.dry_run }}', scope), false);
  });

  it('stringifies embedded values and reads step outputs with indexes', () => {
    assert.equal(renderValue('n=${{ params.n }} id=${{ steps.get-x.outputs.items[1].id }}', scope), 'n=3 id=i2');
    assert.deepEqual(renderValue({ a: ['${{ steps.get-x.outputs.count }}', 'x'] }, scope), { a: [2, 'x'] });
  });

  it('leaves FlowRunner {{ }} markers alone', () => {
    assert.equal(renderValue('{{userId}} and ##VAR:string:x##', scope), '{{userId}} and ##VAR:string:x##');
  });

  it('in a dry run renders a placeholder for step outputs only a real run would have, and stays strict for params', () => {
    const seen: string[] = [];
    const opts = { dryRun: true, onPlaceholder: (e: string) => seen.push(e) };
    assert.equal(
      renderValue('${{ steps.get-x.outputs.nope[1] }}', scope, opts),
      '<dry run: steps.get-x.outputs.nope[1]>',
    );
    assert.deepEqual(seen, ['steps.get-x.outputs.nope[1]']);
    assert.throws(
      () => renderValue('${{ params.nope }}', scope, opts),
      (e: unknown) => e instanceof AgentError && e.type === 'template_error',
    );
  });

  it('fails with template_error naming what did not resolve', () => {
    assert.throws(
      () => renderValue('${{ steps.get-x.outputs.items[5].id }}', scope),
      (e: unknown) => e instanceof AgentError && e.type === 'template_error' && /items\[5\]/.test(e.message),
    );
  });
});

describe('conditions', () => {
  it('compares numbers when both sides are numeric, else is false', () => {
    assert.equal(evaluateCondition('greater_than', '10', 9, true), true);
    assert.equal(evaluateCondition('greater_than', 'abc', 9, true), false);
    assert.equal(evaluateCondition('equals', 200, '200', true), true);
  });

  it('treats a bad regex as false and warns instead of throwing', () => {
    const warnings: string[] = [];
    assert.equal(
      evaluateCondition('matches_regex', 'x', '([', true, (m) => warnings.push(m)),
      false,
    );
    assert.equal(warnings.length, 1);
  });

  it('knows presence, types and truthiness', () => {
    assert.equal(evaluateCondition('exists', undefined, undefined, false), false);
    assert.equal(evaluateCondition('not_exists', undefined, undefined, false), true);
    assert.equal(evaluateCondition('is_array', [1], undefined, true), true);
    assert.equal(evaluateCondition('is_true', 'true', undefined, true), true);
    assert.equal(evaluateCondition('contains', ['a', 'b'], 'b', true), true);
    assert.equal(evaluateCondition('starts_with', 'abc', 'ab', true), true);
  });
});

describe('response extraction', () => {
  const res = { status: 201, headers: { 'x-request-id': 'r1' }, body: { a: { b: [7] } } };
  it('reads status, headers case-insensitively, body paths and implicit body paths', () => {
    assert.deepEqual(extractFromResponse(res, '.status'), { found: true, value: 201 });
    assert.deepEqual(extractFromResponse(res, 'headers.X-Request-ID'), { found: true, value: 'r1' });
    assert.deepEqual(extractFromResponse(res, 'body.a.b[0]'), { found: true, value: 7 });
    assert.deepEqual(extractFromResponse(res, 'a.b[0]'), { found: true, value: 7 });
    assert.equal(extractFromResponse(res, 'body.nope').found, false);
  });
});

describe('redaction', () => {
  it('masks every secret, longest first, inside text and nested values', () => {
    const r = new Redactor(['abc', 'abcdef', 12345]);
    assert.equal(r.text('x abcdef y abc z 12345'), 'x *** y *** z ***');
    assert.deepEqual(r.value({ k: ['abc'], n: 'n12345' }), { k: ['***'], n: 'n***' });
  });
});

import assert from 'node:assert/strict';
import { useAgent } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { assertServing, call, errorPaths, executionCount } from './http-support.js';

interface Problem {
  path: string;
  message: string;
}

describe('HTTP API: POST /validate', () => {
  const agent = useAgent();

  for (const id of ['rollback-demo-1.0.0', 'http-health-check-1.0.0', 'host-report-1.0.0']) {
    it(`reports the bundled workflow ${id} valid by its workflow_id`, async () => {
      const r = await call(agent, 'POST', '/validate', { workflow_id: id });
      assert.equal(r.status, 200);
      assert.equal(r.body.valid, true);
      assert.equal(r.body.workflow_id, id);
      assert.deepEqual(r.body.errors, []);
      assert.ok(Array.isArray(r.body.warnings));
    });
  }

  it('lists every problem of an invalid package at once, each with its JSON path, as 200 valid: false', async () => {
    const before = await executionCount(agent);
    const bad = {
      ...pkg('Bad_Name', [
        { ...shellStep('list', ['ls']), with: { command: 'ls -l' } },
        { ...shellStep('retry', ['true']), retires: { count: 2 } },
        { name: 'ghost', adapter: 'k9s', action: 'scale', with: {} },
        { name: 'fly', adapter: 'shell', action: 'fly', with: {} },
        shellStep('refs', [
          'echo',
          '${{ params.nope }}',
          '${{ steps.later.outputs.stdout }}',
          '${{ 1 + }}',
          'x ${{ params.a',
        ]),
        shellStep('later', ['true']),
      ]),
      extra: true,
    };
    const r = await call(agent, 'POST', '/validate', { wpk_content: bad });
    assert.equal(r.status, 200);
    assert.equal(r.body.valid, false);
    const errors: Problem[] = r.body.errors;
    const at = (path: string, word?: RegExp) => {
      const found = errors.filter((e) => e.path === path);
      assert.ok(
        found.length > 0,
        `expected a problem at ${path}; got:\n${errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`,
      );
      if (word)
        assert.ok(
          found.some((e) => word.test(e.message)),
          `problem at ${path} should match ${word}: ${found.map((e) => e.message).join(' | ')}`,
        );
    };
    at('$.extra', /unknown field/);
    at('$.metadata.name');
    at('$.spec.handlers[0].with.command', /array/);
    at('$.spec.handlers[1].retires', /unknown field/);
    at('$.spec.handlers[2].adapter', /shell/);
    at('$.spec.handlers[3].action', /fly/);
    at('$.spec.handlers[4].with.command[1]', /nope/);
    at('$.spec.handlers[4].with.command[2]', /later/);
    at('$.spec.handlers[4].with.command[3]', /malformed/);
    at('$.spec.handlers[4].with.command[4]', /unterminated/);
    assert.ok(errors.length >= 10, `expected at least 10 problems, got ${errors.length}`);
    // Validation never runs anything.
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it('reports a reference to the step itself as not running before that point', async () => {
    const r = await call(agent, 'POST', '/validate', {
      wpk_content: pkg('self-ref', [shellStep('a', ['echo', '${{ steps.a.outputs.stdout }}'])]),
    });
    assert.equal(r.body.valid, false);
    assert.deepEqual(
      r.body.errors.map((e: Problem) => e.path),
      ['$.spec.handlers[0].with.command[1]'],
    );
  });

  it('accepts references to earlier steps, parameters and workflow fields', async () => {
    const ok = pkg(
      'good-refs',
      [
        shellStep('first', ['echo', '${{ params.who }}']),
        shellStep('second', [
          'echo',
          '${{ steps.first.outputs.stdout }}',
          '${{ workflow.name }}',
          '${{ execution.id }}',
          '{{ flowrunner.left.alone }}',
        ]),
      ],
      { parameters: { who: { type: 'string', default: 'world' } } },
    );
    const r = await call(agent, 'POST', '/validate', { wpk_content: ok });
    assert.deepEqual(r.body.errors, []);
    assert.equal(r.body.valid, true);
    assert.equal(r.body.workflow_id, 'good-refs-1.0.0');
  });

  it('accepts wpk_content as a YAML string', async () => {
    const yaml = [
      'apiVersion: wpk/v1',
      'kind: Workflow',
      'metadata: { name: yaml-pkg, version: 2.1.0 }',
      'spec:',
      '  handlers:',
      '    - name: hello',
      '      adapter: shell',
      '      action: run',
      '      with: { command: [echo, hi] }',
    ].join('\n');
    const r = await call(agent, 'POST', '/validate', { wpk_content: yaml });
    assert.equal(r.status, 200);
    assert.equal(r.body.valid, true, JSON.stringify(r.body.errors));
    assert.equal(r.body.workflow_id, 'yaml-pkg-2.1.0');
  });

  it('reports a YAML string that does not parse as one problem at $ with its line', async () => {
    const r = await call(agent, 'POST', '/validate', {
      wpk_content: 'apiVersion: wpk/v1\nkind: [Workflow\nmetadata: {',
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.valid, false);
    assert.equal(r.body.errors.length, 1);
    assert.equal(r.body.errors[0].path, '$');
    assert.match(r.body.errors[0].message, /line \d+/);
  });

  it('checks the given parameters against the package: unknown, missing required, wrong type, pattern and enum all at once', async () => {
    const withParams = pkg('param-check', [shellStep('a', ['echo', '${{ params.name }}'])], {
      parameters: {
        name: { type: 'string', required: true },
        count: { type: 'integer', minimum: 1 },
        tag: { type: 'string', pattern: '^[a-z]+$' },
        mode: { type: 'string', enum: ['fast', 'slow'] },
      },
    });
    const bad = await call(agent, 'POST', '/validate', {
      wpk_content: withParams,
      parameters: { extra: 1, count: 'three', tag: 'UPPER', mode: 'medium' },
    });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.valid, false);
    assert.deepEqual(bad.body.errors.map((e: Problem) => e.path).sort(), [
      '$.parameters.count',
      '$.parameters.extra',
      '$.parameters.mode',
      '$.parameters.name',
      '$.parameters.tag',
    ]);

    const good = await call(agent, 'POST', '/validate', {
      wpk_content: withParams,
      parameters: { name: 'n', count: 3, tag: 'abc', mode: 'fast' },
    });
    assert.equal(good.body.valid, true, JSON.stringify(good.body.errors));
  });

  it('checks parameters given with a bundled workflow_id', async () => {
    const bad = await call(agent, 'POST', '/validate', {
      workflow_id: 'rollback-demo-1.0.0',
      parameters: { workdir: '/etc/x', failAt: 'sometimes' },
    });
    assert.equal(bad.body.valid, false);
    assert.deepEqual(bad.body.errors.map((e: Problem) => e.path).sort(), [
      '$.parameters.failAt',
      '$.parameters.workdir',
    ]);
    const good = await call(agent, 'POST', '/validate', {
      workflow_id: 'rollback-demo-1.0.0',
      parameters: { workdir: '/tmp/x', failAt: 'never' },
    });
    assert.equal(good.body.valid, true);
  });

  it('warns, without failing, about a mutating step that rollback cannot undo', async () => {
    const r = await call(agent, 'POST', '/validate', {
      wpk_content: pkg('no-undo', [shellStep('touch', ['true'])], { rollback: { enabled: true } }),
    });
    assert.equal(r.body.valid, true);
    assert.deepEqual(
      r.body.warnings.map((w: Problem) => w.path),
      ['$.spec.handlers[0]'],
    );
  });

  it('answers a malformed /validate request with 400, not a report', async () => {
    const none = await call(agent, 'POST', '/validate', {});
    assert.equal(none.status, 400);
    assert.deepEqual(errorPaths(none), ['$']);
    const unknown = await call(agent, 'POST', '/validate', { workflow_id: 'rollback-demo-1.0.0', dry_run: true });
    assert.equal(unknown.status, 400);
    assert.deepEqual(errorPaths(unknown), ['$.dry_run']);
  });
});

import assert from 'node:assert/strict';
import { builtinAdapters } from '../../../adapters/index.js';
import { jsonPath } from '../../../adapters/shared/paths.js';
import { AdapterRegistry } from '../../../services/runtime-agent/src/adapter-registry.js';
import { resolveParameters } from '../../../services/runtime-agent/src/wpk/parameters.js';
import { PackageValidator } from '../../../services/runtime-agent/src/wpk/validate.js';
import { pkg, shellStep } from '../support/packages.js';
import { testAdapter } from '../support/test-adapter.js';

const validator = new PackageValidator(new AdapterRegistry(builtinAdapters()));
const paths = (r: { errors: { path: string }[] }) => r.errors.map((e) => e.path);

describe('package validation', () => {
  it('accepts a valid package and names it <name>-<version>', () => {
    const { report, wpk } = validator.validate(pkg('ok', [shellStep('a', ['true'])]));
    assert.deepEqual(report.errors, []);
    assert.equal(report.workflow_id, 'ok-1.0.0');
    assert.ok(wpk);
  });

  it('gives every caller its own report, also when the same package text comes again', () => {
    const bad = pkg('again', [shellStep('a', ['echo', '${{ params.nope }}'])]);
    const first = validator.validate(structuredClone(bad)).report;
    first.errors.push({ path: '$.x', message: 'added by a caller' });
    const second = validator.validate(structuredClone(bad)).report;
    assert.equal(second.errors.length, 1);
    assert.match(second.errors[0].message, /unknown parameter 'nope'/);
  });

  it('reports every problem at once, each with its JSON path', () => {
    const bad = {
      apiVersion: 'wpk/v1',
      kind: 'Workflow',
      extra: 1,
      metadata: { name: 'Bad_Name', version: 'one' },
      spec: {
        parameters: { env: { type: 'string', default: 3 } },
        handlers: [
          { name: 'a', adapter: 'shell', action: 'run', with: { command: 'ls -l' }, retires: 2 },
          { name: 'b', adapter: 'k9s', action: 'scale' },
          { name: 'c', adapter: 'shell', action: 'explode' },
          {
            name: 'd',
            adapter: 'shell',
            action: 'run',
            with: {
              command: [
                'echo',
                '${{ params.nope }}',
                '${{ steps.e.outputs.x }}',
                '${{ 1 + }}',
                '${{ steps.a.outputs.x',
              ],
            },
          },
          { name: 'e', adapter: 'api', action: 'request', with: { url: 'http://127.0.0.1/', json: {}, body: 'x' } },
          { name: 'a', adapter: 'shell', action: 'run', with: { command: ['true'] } },
        ],
      },
    };
    const { report, wpk } = validator.validate(bad);
    assert.equal(report.valid, false);
    assert.equal(wpk, undefined);
    const p = paths(report);
    for (const expected of [
      '$.extra',
      '$.metadata.name',
      '$.metadata.version',
      '$.spec.parameters.env.default',
      '$.spec.handlers[0].with.command',
      '$.spec.handlers[0].retires',
      '$.spec.handlers[1].adapter',
      '$.spec.handlers[2].action',
      '$.spec.handlers[3].with.command[1]',
      '$.spec.handlers[3].with.command[2]',
      '$.spec.handlers[3].with.command[3]',
      '$.spec.handlers[3].with.command[4]',
      '$.spec.handlers[4].with',
      '$.spec.handlers[5].name',
    ]) {
      assert.ok(
        p.includes(expected),
        `expected a problem at ${expected}; got ${JSON.stringify(report.errors, null, 1)}`,
      );
    }
    const msg = (path: string) =>
      report.errors
        .filter((e) => e.path === path)
        .map((e) => e.message)
        .join(' | ');
    assert.match(msg('$.spec.handlers[3].with.command[1]'), /unknown parameter 'nope'/);
    assert.match(msg('$.spec.handlers[3].with.command[2]'), /does not run before/);
    assert.match(msg('$.spec.handlers[3].with.command[3]'), /malformed/);
    assert.match(msg('$.spec.handlers[3].with.command[4]'), /unterminated/);
    assert.match(msg('$.spec.handlers[2].action'), /has no action 'explode'; it has: run/);
    assert.match(msg('$.spec.handlers[4].with'), /json and body cannot be used together/);
    assert.match(msg('$.spec.handlers[0].retires'), /unknown field/);
  });

  it('lets templates stand in for typed values until run time', () => {
    const { report } = validator.validate(
      pkg('typed', [shellStep('a', ['true'], { with: { command: ['true'], timeoutSeconds: '${{ params.t }}' } })], {
        parameters: { t: { type: 'integer', default: 5 } },
      }),
    );
    assert.deepEqual(report.errors, []);
  });

  it('accepts YAML text and reports a YAML syntax error with its line', () => {
    const yaml =
      'apiVersion: wpk/v1\nkind: Workflow\nmetadata: { name: y, version: 1.0.0 }\nspec:\n  handlers:\n    - { name: a, adapter: shell, action: run, with: { command: [echo] } }\n';
    assert.equal(validator.validate(yaml).report.valid, true);
    const broken = validator.validate('apiVersion: wpk/v1\nspec: [\n');
    assert.equal(broken.report.valid, false);
    assert.match(broken.report.errors[0].message, /line \d+/);
  });

  it('warns about a credential written into the package, not about one templated from a parameter', () => {
    const literal = {
      name: 'call',
      adapter: 'api',
      action: 'request',
      with: { url: 'http://127.0.0.1:1/x', headers: { Authorization: 'Bearer abcdef123456' } },
    };
    const templated = {
      name: 'call2',
      adapter: 'api',
      action: 'request',
      with: { url: 'http://127.0.0.1:1/x', headers: { Authorization: 'Bearer ${{ params.token }}' } },
    };
    const env = shellStep('env', ['true'], { with: { command: ['true'], env: { GITHUB_TOKEN: 'ghp_literal_value' } } });
    const { report } = validator.validate(
      pkg('creds', [literal, templated, env], { parameters: { token: { type: 'string', secret: true } } }),
    );
    assert.equal(report.valid, true);
    assert.deepEqual(
      report.warnings.filter((w) => /credential/.test(w.message)).map((w) => w.path),
      ['$.spec.handlers[0].with', '$.spec.handlers[2].with'],
    );
  });

  it('refuses timeouts and delays longer than a timer can wait (they would fire at once)', () => {
    const step = { ...shellStep('a', ['true']), timeoutSeconds: 1e10, retries: { count: 1, delayMs: 1e12 } };
    const { report } = validator.validate(pkg('long', [step], { timeoutSeconds: 1e300 }));
    assert.deepEqual(paths(report).sort(), [
      '$.spec.handlers[0].retries.delayMs',
      '$.spec.handlers[0].timeoutSeconds',
      '$.spec.timeoutSeconds',
    ]);
    const ok = validator.validate(
      pkg('long-ok', [{ ...shellStep('a', ['true']), timeoutSeconds: 86_400 * 24 }]),
    ).report;
    assert.equal(ok.valid, true);
  });

  it('enforces the limits: 200 handlers and 1 MiB', () => {
    const many = Array.from({ length: 201 }, (_, i) => shellStep(`s${i}`, ['true']));
    assert.ok(paths(validator.validate(pkg('many', many)).report).includes('$.spec.handlers'));
    const huge = pkg('huge', [shellStep('a', ['echo', 'x'.repeat(1024 * 1024)])]);
    assert.match(validator.validate(huge).report.errors[0].message, /limit is 1048576/);
  });

  it('allows error.* only in rollback steps and a step rollback to read its own outputs', () => {
    const ok = pkg('rb', [
      shellStep('a', ['true'], {
        rollback: {
          action: 'run',
          with: { command: ['echo', '${{ steps.a.outputs.stdout }}', '${{ error.message }}'] },
        },
      }),
    ]);
    assert.deepEqual(validator.validate(ok).report.errors, []);
    const bad = pkg('rb', [shellStep('a', ['echo', '${{ error.message }}'])]);
    assert.match(validator.validate(bad).report.errors[0].message, /only available in rollback steps/);
  });

  it('does not warn about a GET (a safe method) but does about a POST or a templated method', () => {
    const api = (name: string, method?: string) => ({
      name,
      adapter: 'api',
      action: 'request',
      with: { url: 'http://127.0.0.1:1/x', ...(method ? { method } : {}) },
    });
    const { report } = validator.validate(
      pkg('w', [api('get'), api('head', 'HEAD'), api('post', 'POST'), api('any', '${{ params.m }}')], {
        rollback: { enabled: true },
        parameters: { m: { type: 'string', default: 'GET' } },
      }),
    );
    assert.deepEqual(
      report.warnings.map((w) => w.path),
      ['$.spec.handlers[2]', '$.spec.handlers[3]'],
    );
  });

  it('warns about a mutating step without compensation when rollback is enabled', () => {
    const { report } = validator.validate(pkg('w', [shellStep('a', ['true'])], { rollback: { enabled: true } }));
    assert.equal(report.valid, true);
    assert.equal(report.warnings[0].path, '$.spec.handlers[0]');
  });
});

describe("an action's checkStatic hook", () => {
  /** A fake action that refuses a literal `forbidden: true` and records the raw `with` it was shown. */
  const seen: unknown[] = [];
  const picky = testAdapter('picky', 'test adapter', {
    act: {
      description: 'test action',
      input: { type: 'object', properties: { n: { type: 'integer' }, forbidden: { type: 'boolean' } } },
      checkStatic(withRaw, at) {
        seen.push(withRaw);
        return withRaw.forbidden === true
          ? [{ path: jsonPath([...at, 'forbidden']), message: 'refused by the action' }]
          : [];
      },
      run: async () => ({}),
    },
  });
  const pickyValidator = new PackageValidator(new AdapterRegistry([picky]));
  const step = (name: string, withValue: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
    name,
    adapter: 'picky',
    action: 'act',
    with: withValue,
    ...more,
  });

  it('is called on the raw with of steps, step rollbacks (adapter inherited) and rollback handlers, also where the schema already failed, and its problems carry their paths', () => {
    seen.length = 0;
    const { report } = pickyValidator.validate(
      pkg(
        'hook',
        [
          step(
            'a',
            { forbidden: true, n: '${{ params.n }}' },
            { rollback: { action: 'act', with: { forbidden: true } } },
          ),
          step('b', { n: 'not a number', forbidden: true }),
        ],
        {
          parameters: { n: { type: 'integer' } },
          rollback: { enabled: true, handlers: [step('c', { forbidden: true })] },
        },
      ),
    );
    assert.deepEqual(paths(report), [
      '$.spec.handlers[0].with.forbidden',
      '$.spec.handlers[0].rollback.with.forbidden',
      '$.spec.handlers[1].with.n',
      '$.spec.handlers[1].with.forbidden',
      '$.spec.rollback.handlers[0].with.forbidden',
    ]);
    assert.deepEqual(seen[0], { forbidden: true, n: '${{ params.n }}' }, 'templates are not rendered yet');
  });
});

describe('parameters', () => {
  const defs = {
    name: { type: 'string' as const, required: true, pattern: '^[a-z]+$' },
    replicas: { type: 'integer' as const, minimum: 0, maximum: 10, default: 2 },
    mode: { type: 'string' as const, enum: ['a', 'b'] },
    token: { type: 'string' as const, secret: true },
  };

  it('applies defaults and keeps given values', () => {
    const r = resolveParameters(defs, { name: 'web' });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.values, { name: 'web', replicas: 2 });
  });

  it('lists unknown, missing, mistyped, out-of-range, enum and pattern problems together', () => {
    const r = resolveParameters(defs, { nope: 1, replicas: 2.5, mode: 'c' });
    assert.deepEqual(r.problems.map((p) => p.path).sort(), [
      '$.parameters.mode',
      '$.parameters.name',
      '$.parameters.nope',
      '$.parameters.replicas',
    ]);
    assert.match(resolveParameters(defs, { name: 'Web' }).problems[0].message, /must match/);
    assert.match(resolveParameters(defs, { name: 'web', replicas: 11 }).problems[0].message, /<= 10/);
  });

  it('never echoes a secret value in a problem', () => {
    const r = resolveParameters(
      { token: { type: 'string', secret: true, pattern: '^tok_' } },
      { token: 'hunter2-very-secret' },
    );
    assert.equal(r.problems.length, 1);
    assert.ok(!JSON.stringify(r.problems).includes('hunter2'));
  });
});

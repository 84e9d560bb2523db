import assert from 'node:assert/strict';
import { PACKAGE_LIMITS } from '../../../services/runtime-agent/src/wpk/types.js';
import { useAgent } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { assertServing, call, executionCount, type Reply, uniqueName } from '../http/http-support.js';

/** The one problem of a refused package or request, asserted to be the only one. */
function onlyProblem(r: Reply): { path: string; message: string } {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.body.error_type, 'validation_error');
  assert.equal(r.body.details.errors.length, 1, JSON.stringify(r.body.details.errors));
  return r.body.details.errors[0];
}

const steps = (n: number, prefix = 's') => Array.from({ length: n }, (_, i) => shellStep(`${prefix}${i}`, ['true']));

describe('limits: package size, step counts and parameter counts through the agent', () => {
  // A body limit above the package limit, so that the package limit is the one that answers.
  const agent = useAgent({ env: { BODY_LIMIT_BYTES: String(4 * 1024 * 1024) } });
  /** The one problem /execute refuses a dry run of `request` with. */
  const dryRunProblem = async (request: Record<string, unknown>) =>
    onlyProblem(await call(agent, 'POST', '/execute', { ...request, dry_run: true }));

  it(`refuses more than ${PACKAGE_LIMITS.maxHandlers} handlers at $.spec.handlers and queues nothing`, async () => {
    const before = await executionCount(agent);
    const ok = await call(agent, 'POST', '/validate', {
      wpk_content: pkg(uniqueName('steps'), steps(PACKAGE_LIMITS.maxHandlers)),
    });
    assert.equal(ok.body.valid, true, JSON.stringify(ok.body.errors));
    const p = await dryRunProblem({ wpk_content: pkg(uniqueName('steps'), steps(PACKAGE_LIMITS.maxHandlers + 1)) });
    assert.deepEqual(p, {
      path: '$.spec.handlers',
      message: `has too many items: at most ${PACKAGE_LIMITS.maxHandlers} allowed`,
    });
    assert.equal(await executionCount(agent), before);
    await assertServing(agent);
  });

  it(`refuses more than ${PACKAGE_LIMITS.maxRollbackHandlers} rollback handlers at $.spec.rollback.handlers`, async () => {
    const rollback = { enabled: true, handlers: steps(PACKAGE_LIMITS.maxRollbackHandlers + 1, 'undo') };
    const p = await dryRunProblem({ wpk_content: pkg(uniqueName('rb'), steps(1), { rollback }) });
    assert.deepEqual(p, {
      path: '$.spec.rollback.handlers',
      message: `has too many items: at most ${PACKAGE_LIMITS.maxRollbackHandlers} allowed`,
    });
    await assertServing(agent);
  });

  it(`refuses a package declaring more than ${PACKAGE_LIMITS.maxParameters} parameters at $.spec.parameters`, async () => {
    const parameters = Object.fromEntries(
      Array.from({ length: PACKAGE_LIMITS.maxParameters + 1 }, (_, i) => [`p${i}`, { type: 'string', default: 'x' }]),
    );
    const p = await dryRunProblem({ wpk_content: pkg(uniqueName('params'), steps(1), { parameters }) });
    assert.deepEqual(p, {
      path: '$.spec.parameters',
      message: `has too many entries: at most ${PACKAGE_LIMITS.maxParameters} allowed`,
    });
    await assertServing(agent);
  });

  it(`answers more than ${PACKAGE_LIMITS.maxParameters} given parameters with one problem, not one per name`, async () => {
    const parameters = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`p${i}`, i]));
    const p = await dryRunProblem({ wpk_content: pkg(uniqueName('given'), steps(1)), parameters });
    assert.equal(p.path, '$.parameters');
    assert.match(
      p.message,
      new RegExp(`has 10000 entries; at most ${PACKAGE_LIMITS.maxParameters} parameters are allowed`),
    );
    await assertServing(agent);
  });

  it(`refuses a package over ${PACKAGE_LIMITS.maxBytes} bytes, as an object and as YAML text`, async () => {
    const big = pkg(uniqueName('big'), [shellStep('a', ['echo', 'x'.repeat(PACKAGE_LIMITS.maxBytes)])]);
    for (const wpk_content of [big, JSON.stringify(big)]) {
      const p = await dryRunProblem({ wpk_content });
      assert.equal(p.path, '$');
      assert.match(p.message, new RegExp(`^package is \\d+ bytes; the limit is ${PACKAGE_LIMITS.maxBytes}`));
    }
    await assertServing(agent);
  });
});

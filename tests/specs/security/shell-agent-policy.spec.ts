import assert from 'node:assert/strict';
import { existsSync, mkdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveProgram } from '../../../adapters/shell/executables.js';
import { useAgent, waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { executionCount } from '../http/http-support.js';

/** <scratch>/root is SHELL_WORK_ROOT; markers go to <scratch>, outside it. Made before the agent starts. */
const scratch = join(realpathSync(tmpdir()), `shell-agent-policy-${process.pid}-${Date.now()}`);
const root = join(scratch, 'root');
const allowed = ['pwd', 'printf'].map((p) => resolveProgram(p, '/')!);

describe('shell policy: the SHELL_* settings through the agent', () => {
  before(() => mkdirSync(root, { recursive: true }));
  const agent = useAgent({ env: { SHELL_WORK_ROOT: root, SHELL_ALLOWED_EXECUTABLES: allowed.join(',') } });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs an allowed program in the work root', async () => {
    const r = await agent.request('POST', '/execute', {
      wpk_content: pkg('policy-ok', [shellStep('where', ['pwd', '-P'])]),
    });
    assert.equal(r.status, 202, r.text);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    assert.equal(rec.steps[0].outputs.stdout, `${root}\n`);
  });

  it('/validate reports every policy problem with its path, and /execute answers 400 and queues nothing', async () => {
    const marker = join(scratch, 'marker');
    const wpk = pkg('policy-refused', [
      { ...shellStep('script', ['touch "$1"', marker]), with: { command: ['touch "$1"', marker], shell: true } },
      shellStep('unlisted', ['touch', marker]),
      { ...shellStep('away', ['pwd']), with: { command: ['pwd'], cwd: '..' } },
    ]);
    const v = await agent.request('POST', '/validate', { wpk_content: wpk });
    assert.equal(v.status, 200);
    assert.equal(v.body.valid, false);
    assert.deepEqual(
      v.body.errors.map((e: { path: string }) => e.path),
      ['$.spec.handlers[0].with.shell', '$.spec.handlers[1].with.command[0]', '$.spec.handlers[2].with.cwd'],
    );
    assert.match(v.body.errors[0].message, /SHELL_ALLOW_SHELL/);
    assert.match(v.body.errors[1].message, /SHELL_ALLOWED_EXECUTABLES/);
    assert.match(v.body.errors[2].message, /SHELL_WORK_ROOT/);

    const before = await executionCount(agent);
    const x = await agent.request('POST', '/execute', { wpk_content: wpk });
    assert.equal(x.status, 400);
    assert.equal(x.body.error_type, 'validation_error');
    assert.equal(await executionCount(agent), before, 'nothing was queued');
    assert.equal(existsSync(marker), false);
  });

  it('what only rendering reveals fails the step with forbidden at run time, not retried, and starts nothing', async () => {
    const marker = join(scratch, 'marker');
    const step = (withValue: Record<string, unknown>) => ({
      name: 'step',
      adapter: 'shell',
      action: 'run',
      retries: { count: 2, delayMs: 1 },
      with: withValue,
    });
    const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      [
        'templated shell',
        { command: ['touch "$1"', marker], shell: '${{ params.shell }}' },
        { shell: { type: 'boolean', default: true } },
      ],
      [
        'templated program',
        { command: ['${{ params.program }}', marker] },
        { program: { type: 'string', default: 'touch' } },
      ],
      [
        'templated cwd',
        { command: ['printf', 'x'], cwd: '${{ params.cwd }}' },
        { cwd: { type: 'string', default: scratch } },
      ],
    ];
    for (const [what, withValue, parameters] of cases) {
      const r = await agent.request('POST', '/execute', {
        wpk_content: pkg('policy-at-run-time', [step(withValue)], { parameters }),
      });
      assert.equal(r.status, 202, r.text);
      const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
      assert.equal(rec.status, 'failed', what);
      assert.equal(rec.error.type, 'forbidden', `${what}: ${rec.error.message}`);
      assert.equal(rec.steps[0].attempts, 1, `${what}: forbidden is not retried`);
    }
    assert.equal(existsSync(marker), false);
  });
});

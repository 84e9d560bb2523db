import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createShellAdapter } from '../../../adapters/shell/index.js';
import { pkg } from '../support/packages.js';
import { rejectsWith, shellRun, useTempDir, validatorFor } from './shell-support.js';

describe('shell policy: SHELL_WORK_ROOT', () => {
  const tmp = useTempDir('shell-work-root');
  /** <tmp>/root is the work root; <tmp>/outside is not; markers go to <tmp>. */
  const root = () => join(tmp(), 'root');
  const outside = () => join(tmp(), 'outside');
  const marker = () => join(tmp(), 'marker');
  const confined = () => shellRun({ allowShell: false, workRoot: root() });
  beforeEach(() => {
    mkdirSync(join(root(), 'sub'), { recursive: true });
    mkdirSync(outside());
  });

  it('runs in the work root when the step gives no cwd, and takes a relative cwd from it', async () => {
    assert.equal((await confined().run({ command: ['pwd', '-P'] })).stdout, `${root()}\n`);
    assert.equal((await confined().run({ command: ['pwd', '-P'], cwd: 'sub' })).stdout, `${join(root(), 'sub')}\n`);
    assert.equal(
      (await confined().run({ command: ['pwd', '-P'], cwd: join(root(), 'sub') })).stdout,
      `${join(root(), 'sub')}\n`,
    );
  });

  for (const [what, cwd] of [
    ['..', () => '..'],
    ['sub/../..', () => 'sub/../..'],
    ['an absolute path outside', () => outside()],
    ['/', () => '/'],
  ] as const) {
    it(`refuses cwd ${what} with a non-retryable forbidden and starts nothing`, async () => {
      const err = await rejectsWith(confined().run({ command: ['touch', marker()], cwd: cwd() }), 'forbidden');
      assert.equal(err.retryable, false);
      assert.match(err.message, /outside SHELL_WORK_ROOT/);
      assert.equal(existsSync(marker()), false);
    });
  }

  it('refuses a symbolic link inside the root that points outside, and a directory that does not exist yet below it', async () => {
    symlinkSync(outside(), join(root(), 'escape'));
    for (const cwd of ['escape', join(root(), 'escape'), 'escape/not-yet']) {
      await rejectsWith(confined().run({ command: ['touch', marker()], cwd }), 'forbidden');
    }
    await rejectsWith(() => confined().dryRun({ command: ['touch', marker()], cwd: 'escape' }), 'forbidden');
    assert.equal(existsSync(marker()), false);
  });

  it('takes .. after a symbolic link by the path as written, so escape/.. is the root itself', async () => {
    symlinkSync(outside(), join(root(), 'escape'));
    assert.equal((await confined().run({ command: ['pwd', '-P'], cwd: 'escape/..' })).stdout, `${root()}\n`);
  });

  it('allows a symbolic link that stays inside the root', async () => {
    symlinkSync(join(root(), 'sub'), join(root(), 'alias'));
    assert.equal((await confined().run({ command: ['pwd', '-P'], cwd: 'alias' })).stdout, `${join(root(), 'sub')}\n`);
  });

  it('fails a missing directory inside the root with a non-retryable command_failed that names it, starting nothing', async () => {
    const err = await rejectsWith(confined().run({ command: ['touch', marker()], cwd: 'missing' }), 'command_failed');
    assert.equal(err.retryable, false);
    assert.match(err.message, /'missing' does not exist/);
    assert.equal(existsSync(marker()), false);
  });

  it('fails every step with a non-retryable adapter_error while the work root itself is missing', async () => {
    const err = await rejectsWith(
      shellRun({ allowShell: false, workRoot: join(tmp(), 'no-root') }).run({ command: ['touch', marker()] }),
      'adapter_error',
    );
    assert.equal(err.retryable, false);
    assert.match(err.message, /SHELL_WORK_ROOT/);
    assert.equal(existsSync(marker()), false);
  });

  it('/health shows the adapter not ready while the work root is missing, and ready once it exists', async () => {
    const missing = join(tmp(), 'later');
    const adapter = createShellAdapter({ allowShell: false, workRoot: missing });
    const before = await adapter.health!();
    assert.equal(before.ready, false);
    assert.match(before.message ?? '', /SHELL_WORK_ROOT/);
    mkdirSync(missing);
    assert.deepEqual(await adapter.health!(), { ready: true });
  });

  it('validation refuses a literal cwd outside the root, and leaves a missing or templated one to run time', () => {
    const step = (name: string, cwd: string) => ({
      name,
      adapter: 'shell',
      action: 'run',
      with: { command: ['true'], cwd },
    });
    const report = validatorFor({ allowShell: false, workRoot: root() }).validate(
      pkg(
        'work-root',
        [
          step('up', '../outside'),
          step('abs', outside()),
          step('missing', 'made-later'),
          step('templated', '${{ params.dir }}'),
          step('ok', 'sub'),
        ],
        {
          parameters: { dir: { type: 'string' } },
        },
      ),
    ).report;
    assert.deepEqual(
      report.errors.map((e) => e.path),
      ['$.spec.handlers[0].with.cwd', '$.spec.handlers[1].with.cwd'],
    );
    assert.match(report.errors[0]!.message, /SHELL_WORK_ROOT/);
  });
});

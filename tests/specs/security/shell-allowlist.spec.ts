import assert from 'node:assert/strict';
import { existsSync, mkdirSync, realpathSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { resolveProgram } from '../../../adapters/shell/executables.js';
import { pkg } from '../support/packages.js';
import { PRINT_ARGV, markerProgram, rejectsWith, shellRun, useTempDir, validatorFor } from './shell-support.js';

/** Where this machine's PATH finds printf: the allowed program of these tests. */
const PRINTF = resolveProgram('printf', '/')!;

describe('shell policy: SHELL_ALLOWED_EXECUTABLES', () => {
  const tmp = useTempDir('shell-allowlist');
  const settings = (allowedExecutables: string[], allowShell = false) => ({ allowShell, allowedExecutables });

  it('runs a listed program found through PATH, starting the checked file by its absolute path', async () => {
    assert.ok(PRINTF, 'printf is in PATH');
    const out = await shellRun(settings([PRINTF])).run({ command: ['printf', '%s', 'ok'] });
    assert.equal(out.stdout, 'ok');
    // A PATH of the step's own cannot swap the program: the agent starts the file it checked.
    const marker = join(tmp(), 'marker');
    markerProgram(join(tmp(), 'printf'), marker);
    const swapped = await shellRun(settings([PRINTF])).run({
      command: ['printf', '%s', 'still printf'],
      env: { PATH: tmp() },
    });
    assert.equal(swapped.stdout, 'still printf');
    assert.equal(existsSync(marker), false);
  });

  it('refuses an unlisted program with a non-retryable forbidden naming it and SHELL_ALLOWED_EXECUTABLES, and starts no process', async () => {
    const marker = join(tmp(), 'marker');
    const program = markerProgram(join(tmp(), 'make-marker'), marker);
    for (const command of [[program], ['./make-marker']]) {
      const err = await rejectsWith(shellRun(settings([PRINTF])).run({ command, cwd: tmp() }), 'forbidden');
      assert.equal(err.retryable, false);
      assert.match(err.message, new RegExp(`'${command[0]!.replace(/\./g, '\\.')}'.*SHELL_ALLOWED_EXECUTABLES`));
    }
    await rejectsWith(() => shellRun(settings([PRINTF])).dryRun({ command: [program] }), 'forbidden');
    assert.equal(existsSync(marker), false, 'the program never ran');
  });

  it('resolves a relative path with a slash against the cwd, and runs it when that file is listed', async () => {
    const marker = join(tmp(), 'marker');
    const program = markerProgram(join(tmp(), 'make-marker'), marker);
    await shellRun(settings([program])).run({ command: ['./make-marker'], cwd: tmp() });
    assert.equal(existsSync(marker), true);
  });

  it('allows the same real file under the listed name from another place, but not under another name', async () => {
    const sameName = join(tmp(), 'same', basename(PRINTF));
    const otherName = join(tmp(), 'not-printf');
    mkdirSync(join(tmp(), 'same'));
    symlinkSync(PRINTF, sameName);
    symlinkSync(PRINTF, otherName);
    const out = await shellRun(settings([PRINTF])).run({ command: [sameName, '%s', 'same file, same name'] });
    assert.equal(out.stdout, 'same file, same name');
    const err = await rejectsWith(shellRun(settings([PRINTF])).run({ command: [otherName, 'x'] }), 'forbidden');
    assert.ok(err.message.includes(`${otherName} -> ${realpathSync(PRINTF)}`), err.message);
  });

  it('with /bin/sh listed: shell: true and `sh` through PATH run; the real file under its own name (e.g. dash) does not', async () => {
    const out = await shellRun(settings(['/bin/sh'], true)).run({
      command: ['printf %s "$1"', 'via /bin/sh'],
      shell: true,
    });
    assert.equal(out.stdout, 'via /bin/sh');
    const viaPath = await shellRun(settings(['/bin/sh'])).run({
      command: ['sh', '-c', 'printf %s "$1"', 'sh', 'via PATH'],
    });
    assert.equal(viaPath.stdout, 'via PATH');
    const real = realpathSync('/bin/sh');
    if (basename(real) !== 'sh')
      await rejectsWith(shellRun(settings(['/bin/sh'])).run({ command: [real, '-c', 'true'] }), 'forbidden');
  });

  it('refuses shell: true when /bin/sh is not listed, even with SHELL_ALLOW_SHELL', async () => {
    const err = await rejectsWith(
      shellRun(settings([PRINTF], true)).run({ command: ['true'], shell: true }),
      'forbidden',
    );
    assert.match(err.message, /'\/bin\/sh'.*SHELL_ALLOWED_EXECUTABLES/);
  });

  it("refuses the loader's LD_* variables in env, which would run other code inside an allowed program", async () => {
    const err = await rejectsWith(
      shellRun(settings([PRINTF])).run({ command: ['printf', 'x'], env: { LD_PRELOAD: join(tmp(), 'evil.so') } }),
      'forbidden',
    );
    assert.match(err.message, /LD_PRELOAD/);
    assert.equal(err.retryable, false);
    // Without an allowlist any program may run anyway, so LD_* is nobody's business.
    const out = await shellRun({ allowShell: false }).run({ command: ['printf', 'x'], env: { LD_NOTHING: '1' } });
    assert.equal(out.stdout, 'x');
  });

  it('a program that is nowhere fails with command_failed (not found), as without the allowlist', async () => {
    const err = await rejectsWith(
      shellRun(settings([PRINTF])).run({ command: ['no-such-program-7c1e'] }),
      'command_failed',
    );
    assert.equal(err.retryable, false);
    assert.match(err.message, /not found in PATH/);
  });

  it('validation refuses a literal unlisted program (and /bin/sh for shell: true, and LD_* env keys), and leaves templated programs to run time', async () => {
    const node = resolveProgram('node', '/')!;
    const step = (name: string, withValue: unknown) => ({ name, adapter: 'shell', action: 'run', with: withValue });
    const report = validatorFor(settings([PRINTF], true)).validate(
      pkg(
        'allowlist',
        [
          step('listed', { command: ['printf', 'x'] }),
          step('unlisted', { command: ['node', '-e', PRINT_ARGV] }),
          step('absolute', { command: [node, '-e', PRINT_ARGV] }),
          step('shell', { command: ['true'], shell: true }),
          step('templated', { command: ['${{ params.program }}'] }),
          step('loader', { command: ['printf', 'x'], env: { LD_PRELOAD: '/x.so' } }),
        ],
        { parameters: { program: { type: 'string' } } },
      ),
    ).report;
    assert.deepEqual(
      report.errors.map((e) => e.path),
      [
        '$.spec.handlers[1].with.command[0]',
        '$.spec.handlers[2].with.command[0]',
        '$.spec.handlers[3].with.shell',
        '$.spec.handlers[5].with.env.LD_PRELOAD',
      ],
    );
    assert.match(report.errors[0]!.message, /'node'.*SHELL_ALLOWED_EXECUTABLES/);
  });
});

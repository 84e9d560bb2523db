import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createShellAdapter } from '../../../adapters/shell/index.js';
import { pkg, shellStep } from '../support/packages.js';
import { makeContext, rejectsWith, shellRun, useTempDir, validatorFor } from './shell-support.js';

const ALLOWED = { allowShell: true };
const REFUSED = { allowShell: false };

describe('shell policy: shell: true', () => {
  const tmp = useTempDir('shell-mode');

  describe('running', () => {
    it('runs command[0] as a /bin/sh -c script whose $0 is sh and whose further command entries are "$1", "$2", …', async () => {
      const out = await shellRun(ALLOWED).run({
        command: ['printf "%s|" "$0" "$#" "$1" "$2"', 'a b', '$(echo x); `id`'],
        shell: true,
      });
      assert.equal(out.stdout, 'sh|2|a b|$(echo x); `id`|');
    });

    it('shows the exact /bin/sh argv in a dry run and starts nothing', async () => {
      const marker = join(tmp(), 'marker');
      const { ctx, messages } = makeContext(true);
      await createShellAdapter(ALLOWED).actions.run!.run(ctx, { command: ['touch "$1"', marker], shell: true });
      const logs = messages();
      assert.ok(logs[0]?.includes(JSON.stringify(['/bin/sh', '-c', 'touch "$1"', 'sh', marker])), logs[0]);
      assert.equal(existsSync(marker), false);
    });

    it('fails with a non-retryable forbidden, starting nothing, when SHELL_ALLOW_SHELL is false (a real run and a dry run)', async () => {
      const marker = join(tmp(), 'marker');
      const real = await rejectsWith(
        shellRun(REFUSED).run({ command: ['touch "$1"', marker], shell: true }),
        'forbidden',
      );
      assert.equal(real.retryable, false);
      assert.match(real.message, /SHELL_ALLOW_SHELL/);
      await rejectsWith(() => shellRun(REFUSED).dryRun({ command: ['touch "$1"', marker], shell: true }), 'forbidden');
      assert.equal(existsSync(marker), false, 'no process ran');
    });

    it('shell: false runs argv, whatever the setting', async () => {
      const out = await shellRun(ALLOWED).run({ command: ['printf', '%s', '$(echo x)'], shell: false });
      assert.equal(out.stdout, '$(echo x)');
    });
  });

  describe('validation', () => {
    const errorsOf = (settings: { allowShell: boolean }, handlers: unknown[], extra = {}) =>
      validatorFor(settings).validate(pkg('shell-mode', handlers, extra)).report.errors;

    it('refuses shell: true in steps, step rollbacks and rollback handlers, naming SHELL_ALLOW_SHELL and the JSON path, when it is not allowed', () => {
      const step = shellStep('a', ['echo "$1"', 'x'], {
        rollback: { adapter: 'shell', action: 'run', with: { command: ['true'], shell: true } },
      });
      (step.with as Record<string, unknown>).shell = true;
      const errors = errorsOf(REFUSED, [step], {
        rollback: {
          enabled: true,
          handlers: [{ name: 'undo', adapter: 'shell', action: 'run', with: { command: ['true'], shell: true } }],
        },
      });
      assert.deepEqual(
        errors.map((e) => e.path),
        [
          '$.spec.handlers[0].with.shell',
          '$.spec.handlers[0].rollback.with.shell',
          '$.spec.rollback.handlers[0].with.shell',
        ],
      );
      for (const e of errors) assert.match(e.message, /SHELL_ALLOW_SHELL/);
    });

    it('accepts shell: true with a written-out script when it is allowed, and shell: false anywhere', () => {
      assert.deepEqual(
        errorsOf(
          ALLOWED,
          [
            {
              ...shellStep('a', ['printf %s "$1"', '${{ params.v }}']),
              with: { command: ['printf %s "$1"', '${{ params.v }}'], shell: true },
            },
          ],
          { parameters: { v: { type: 'string' } } },
        ),
        [],
      );
      assert.deepEqual(
        errorsOf(REFUSED, [{ ...shellStep('a', ['true']), with: { command: ['true'], shell: false } }]),
        [],
      );
    });

    it('refuses a ${{ }} template in the script, telling to pass the value as a further entry and use "$1"', () => {
      const errors = errorsOf(
        ALLOWED,
        [{ name: 'a', adapter: 'shell', action: 'run', with: { command: ['echo ${{ params.v }}'], shell: true } }],
        { parameters: { v: { type: 'string' } } },
      );
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.equal(errors[0]!.path, '$.spec.handlers[0].with.command[0]');
      assert.match(errors[0]!.message, /further command entry/);
      assert.match(errors[0]!.message, /"\$1"/);
    });

    it('refuses a whole-template command, and a templated script when shell itself is a template', () => {
      const parameters = { v: { type: 'string' }, argv: { type: 'array' }, sh: { type: 'boolean' } };
      const errors = errorsOf(
        ALLOWED,
        [
          { name: 'a', adapter: 'shell', action: 'run', with: { command: '${{ params.argv }}', shell: true } },
          {
            name: 'b',
            adapter: 'shell',
            action: 'run',
            with: { command: ['echo ${{ params.v }}'], shell: '${{ params.sh }}' },
          },
          {
            name: 'c',
            adapter: 'shell',
            action: 'run',
            with: { command: ['echo', '${{ params.v }}'], shell: '${{ params.sh }}' },
          },
        ],
        { parameters },
      );
      assert.deepEqual(
        errors.map((e) => e.path),
        ['$.spec.handlers[0].with.command', '$.spec.handlers[1].with.command[0]'],
      );
    });
  });
});

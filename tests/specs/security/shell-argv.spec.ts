import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useAgent, waitForStatus } from '../support/agent-process.js';
import { pkg } from '../support/packages.js';
import { PRINT_ARGV, rejectsWith, shellRun } from './shell-support.js';

/** Prints what the process received: its arguments and its whole environment. */
const PRINT_ARGV_AND_ENV = 'process.stdout.write(JSON.stringify({ argv: process.argv.slice(1), env: process.env }))';

/** Values that a shell, a template engine or a careless split would change; each must arrive byte for byte. */
function hostileValues(marker: string): string[] {
  return [
    'a;b && c || d | e',
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    `; touch ${marker} #`,
    'line one\nline two\n',
    '${{ params.other }}',
    '{{ flowmap.value }}',
    `'single' "double" \\back\\slash`,
    '  leading and trailing spaces  ',
    '* ? [a-z] ~ $HOME ${PATH}',
    '--help',
    '>out <in 2>&1',
    'ünïcødé € 😀',
    '',
  ];
}

describe('shell policy: parameter values reach the process as data', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'shell-argv-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  describe('through the agent (templates rendered by the engine)', () => {
    const agent = useAgent({ env: { SHELL_ALLOW_SHELL: 'true' } });

    const wpk = pkg(
      'argv-as-data',
      [
        {
          name: 'argv',
          adapter: 'shell',
          action: 'run',
          with: {
            command: [
              process.execPath,
              '-e',
              PRINT_ARGV_AND_ENV,
              '--',
              '${{ params.value }}',
              'prefix:${{ params.value }}',
            ],
            env: { VALUE: '${{ params.value }}' },
            parse: 'json',
          },
        },
        {
          name: 'script',
          adapter: 'shell',
          action: 'run',
          with: {
            command: ['exec "$1" -e "$2" -- "$3"', process.execPath, PRINT_ARGV, '${{ params.value }}'],
            shell: true,
            parse: 'json',
          },
        },
      ],
      { parameters: { value: { type: 'string', required: true }, other: { type: 'string', default: 'OTHER' } } },
    );

    it('each hostile value is one argv entry, byte for byte, with shell: false and as "$1" with shell: true; nothing else ran', async () => {
      const marker = join(scratch, 'marker');
      const values = hostileValues(marker);
      const started = await Promise.all(
        values.map((value) => agent.request('POST', '/execute', { wpk_content: wpk, parameters: { value } })),
      );
      for (const [i, r] of started.entries()) {
        assert.equal(r.status, 202, r.text);
        const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
        const value = values[i]!;
        assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
        const [argv, script] = rec.steps;
        assert.deepEqual(
          argv.outputs.json.argv,
          [value, `prefix:${value}`],
          `shell: false, value ${JSON.stringify(value)}`,
        );
        // The environment is the explicit keys plus PATH, nothing the agent itself has (HOME, DATA_DIR, …).
        assert.deepEqual(argv.outputs.json.env, { PATH: process.env.PATH, VALUE: value });
        assert.deepEqual(script.outputs.json, [value], `shell: true, value ${JSON.stringify(value)}`);
      }
      assert.equal(existsSync(marker), false, 'no value was run as a command');
    });
  });

  describe('in the adapter', () => {
    it('refuses a NUL byte in an argument with a non-retryable validation_error instead of a crash', async () => {
      const err = await rejectsWith(
        shellRun({ allowShell: false }).run({ command: ['printf', '%s', 'a\0b'] }),
        'validation_error',
      );
      assert.match(err.message, /command\[2\].*NUL/);
      assert.equal(err.retryable, false);
    });
  });
});

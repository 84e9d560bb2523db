/**
 * Hostile parameter values through real shell steps: template syntax of every kind, shell metacharacters,
 * newlines, quotes, unicode, lone surrogates and NUL bytes. A value is data: it reaches the program as one
 * argv entry (and through env and stdin) byte for byte, and is never evaluated again.
 */
import assert from 'node:assert/strict';
import { startAgent, useAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { uniqueName } from '../http/http-support.js';
import {
  assertInvalidAt,
  assertInvariants,
  assertRefused,
  createWitness,
  executionCount,
  postJson,
  raw,
  type RawReply,
  useWitness,
  type Witness,
} from './hostile-support.js';

const OTHER_VALUE = 'OTHER-VALUE-must-not-appear';
const FIRST_OUTPUT = 'FIRST-OUTPUT-must-not-appear';

/** A step name for value i on a channel. */
const stepName = (channel: string, i: number) => `${channel}-${i}`;

/**
 * A package that hands each value to the program four ways: as a whole argv entry, embedded in a longer
 * argument, as an environment variable and on stdin; and once more through another step's output.
 */
function echoPackage(count: number) {
  const parameters: Record<string, unknown> = { other: { type: 'string', default: OTHER_VALUE } };
  const handlers: unknown[] = [shellStep('first', ['printf', '%s', FIRST_OUTPUT])];
  for (let i = 0; i < count; i++) {
    parameters[`v${i}`] = { type: 'string' };
    handlers.push(
      shellStep(stepName('arg', i), ['printf', '%s', `\${{ params.v${i} }}`]),
      shellStep(stepName('embedded', i), ['printf', '%s', `[\${{ params.v${i} }}]`]),
      shellStep(stepName('env', i), ['printenv', 'HOSTILE'], {
        with: { command: ['printenv', 'HOSTILE'], env: { HOSTILE: `\${{ params.v${i} }}` } },
      }),
      shellStep(stepName('stdin', i), ['cat'], { with: { command: ['cat'], stdin: `\${{ params.v${i} }}` } }),
      shellStep(stepName('relay', i), ['printf', '%s', `\${{ steps.${stepName('arg', i)}.outputs.stdout }}`]),
    );
  }
  return pkg(uniqueName('echo'), handlers, { parameters });
}

/** What a value becomes on its way to a process: argv, env and pipes are bytes, so a lone surrogate is U+FFFD. */
function asUtf8(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

describe('hostile input: parameter values through real shell steps', function () {
  this.timeout(60_000);
  const agent = useAgent();
  const witness = useWitness(agent);

  /**
   * Runs the values through echoPackage and checks every channel gives back exactly the value, and that the
   * invariants hold afterwards.
   */
  async function roundTrip(values: string[], expected: (v: string) => string = (v) => v): Promise<any> {
    const parameters = Object.fromEntries(values.map((v, i) => [`v${i}`, v]));
    const r = await postJson(agent, '/execute', { wpk_content: echoPackage(values.length), parameters });
    assert.equal(r.status, 202, r.text);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed'], 30_000);
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    const out = (name: string) => rec.steps.find((s: { name: string }) => s.name === name).outputs.stdout;
    values.forEach((v, i) => {
      const want = expected(v);
      const what = `value ${i} ${JSON.stringify(v).slice(0, 80)}`;
      assert.equal(rec.parameters[`v${i}`], v, `${what}: the record keeps the value as given`);
      assert.equal(out(stepName('arg', i)), want, `${what}: as one argv entry`);
      assert.equal(out(stepName('embedded', i)), `[${want}]`, `${what}: embedded in an argument`);
      assert.equal(out(stepName('env', i)), `${want}\n`, `${what}: as an environment variable`);
      assert.equal(out(stepName('stdin', i)), want, `${what}: on stdin`);
      assert.equal(out(stepName('relay', i)), want, `${what}: through another step's output, not evaluated again`);
      const input = rec.steps.find((s: { name: string }) => s.name === stepName('arg', i)).input;
      assert.deepEqual(input.command, ['printf', '%s', v], `${what}: the recorded step input holds the value`);
    });
    const outputs = JSON.stringify(
      rec.steps.filter((s: { name: string }) => s.name !== 'first').map((s: { outputs: unknown }) => s.outputs),
    );
    assert.ok(
      !outputs.includes(OTHER_VALUE) && !outputs.includes(FIRST_OUTPUT),
      'a template inside a value was evaluated',
    );
    await assertInvariants(agent, witness);
    return rec;
  }

  it('passes ${{ }}, {{ }}, ##VAR##, $(...) and printf-style text through as literal data, never evaluated', async () => {
    const rec = await roundTrip([
      '${{ params.other }}',
      '${{ steps.first.outputs.stdout }}',
      '${{ workflow.name }}',
      '${{ execution.id }}',
      '${{ params.v0 }}',
      'pre ${{ params.other }} post ${{ nope',
      '${{',
      '}}',
      '{{ x }}',
      '{{userId}}',
      '##VAR:unquoted:flowInstance##',
      '$(id)',
      '${HOME}',
      '$HOME',
      '%s %d %n %%',
    ]);
    // The log carries each one-line value as the program printed it.
    const logs = await raw(agent, 'GET', `/logs/${rec.execution_id}?step=${stepName('arg', 0)}`);
    assert.ok(
      logs.body.logs.some(
        (l: { stream: string; message: string }) => l.stream === 'stdout' && l.message === '${{ params.other }}',
      ),
      logs.text,
    );
  });

  it('passes shell metacharacters through as one argument: nothing is run by a shell', async () => {
    await roundTrip([
      '; rm -rf /',
      'a && touch /tmp/hostile-pwned',
      'a | cat /etc/passwd',
      'a || b',
      '`id`',
      '$(touch /tmp/hostile-pwned)',
      '> /tmp/hostile-pwned',
      '< /etc/passwd',
      '& sleep 100 &',
      '*',
      '~',
      '!!',
      '-n',
      '--help',
    ]);
    assert.equal((await raw(agent, 'GET', '/health')).status, 200);
  });

  it('passes newlines, quotes, backslashes, tabs, blanks and the empty string through byte for byte', async () => {
    await roundTrip([
      'a\nb\r\nc',
      '\n',
      'trailing newline\n',
      "'",
      '"',
      '\\',
      `it's "quoted" \\ back`,
      '\t tab \v vt \f ff',
      '  leading and trailing  ',
      '',
      '\r',
    ]);
  });

  it('passes unicode through byte for byte: emoji, ZWJ sequences, RTL overrides, combining marks, BOM, astral characters', async () => {
    await roundTrip([
      '😀',
      '👩‍👩‍👧‍👦',
      '\u202eevil\u202c.txt',
      'e\u0301\u0301\u0301',
      '漢字かなカナ',
      '\u200b\u200d\u2060',
      '\ufeffbom',
      '𝕏𝔂𝔃',
      'Ω≈ç√∫',
      'مرحبا',
      '\u0085\u2028\u2029',
    ]);
  });

  it('passes a 100 000-character value through as one argument', async () => {
    await roundTrip(['x'.repeat(100_000)]);
  });

  it('keeps a lone surrogate in the record and hands the process its UTF-8 form (U+FFFD), without failing', async () => {
    // JSON can carry "\ud800"; argv, env and pipes are bytes, where it has no encoding.
    const rec = await roundTrip(['\ud800', 'x\udfffy', '\udc00\ud800', 'ok\ud83d'], asUtf8);
    assert.equal(rec.parameters.v0, '\ud800');
    assert.equal(asUtf8('\ud800'), '\ufffd');
  });

  it('fails a step given a NUL byte in argv or env with validation_error naming the input, starting no process; stdin carries it', async () => {
    const value = 'a\u0000b';
    const pkgNul = pkg(
      uniqueName('nul'),
      [
        shellStep('stdin', ['cat'], { with: { command: ['cat'], stdin: '${{ params.v }}' } }),
        shellStep('argv', ['printf', '%s', '${{ params.v }}'], { onFailure: 'continue' }),
        shellStep('env', ['printenv', 'X'], {
          with: { command: ['printenv', 'X'], env: { X: '${{ params.v }}' } },
          onFailure: 'continue',
        }),
        shellStep('cwd', ['true'], {
          with: { command: ['true'], cwd: '/tmp/${{ params.v }}' },
          onFailure: 'continue',
        }),
      ],
      { parameters: { v: { type: 'string' } } },
    );
    // A NUL is a legal JSON string character and a legal parameter: the request is accepted.
    const r = await postJson(agent, '/execute', { wpk_content: pkgNul, parameters: { v: value } });
    assert.equal(r.status, 202, r.text);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    const step = (name: string) => rec.steps.find((s: { name: string }) => s.name === name);
    assert.equal(step('stdin').status, 'succeeded');
    assert.equal(step('stdin').outputs.stdout, value, 'stdin is data: the NUL goes through');
    for (const [name, at] of [
      ['argv', '$.with.command[2]'],
      ['env', '$.with.env.X'],
      ['cwd', '$.with.cwd'],
    ]) {
      assert.equal(step(name).status, 'failed', name);
      assert.equal(step(name).error.type, 'validation_error', `${name}: ${JSON.stringify(step(name).error)}`);
      assert.ok(
        JSON.stringify(step(name).error).includes(at.replace('$.', '')),
        `${name}: the error names ${at}: ${JSON.stringify(step(name).error)}`,
      );
    }
    const logs = await raw(agent, 'GET', `/logs/${rec.execution_id}`);
    const started = logs.body.logs
      .filter((l: { message: string }) => /^started pid/.test(l.message))
      .map((l: { step: string }) => l.step);
    assert.deepEqual(started, ['stdin'], 'only the stdin step started a process');
    await assertInvariants(agent, witness);
  });

  it('refuses a package with a literal NUL in a command with 400 naming the path, and creates nothing', async () => {
    const before = await executionCount(agent);
    const bad = pkg(uniqueName('nul-literal'), [shellStep('a', ['printf', 'x\u0000y'])]);
    const v = await postJson(agent, '/validate', { wpk_content: bad });
    assert.equal(v.status, 200);
    assert.equal(v.body.valid, false);
    assert.ok(
      v.body.errors.some((e: { path: string }) => e.path === '$.spec.handlers[0].with.command[1]'),
      v.text,
    );
    const paths = assertRefused(
      await postJson(agent, '/execute', { wpk_content: bad }),
      'literal NUL',
      400,
      'validation_error',
    );
    assert.ok(paths.includes('$.spec.handlers[0].with.command[1]'), paths.join(', '));
    await assertInvariants(agent, witness, before);
  });

  it('refuses parameter names that are not identifiers, and template expressions that are not paths', async () => {
    const before = await executionCount(agent);
    for (const name of ['a.b', '../x', '${{x}}', 'a b', '', '-x', 'ünï']) {
      const bad = pkg(uniqueName('badname'), [shellStep('a', ['true'])], {
        parameters: { [name]: { type: 'string', default: 'x' } },
      });
      const v = await postJson(agent, '/validate', { wpk_content: bad });
      assert.equal(v.status, 200, v.text);
      assert.equal(v.body.valid, false, `parameter name ${JSON.stringify(name)}: ${v.text}`);
      assertRefused(
        await postJson(agent, '/execute', { wpk_content: bad, parameters: { [name]: 'x' } }),
        `parameter name ${name}`,
        400,
        'validation_error',
      );
    }
    for (const expr of [
      '${{ params.v; rm -rf / }}',
      '${{ process.env.HOME }}',
      '${{ constructor.constructor("return 1")() }}',
      '${{ params["v"] }}',
      '${{ `id` }}',
      '${{ params.__proto__ }}',
    ]) {
      const bad = pkg(uniqueName('badexpr'), [shellStep('a', ['echo', expr])], {
        parameters: { v: { type: 'string', default: 'x' } },
      });
      const paths = assertRefused(
        await postJson(agent, '/execute', { wpk_content: bad }),
        `expression ${expr}`,
        400,
        'validation_error',
      );
      assert.ok(paths.includes('$.spec.handlers[0].with.command[1]'), `${expr}: ${paths.join(', ')}`);
    }
    await assertInvariants(agent, witness, before);
  });
});

describe('hostile input: regular expressions that backtrack catastrophically', function () {
  this.timeout(30_000);
  let agent: AgentProcess;
  let witness: Witness;
  const EVIL_PATTERN = '^(a+)+$';
  const EVIL_VALUE = `${'a'.repeat(50)}!`; // 2^50 steps for a backtracking engine: the agent would never answer again

  before(async () => {
    agent = await startAgent();
    witness = await createWitness(agent);
  });
  after(async () => {
    // SIGKILL: an agent whose event loop is stuck in a regex cannot drain on SIGTERM.
    await agent?.stop('SIGKILL');
    agent?.cleanup();
  });

  /** The request, answered well within the time a backtracking engine would need, while /health still answers. */
  async function answeredAtOnce(path: string, body: unknown): Promise<RawReply> {
    const started = Date.now();
    const [r, health] = await Promise.all([postJson(agent, path, body), raw(agent, 'GET', '/health')]);
    assert.ok(Date.now() - started < 5_000, `${path} took ${Date.now() - started} ms`);
    assert.equal(health.status, 200);
    return r;
  }

  it('checks a parameter against a pattern like ^(a+)+$ at once, in /validate and /execute', async () => {
    const p = pkg(uniqueName('redos'), [shellStep('a', ['true'])], {
      parameters: { v: { type: 'string', pattern: EVIL_PATTERN } },
    });
    const v = await answeredAtOnce('/validate', { wpk_content: p, parameters: { v: EVIL_VALUE } });
    assertInvalidAt(v, ['$.parameters.v']);
    const before = await executionCount(agent);
    assertRefused(
      await answeredAtOnce('/execute', { wpk_content: p, parameters: { v: EVIL_VALUE }, dry_run: true }),
      'evil pattern',
      400,
      'validation_error',
    );
    await assertInvariants(agent, witness, before);
  });

  it('evaluates a matches_regex condition like ^(a+)+$ at once while the execution runs', async () => {
    const p = pkg(
      uniqueName('redos-when'),
      [
        {
          ...shellStep('guarded', ['echo', 'ran']),
          when: { variable: 'params.v', operator: 'matches_regex', value: EVIL_PATTERN },
        },
        shellStep('after', ['echo', 'after']),
      ],
      { parameters: { v: { type: 'string' } } },
    );
    const r = await answeredAtOnce('/execute', { wpk_content: p, parameters: { v: EVIL_VALUE } });
    assert.equal(r.status, 202, r.text);
    const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed'], 10_000);
    assert.equal(rec.status, 'completed');
    assert.deepEqual(
      rec.steps.map((s: { name: string; status: string }) => [s.name, s.status]),
      [
        ['guarded', 'skipped'],
        ['after', 'succeeded'],
      ],
    );
    await assertInvariants(agent, witness);
  });
});

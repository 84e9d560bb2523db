import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { USE_EXAMPLE_OUTPUT } from '../../../adapters/contract.js';
import { AgentError } from '../../../adapters/errors.js';
import { createShellAdapter } from '../../../adapters/shell/index.js';
import { runChecked } from '../support/outputs.js';
import { isRunning } from '../support/processes.js';
import { type LogLevel, stepContext } from '../support/step-context.js';
import { waitFor } from '../support/wait.js';
import {
  LOG_LINE_LIMIT_BYTES,
  OUTPUT_LIMIT_BYTES,
  SIGKILL_GRACE_MS,
  run,
  type RunInput,
} from '../../../adapters/shell/run.js';

/** A context whose log keeps every line, with when it was logged. */
const makeContext = () => stepContext({ executionId: 'test', step: 'run' });

async function runCommand(input: RunInput) {
  const { ctx, logs } = makeContext();
  return { result: await runChecked(run, ctx, input), logs };
}

/** The shared poll-with-deadline, with this file's argument order. */
const waitUntil = <T>(what: string, probe: () => T | undefined | false, deadlineMs = 5000): Promise<T> =>
  waitFor(probe, what, deadlineMs);

function startedPid(texts: (level: LogLevel) => string[]): number | undefined {
  const line = texts('debug').find((t) => t.startsWith('started pid '));
  return line === undefined ? undefined : Number(line.split(' ')[2]!.replace(':', ''));
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/** Timers running before the action starts; taken after a tick, once mocha has armed its own test timeout. */
async function timerBaseline(): Promise<number> {
  await null;
  return activeTimers();
}

async function rejectsWith(promise: Promise<unknown>, type: string): Promise<AgentError> {
  const err = await promise.then(
    () => assert.fail(`expected a ${type} error, but the action succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AgentError, `expected an AgentError, got ${String(err)}`);
  assert.equal(err.type, type, err.message);
  return err;
}

/** Runs a command that prints its background child's pid, then stops it through `stop`; returns the pids. */
async function startWithGrandchild(script: string, input: Partial<RunInput> = {}) {
  const context = makeContext();
  const promise = run.run(context.ctx, { command: ['sh', '-c', script], ...input });
  promise.catch(() => {}); // observed later; avoid an unhandled rejection meanwhile
  const grandchild = Number(await waitUntil('the grandchild pid on stdout', () => context.texts('stdout')[0]));
  const child = await waitUntil('the started pid in the log', () => startedPid(context.texts));
  assert.ok(isRunning(child) && isRunning(grandchild), 'both processes run before the stop');
  return { ...context, promise, child, grandchild };
}

async function assertGone(...pids: number[]) {
  for (const pid of pids) await waitUntil(`pid ${pid} to be gone`, () => !isRunning(pid));
}

describe('shell adapter: run', () => {
  it('is registered as shell.run, mutates, and has no default compensation', () => {
    const adapter = createShellAdapter();
    assert.equal(adapter.name, 'shell');
    assert.equal(adapter.actions.run!.id, 'run');
    assert.equal(adapter.actions.run!.input, run.input);
    assert.equal(run.mutates, true);
    assert.equal(run.compensate, undefined);
    assert.deepEqual(run.exampleOutput, { exitCode: 0, stdout: '', stderr: '' });
  });

  it('runs argv without a shell, so shell syntax reaches the program literally', async () => {
    const { result } = await runCommand({ command: ['printf', '%s', 'a;b $(echo x)'] });
    assert.deepEqual(result, { exitCode: 0, stdout: 'a;b $(echo x)', stderr: '' });
  });

  it('gives the child only PATH and the env it was given', async () => {
    assert.ok(process.env.HOME !== undefined, 'the test process has HOME, so its absence below means something');
    const { result } = await runCommand({ command: ['env'], env: { FOO: 'bar' }, parse: 'lines' });
    const names = result.lines!.map((line) => line.split('=')[0]).sort();
    assert.deepEqual(names, ['FOO', 'PATH']);
    assert.ok(result.lines!.includes('FOO=bar'));
    assert.ok(result.lines!.includes(`PATH=${process.env.PATH}`));
  });

  it('writes stdin and closes it, and runs in the given cwd', async () => {
    const cat = await runCommand({ command: ['cat'], stdin: 'line one\nline two' });
    assert.equal(cat.result.stdout, 'line one\nline two');
    const pwd = await runCommand({ command: ['pwd'], cwd: os.tmpdir() });
    assert.equal(realpathSync(pwd.result.stdout.trim()), realpathSync(os.tmpdir()));
    // A command that never reads a large stdin still succeeds (EPIPE is not a failure).
    const ignoring = await runCommand({ command: ['true'], stdin: 'x'.repeat(4 * 1024 * 1024) });
    assert.equal(ignoring.result.exitCode, 0);
  });

  it('without stdin the child reads end of file at once', async () => {
    const { result } = await runCommand({ command: ['cat'], timeoutSeconds: 5 });
    assert.equal(result.stdout, '');
  });

  it('parses stdout as json or lines, and fails on invalid json', async () => {
    const json = await runCommand({ command: ['printf', '%s', '{"a":[1,2],"b":"c"}'], parse: 'json' });
    assert.deepEqual(json.result.json, { a: [1, 2], b: 'c' });
    const lines = await runCommand({ command: ['printf', 'one\ntwo\n\nfour\n'], parse: 'lines' });
    assert.deepEqual(lines.result.lines, ['one', 'two', '', 'four']);
    const text = await runCommand({ command: ['printf', 'x'] });
    assert.equal('json' in text.result || 'lines' in text.result, false);
    const { ctx } = makeContext();
    const err = await rejectsWith(run.run(ctx, { command: ['printf', 'not json'], parse: 'json' }), 'command_failed');
    assert.match(err.message, /^stdout is not valid JSON: /);
  });

  it('fails with command_failed and the exit code on a non-success exit; successExitCodes widens success', async () => {
    const { ctx } = makeContext();
    const err = await rejectsWith(
      run.run(ctx, { command: ['sh', '-c', 'echo out; echo oops >&2; exit 3'] }),
      'command_failed',
    );
    assert.equal(err.message, 'command exited with code 3');
    assert.equal(err.details.exitCode, 3);
    assert.equal(err.details.stderr, 'oops\n');
    assert.equal(err.details.stdout, 'out\n');
    const ok = await runCommand({ command: ['sh', '-c', 'exit 3'], successExitCodes: [0, 3] });
    assert.equal(ok.result.exitCode, 3);
  });

  it('fails with command_failed naming a signal the agent did not send', async () => {
    const { ctx } = makeContext();
    const err = await rejectsWith(run.run(ctx, { command: ['sh', '-c', 'kill -USR1 $$'] }), 'command_failed');
    assert.match(err.message, /SIGUSR1/);
  });

  it('reports its process group to the engine while the command runs, and that it is gone once it ended', async () => {
    const context = makeContext();
    const running = runChecked(run, context.ctx, { command: [process.execPath, '-e', 'setTimeout(() => {}, 300)'] });
    const pid = await waitUntil('the started pid in the log', () => startedPid(context.texts));
    assert.deepEqual([...context.groups], [pid], 'the group (led by the command) is reported');
    await running;
    assert.deepEqual([...context.groups], [], 'and forgotten when it ended');
  });

  it('streams output lines into the log while the command still runs', async () => {
    const { ctx, controller, texts } = makeContext();
    let settled = false;
    const promise = run.run(ctx, { command: ['sh', '-c', 'echo first; echo warn >&2; sleep 30'] });
    promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    await waitUntil("'first' in the log", () => texts('stdout').includes('first') && texts('stderr').includes('warn'));
    assert.equal(settled, false, 'the lines arrived before the command finished');
    controller.abort();
    await rejectsWith(promise, 'cancelled');
  });

  it('logs an unfinished last line at exit and cuts an overlong line with a marker', async () => {
    const long = LOG_LINE_LIMIT_BYTES + 5000;
    const script = `process.stdout.write('a\\n' + 'x'.repeat(${long}) + '\\nb')`;
    const { logs, result } = await runCommand({ command: [process.execPath, '-e', script] });
    const lines = logs.filter((e) => e.level === 'stdout').map((e) => e.message);
    assert.equal(lines.length, 3);
    assert.equal(lines[0], 'a');
    assert.equal(lines[1], `${'x'.repeat(LOG_LINE_LIMIT_BYTES)} [runtime-agent: line cut, 5000 more bytes dropped]`);
    assert.equal(lines[2], 'b');
    assert.equal(result.stdout.length, long + 4, 'the output itself is not cut');
  });

  it('on cancel stops the whole process group and leaves no process or timer behind', async () => {
    const timersBefore = await timerBaseline();
    const { controller, promise, child, grandchild } = await startWithGrandchild('sleep 300 & echo $!; wait');
    const started = Date.now();
    controller.abort();
    const err = await rejectsWith(promise, 'cancelled');
    assert.match(err.message, /cancelled/);
    await assertGone(child, grandchild);
    assert.ok(Date.now() - started < SIGKILL_GRACE_MS, 'SIGTERM alone ended it');
    assert.equal(activeTimers(), timersBefore, 'no timer left running');
  });

  it('SIGKILLs a group that ignores SIGTERM after the grace period', async () => {
    const { controller, promise, child, grandchild } = await startWithGrandchild(
      "trap '' TERM; sleep 300 & echo $!; wait",
    );
    const started = Date.now();
    controller.abort();
    await rejectsWith(promise, 'cancelled');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= SIGKILL_GRACE_MS - 50, `SIGTERM was ignored, so it took the grace period (${elapsed} ms)`);
    await assertGone(child, grandchild);
  });

  it('kills a SIGTERM-ignoring straggler at once when the leader exits during the grace period', async () => {
    const timersBefore = await timerBaseline();
    const script = "(trap '' TERM; exec sleep 300) >/dev/null 2>&1 & echo $!; wait";
    const { controller, promise, child, grandchild } = await startWithGrandchild(script);
    const started = Date.now();
    controller.abort();
    await rejectsWith(promise, 'cancelled');
    await assertGone(child, grandchild);
    assert.ok(Date.now() - started < SIGKILL_GRACE_MS, 'did not wait for the grace period');
    assert.equal(activeTimers(), timersBefore, 'the SIGKILL timer was cleared');
  });

  it('fails with timeout after timeoutSeconds and leaves no process behind', async () => {
    const timersBefore = await timerBaseline();
    const { ctx, texts } = makeContext();
    const started = Date.now();
    const err = await rejectsWith(run.run(ctx, { command: ['sleep', '30'], timeoutSeconds: 0.3 }), 'timeout');
    assert.equal(err.message, 'command timed out after 0.3s');
    assert.ok(Date.now() - started < SIGKILL_GRACE_MS, 'sleep ended on SIGTERM');
    await assertGone(startedPid(texts)!);
    assert.equal(activeTimers(), timersBefore, 'no timer left running');
  });

  it('keeps the last 1 MiB of a large output with a marker saying how much was dropped', async () => {
    const count = 300_000; // 12 bytes a line: about 3.4 MiB
    const script = `const a = []; for (let i = 0; i < ${count}; i++) a.push('line ' + String(i).padStart(6, '0')); process.stdout.write(a.join('\\n') + '\\n')`;
    const { result, logs } = await runCommand({ command: [process.execPath, '-e', script] });
    const total = count * 12;
    const marker = /^\[runtime-agent: (\d+) earlier bytes of stdout dropped\]\n/.exec(result.stdout);
    assert.ok(marker, 'starts with the marker line');
    const kept = result.stdout.slice(marker[0].length);
    assert.equal(Buffer.byteLength(kept), OUTPUT_LIMIT_BYTES);
    assert.equal(Number(marker[1]), total - OUTPUT_LIMIT_BYTES);
    assert.ok(result.stdout.length <= OUTPUT_LIMIT_BYTES + marker[0].length);
    assert.ok(kept.endsWith(`line ${String(count - 1).padStart(6, '0')}\n`));
    assert.equal(logs.filter((e) => e.level === 'stdout').length, count, 'every line was still logged');
  });

  it('refuses shell: true with a non-retryable forbidden naming SHELL_ALLOW_SHELL when the configuration does not allow it', async () => {
    const { ctx, logs } = makeContext();
    const err = await rejectsWith(run.run(ctx, { command: ['echo', 'hi'], shell: true }), 'forbidden');
    assert.match(err.message, /SHELL_ALLOW_SHELL/);
    assert.equal(err.retryable, false);
    assert.equal(logs.length, 0, 'nothing was started');
    // The schema itself accepts a boolean: whether true is allowed is the agent's configuration, not the format.
    assert.equal((run.input as any).properties.shell.type, 'boolean');
    assert.equal('const' in (run.input as any).properties.shell, false);
  });

  it('fails with a non-retryable command_failed when the program or cwd is missing', async () => {
    const { ctx } = makeContext();
    const missing = await rejectsWith(run.run(ctx, { command: ['no-such-program-4f1c'] }), 'command_failed');
    assert.equal(missing.retryable, false);
    assert.match(missing.message, /'no-such-program-4f1c'.*not found/);
    const badCwd = await rejectsWith(run.run(ctx, { command: ['ls'], cwd: '/no/such/dir' }), 'command_failed');
    assert.equal(badCwd.retryable, false);
    assert.match(badCwd.message, /\/no\/such\/dir/);
  });

  it('does not start anything when already cancelled', async () => {
    const { ctx, controller, logs } = makeContext();
    controller.abort();
    await rejectsWith(run.run(ctx, { command: ['sleep', '30'] }), 'cancelled');
    assert.equal(logs.length, 0);
  });

  it('dry run executes nothing and logs the argv with env names only', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'shell-dry-'));
    try {
      const file = path.join(dir, 'touched');
      const { ctx, texts } = makeContext();
      ctx.dryRun = true;
      const out = await run.run(ctx, {
        command: ['touch', file],
        env: { TOKEN: 's3cret' },
        stdin: 'abc',
        timeoutSeconds: 9,
      });
      assert.equal(out, USE_EXAMPLE_OUTPUT);
      assert.equal(existsSync(file), false);
      const [line] = texts('info');
      assert.ok(line?.includes(JSON.stringify(['touch', file])), line);
      assert.ok(line.includes('TOKEN') && !line.includes('s3cret'), line);
      assert.match(line, /3 bytes of stdin/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('kills running process groups when the agent process exits', async () => {
    const runModule = fileURLToPath(new URL('../../../adapters/shell/run.ts', import.meta.url));
    const script = `
      import { run } from ${JSON.stringify(runModule)};
      const say = (m) => process.stdout.write(m + '\\n');
      const log = { debug: say, info() {}, warn() {}, error() {}, line: (s, t) => { say('grandchild ' + t); process.exit(0); } };
      run.run({ signal: new AbortController().signal, log, dryRun: false, executionId: 't', step: 's', attempt: 1, processGroupStarted: () => () => {} },
        { command: ['sh', '-c', 'sleep 300 & echo $!; wait'] });`;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { timeout: 15000 },
        (err, out) => (err ? reject(err) : resolve(out)),
      ),
    );
    const child = Number(/started pid (\d+)/.exec(stdout)?.[1]);
    const grandchild = Number(/grandchild (\d+)/.exec(stdout)?.[1]);
    assert.ok(child > 0 && grandchild > 0, stdout);
    await assertGone(child, grandchild);
  });
});

/**
 * shell.start, stop and kill_all, called directly with the fake step context: real processes, real ports on
 * 127.0.0.1, readiness read from /proc.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { USE_EXAMPLE_OUTPUT } from '../../../adapters/contract.js';
import type { AgentError } from '../../../adapters/errors.js';
import { createShellAdapter } from '../../../adapters/shell/index.js';
import { freePort } from '../support/agent-process.js';
import { runChecked } from '../support/outputs.js';
import { isRunning } from '../support/processes.js';
import { stepContext } from '../support/step-context.js';
import { waitFor } from '../support/wait.js';

/** A node program that prints `starting`, binds `port` (tcp or udp) after `delayMs`, prints `ready`, and runs until stopped. */
function server(port: number, protocol: 'tcp' | 'udp' = 'tcp', delayMs = 100): string[] {
  const bind =
    protocol === 'tcp'
      ? `require('node:net').createServer().listen(${port}, '127.0.0.1', done)`
      : `require('node:dgram').createSocket('udp4').bind(${port}, '127.0.0.1', done)`;
  const script = `console.log('starting'); function done() { console.log('ready'); setInterval(() => {}, 1000); }
setTimeout(() => ${bind}, ${delayMs});`;
  return ['node', '-e', script];
}

describe('shell start, stop and kill_all', function () {
  this.timeout(30_000);
  let adapter: ReturnType<typeof createShellAdapter>;
  const leftovers: number[] = [];

  beforeEach(() => {
    adapter = createShellAdapter();
  });

  afterEach(async () => {
    // Whatever a failed test left running goes, so that no test leaves a process behind.
    await runChecked(adapter.actions.kill_all!, stepContext().ctx, {});
    for (const pid of leftovers.splice(0)) if (isRunning(pid)) process.kill(-pid, 'SIGKILL');
  });

  async function start(input: Record<string, unknown>) {
    const fake = stepContext({ step: 'start' });
    const out = (await runChecked(adapter.actions.start!, fake.ctx, input)) as { pid: number; readyAfterMs: number };
    leftovers.push(out.pid);
    return { out, fake };
  }

  it('starts a server, is ready once its TCP port listens, and leaves it running until stop ends its group', async () => {
    const port = await freePort();
    const { out, fake } = await start({ command: server(port, 'tcp', 300), ready: { port } });
    assert.ok(isRunning(out.pid));
    // Ready means bound: a connection now succeeds.
    await new Promise<void>((resolve, reject) =>
      connect(port, '127.0.0.1', function (this: import('node:net').Socket) {
        this.end();
        resolve();
      }).on('error', reject),
    );
    assert.deepEqual([...fake.background.keys()], [out.pid], 'recorded as left running');
    // Printed before the port is bound (ready itself may come after the port is seen): in the step's log.
    assert.ok(fake.texts('stdout').includes('starting'), 'output before ready goes to the step log');

    const stopped = stepContext({ step: 'stop' });
    const result = await runChecked(adapter.actions.stop!, stopped.ctx, { pid: out.pid, graceSeconds: 1 });
    assert.equal(result.wasRunning, true);
    assert.equal(result.signal, 'SIGTERM');
    assert.equal(isRunning(out.pid), false);
    await waitFor(() => fake.background.size === 0, 'the record of the process to be removed once it exited');

    const again = await runChecked(adapter.actions.stop!, stepContext().ctx, { pid: out.pid });
    assert.equal(again.wasRunning, false, 'stopping it twice is harmless');
  });

  it('does not take a port another program holds for its own: a server that cannot bind it fails', async () => {
    const port = await freePort();
    const holder = createServer().listen(port, '127.0.0.1');
    await once(holder, 'listening');
    try {
      await assert.rejects(
        runChecked(adapter.actions.start!, stepContext().ctx, { command: server(port, 'tcp', 300), ready: { port } }),
        (err: AgentError) => err.type === 'command_failed' && /exited before it was ready/.test(err.message),
      );
    } finally {
      holder.close();
    }
  });

  it('is ready once a UDP port is bound', async () => {
    const port = await freePort();
    const { out } = await start({ command: server(port, 'udp'), ready: { port, protocol: 'udp' } });
    assert.ok(isRunning(out.pid));
  });

  it('is ready once a line matches ready.line; what it prints after that goes to stop, not to the finished step', async () => {
    // The handler first: a SIGTERM that came between 'ready' and its registration would end node at once.
    const polite = `process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); console.log('ready');
setInterval(() => {}, 1000);`;
    const { out, fake } = await start({ command: ['node', '-e', polite], ready: { line: '^rea.y$' } });
    assert.ok(fake.texts('stdout').includes('ready'));
    // A long grace: on a loaded machine the handler may take a while, and a SIGKILL must not end it first.
    const stopped = await runChecked(adapter.actions.stop!, stepContext().ctx, { pid: out.pid, graceSeconds: 60 });
    assert.equal(stopped.wasRunning, true);
    assert.equal(stopped.exitCode, 0);
    assert.match(String(stopped.output), /bye/);
    assert.equal(fake.texts('stdout').includes('bye'), false);
  });

  it('fails with command_failed when the program exits before it is ready, and leaves nothing behind', async () => {
    const fake = stepContext();
    await assert.rejects(
      runChecked(adapter.actions.start!, fake.ctx, {
        command: ['node', '-e', 'console.error("no such config"); process.exit(3)'],
        ready: { port: await freePort() },
      }),
      (err: AgentError) => {
        assert.equal(err.type, 'command_failed');
        assert.match(err.message, /exited before it was ready \(exit code 3\)/);
        assert.match(String((err.details as { output: string }).output), /no such config/);
        return true;
      },
    );
    await waitFor(() => fake.background.size === 0, 'the record of the exited process to be removed');
    assert.deepEqual((await runChecked(adapter.actions.kill_all!, stepContext().ctx, {})).pids, []);
  });

  it('stops the process and fails with timeout when it is not ready in time', async () => {
    const fake = stepContext();
    const port = await freePort();
    await assert.rejects(
      runChecked(adapter.actions.start!, fake.ctx, {
        command: ['node', '-e', 'setInterval(() => {}, 1000)'],
        ready: { port, timeoutSeconds: 0.5 },
      }),
      (err: AgentError) =>
        err.type === 'timeout' && /was not ready when tcp port \d+ is bound after 0.5s/.test(err.message),
    );
    await waitFor(() => fake.background.size === 0, 'the timed-out process to be gone');
  });

  it('on cancel while waiting, stops the whole group (a grandchild too) and fails cancelled', async () => {
    const fake = stepContext();
    const grandchild = `const c = require('node:child_process').spawn('node', ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
console.log('child ' + c.pid); setInterval(() => {}, 1000);`;
    const started = runChecked(adapter.actions.start!, fake.ctx, {
      command: ['node', '-e', grandchild],
      ready: { port: await freePort() },
    });
    const childLine = await waitFor(() => fake.texts('stdout').find((t) => t.startsWith('child ')), 'the grandchild');
    const child = Number(childLine.split(' ')[1]);
    const [leader] = [...fake.background.keys()];
    fake.controller.abort();
    await assert.rejects(started, (err: AgentError) => err.type === 'cancelled');
    await waitFor(() => !isRunning(leader!) && !isRunning(child), 'the group to be gone');
  });

  it('kill_all stops every started process and says which', async () => {
    const a = await start({ command: server(await freePort()), ready: { line: 'ready' } });
    const b = await start({ command: server(await freePort()), ready: { line: 'ready' } });
    const dry = await runChecked(adapter.actions.kill_all!, stepContext({ dryRun: true }).ctx, {});
    assert.equal(dry.killed, 2, 'a dry run says what it would stop');
    assert.ok(isRunning(a.out.pid) && isRunning(b.out.pid), 'and stops nothing');
    const result = await runChecked(adapter.actions.kill_all!, stepContext().ctx, { graceSeconds: 1 });
    assert.equal(result.killed, 2);
    assert.deepEqual([...(result.pids as number[])].sort(), [a.out.pid, b.out.pid].sort());
    assert.equal(isRunning(a.out.pid) || isRunning(b.out.pid), false);
    assert.equal((await runChecked(adapter.actions.kill_all!, stepContext().ctx, {})).killed, 0);
  });

  it('stop leaves alone a pid it did not start', async () => {
    const result = await runChecked(adapter.actions.stop!, stepContext().ctx, { pid: process.pid });
    assert.equal(result.wasRunning, false);
    assert.ok(isRunning(process.pid));
  });

  it('a bad ready.line is a validation error before anything starts; a dry run starts nothing', async () => {
    const fake = stepContext();
    await assert.rejects(
      adapter.actions.start!.run(fake.ctx, { command: ['true'], ready: { line: '(' } }),
      (err: AgentError) =>
        err.type === 'validation_error' && /ready.line is not a valid regular expression/.test(err.message),
    );
    assert.equal(fake.background.size, 0);
    const dry = stepContext({ dryRun: true });
    const out = await adapter.actions.start!.run(dry.ctx, { command: server(await freePort()), ready: { port: 1 } });
    assert.equal(out, USE_EXAMPLE_OUTPUT);
    assert.equal(dry.background.size, 0);
    assert.match(dry.texts('info')[0]!, /^dry run: would start \["node","-e",.*ready when tcp port 1 is bound/);
  });

  it("start's default compensation is stop with its pid", () => {
    const spec = adapter.actions.start!;
    assert.deepEqual(spec.compensate!({ command: ['x'] }, { pid: 77 }), { action: 'stop', with: { pid: 77 } });
  });
});

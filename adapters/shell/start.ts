import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { defineAction, type StepContext, USE_EXAMPLE_OUTPUT } from '../contract.js';
import { AgentError } from '../errors.js';
import { addAbortCallback, removeAbortCallback } from '../shared/abort.js';
import { sensitiveValues } from '../shared/sensitive.js';
import { planLaunch } from './launch.js';
import { LineSplitter } from './line-splitter.js';
import { canSeePorts, portBoundByGroup } from './listening.js';
import { DETAIL_TAIL_BYTES, LOG_LINE_LIMIT_BYTES } from './output.js';
import { SIGKILL_GRACE_MS, terminateGroup, trackGroup } from './process-group.js';
import type { ShellSettings } from './settings.js';
import { spawnInGroup } from './spawn.js';
import { DEFAULT_READY_TIMEOUT_SECONDS, type ReadyInput, StartInput, StartOutput } from './start-input.js';
import { type Exit, type StartedProcesses, startedTail } from './started.js';
import { checkRunStatic } from './static-check.js';

/** How often `ready.port` is looked up. */
const PORT_POLL_MS = 50;
/** After the process exits, how long its output may take to arrive. */
const OUTPUT_SETTLE_MS = 200;

type Wait = { kind: 'ready' } | { kind: 'exited'; exit: Exit } | { kind: 'timeout' } | { kind: 'cancelled' };

/**
 * `start`: a long-running program (a server) in its own process group, left running when the step ends.
 * Its output goes to the step's log until it is ready; the agent ends it with `stop`, `kill_all`, the
 * rollback of its execution, an execution that ends other than completed, and the agent's shutdown.
 */
export function createStartAction(settings: ShellSettings, started: StartedProcesses) {
  return defineAction({
    id: 'start',
    description:
      'Starts a long-running program (argv, as run) in its own process group and leaves it running; ready when a port is ' +
      'bound or a line appears; outputs its pid. Its default compensation is stop.',
    mutates: true,
    supportsDryRun: true,
    input: StartInput,
    output: StartOutput,
    exampleOutput: { pid: 4242, command: ['iperf3', '-s'], startedAt: '2026-01-01T00:00:00.000Z', readyAfterMs: 0 },
    checkStatic: checkRunStatic(settings),
    secretsIn: (input) => sensitiveValues(input.env),
    compensate: (_input, out) => ({ action: 'stop', with: { pid: out.pid } }),

    async run(ctx, input) {
      const line = readyLine(input.ready);
      if (input.ready?.port !== undefined && !canSeePorts()) {
        throw new AgentError('adapter_error', 'ready.port needs /proc/<pid>/net (Linux); use ready.line instead', {
          retryable: false,
        });
      }
      if (ctx.dryRun) {
        const launch = planLaunch(settings, input);
        ctx.log.info(
          `dry run: would start ${JSON.stringify([launch.file, ...launch.args])} ${describeReady(input.ready)}`,
        );
        return USE_EXAMPLE_OUTPUT;
      }
      const { subprocess, pid, argv } = await spawnInGroup(settings, input, ctx.signal);
      const spawnedAt = performance.now();
      const startedAt = new Date().toISOString();
      const untrack = trackGroup(pid);
      const forget = ctx.backgroundGroupStarted(pid, argv);
      // Exited means its output has arrived too (for stop to report), unless a child it left holds the pipes.
      const streamsClosed = Promise.all([once(subprocess.stdout, 'close'), once(subprocess.stderr, 'close')]);
      const exited: Promise<Exit> = subprocess.then(async (r) => {
        await Promise.race([streamsClosed, delay(OUTPUT_SETTLE_MS)]);
        return { exitCode: r.exitCode ?? null, signal: r.signal ?? null };
      });
      void exited.then(() => {
        untrack();
        forget();
      });
      ctx.log.info(`started pid ${pid}: ${JSON.stringify(argv)}; waiting until it is ${describeReady(input.ready)}`);

      const tail = startedTail();
      let logging = true;
      let sawLine = () => {};
      const lineSeen = line && new Promise<void>((resolve) => (sawLine = resolve));
      const splitters = (['stdout', 'stderr'] as const).map((stream) => {
        const lines = new LineSplitter((text) => {
          ctx.log.line(stream, text);
          if (line?.test(text)) sawLine();
        }, LOG_LINE_LIMIT_BYTES);
        subprocess[stream].on('data', (chunk: Buffer) => {
          tail.push(chunk);
          if (logging) lines.push(chunk);
        });
        return lines;
      });

      const outcome = await untilReady(ctx, pid, input.ready, exited, lineSeen || undefined);
      logging = false;
      for (const lines of splitters) lines.flush();
      const details = () => ({ output: tail.tail(DETAIL_TAIL_BYTES) });
      switch (outcome.kind) {
        case 'ready': {
          const readyAfterMs = Math.round(performance.now() - spawnedAt);
          started.add({ pid, command: argv, startedAt, tail, exited });
          ctx.log.info(`pid ${pid} is ready after ${readyAfterMs} ms; it keeps running after this step`);
          return { pid, command: argv, startedAt, readyAfterMs };
        }
        case 'exited':
          terminateGroup(pid, SIGKILL_GRACE_MS).done(); // what it started before it exited goes too
          throw new AgentError(
            'command_failed',
            `'${argv[0]}' exited before it was ready (${outcome.exit.signal ? `killed by ${outcome.exit.signal}` : `exit code ${outcome.exit.exitCode}`})`,
            { details: { ...outcome.exit, ...details() } },
          );
        case 'timeout':
        case 'cancelled': {
          const seconds = input.ready?.timeoutSeconds ?? DEFAULT_READY_TIMEOUT_SECONDS;
          ctx.log.warn(
            `${outcome.kind === 'timeout' ? 'not ready in time' : 'cancelled'}: stopping process group ${pid}`,
          );
          const stopping = terminateGroup(pid, SIGKILL_GRACE_MS);
          await exited;
          stopping.done();
          if (outcome.kind === 'cancelled')
            throw new AgentError('cancelled', `start was cancelled; process group ${pid} was stopped`, {
              details: details(),
            });
          throw new AgentError('timeout', `'${argv[0]}' was not ${describeReady(input.ready)} after ${seconds}s`, {
            details: { timeoutSeconds: seconds, ...details() },
          });
        }
      }
    },
  });
}

function readyLine(ready: ReadyInput | undefined): RegExp | undefined {
  if (ready?.line === undefined) return undefined;
  try {
    return new RegExp(ready.line);
  } catch (err) {
    throw new AgentError(
      'validation_error',
      `ready.line is not a valid regular expression: ${(err as Error).message}`,
      {
        retryable: false,
      },
    );
  }
}

function describeReady(ready: ReadyInput | undefined): string {
  const parts: string[] = [];
  if (ready?.port !== undefined) parts.push(`${ready.protocol ?? 'tcp'} port ${ready.port} is bound`);
  if (ready?.line !== undefined) parts.push(`a line matches /${ready.line}/`);
  return parts.length ? `ready when ${parts.join(' and ')}` : 'ready once spawned';
}

/** Settles with the first of: ready (every condition holds), exited, ready timeout, abort. */
function untilReady(
  ctx: StepContext,
  pid: number,
  ready: ReadyInput | undefined,
  exited: Promise<Exit>,
  lineSeen: Promise<void> | undefined,
): Promise<Wait> {
  return new Promise((resolve) => {
    let portOk = ready?.port === undefined;
    let lineOk = lineSeen === undefined;
    let settled = false;
    const finish = (wait: Wait) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      clearTimeout(timer);
      removeAbortCallback(ctx.signal, onAbort);
      resolve(wait);
    };
    const check = () => {
      if (portOk && lineOk) finish({ kind: 'ready' });
    };
    const lookUp = () => {
      if (ready?.port !== undefined && portBoundByGroup(pid, ready.port, ready.protocol ?? 'tcp')) {
        portOk = true;
        check();
      }
    };
    const poll = portOk ? undefined : setInterval(lookUp, PORT_POLL_MS);
    const timer = setTimeout(
      () => finish({ kind: 'timeout' }),
      (ready?.timeoutSeconds ?? DEFAULT_READY_TIMEOUT_SECONDS) * 1000,
    );
    const onAbort = () => finish({ kind: 'cancelled' });
    void exited.then((exit) => finish({ kind: 'exited', exit }));
    void lineSeen?.then(() => {
      lineOk = true;
      check();
    });
    if (ctx.signal.aborted) return onAbort();
    addAbortCallback(ctx.signal, onAbort);
    if (!portOk) lookUp();
    check();
  });
}

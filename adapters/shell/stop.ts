import { type Static, Type } from '@sinclair/typebox';
import { defineAction } from '../contract.js';
import { MAX_TIMER_SECONDS } from '../shared/timers.js';
import { SIGKILL_GRACE_MS } from './process-group.js';
import type { StartedProcess, StartedProcesses } from './started.js';

const GraceSeconds = Type.Optional(
  Type.Number({
    minimum: 0,
    maximum: MAX_TIMER_SECONDS,
    description: `seconds between SIGTERM and SIGKILL to the process group (default ${SIGKILL_GRACE_MS / 1000})`,
  }),
);

export const StopInput = Type.Object(
  {
    pid: Type.Integer({ minimum: 1, description: 'pid a start step output' }),
    graceSeconds: GraceSeconds,
  },
  { additionalProperties: false },
);

export const StopOutput = Type.Object(
  {
    pid: Type.Integer(),
    wasRunning: Type.Boolean({ description: 'false when no process started by this agent had that pid any more' }),
    exitCode: Type.Union([Type.Integer(), Type.Null()]),
    signal: Type.Union([Type.String(), Type.Null()]),
    output: Type.String({ description: 'the tail of what it printed after it was ready (at most 16 KiB)' }),
  },
  { additionalProperties: false },
);
export type StopOutput = Static<typeof StopOutput>;

export const KillAllInput = Type.Object({ graceSeconds: GraceSeconds }, { additionalProperties: false });

export const KillAllOutput = Type.Object(
  {
    killed: Type.Integer({ description: 'how many processes were stopped' }),
    pids: Type.Array(Type.Integer()),
  },
  { additionalProperties: false },
);

const graceMs = (seconds: number | undefined) => (seconds === undefined ? SIGKILL_GRACE_MS : seconds * 1000);

/** `stop`: ends a process `start` left running (its whole group). Only processes this agent started are touched. */
export function createStopAction(started: StartedProcesses) {
  return defineAction({
    id: 'stop',
    description:
      'Stops a process a start step left running (SIGTERM to its process group, SIGKILL after graceSeconds); ' +
      'a pid this agent did not start, or that has ended, is left alone and reported as not running.',
    mutates: true,
    supportsDryRun: true,
    input: StopInput,
    output: StopOutput,
    exampleOutput: { pid: 4242, wasRunning: true, exitCode: null, signal: 'SIGTERM', output: '' },

    async run(ctx, input): Promise<StopOutput> {
      const p = started.get(input.pid);
      if (!p) {
        ctx.log.info(`pid ${input.pid} is not a process this agent started and still runs: nothing to stop`);
        return { pid: input.pid, wasRunning: false, exitCode: null, signal: null, output: '' };
      }
      if (ctx.dryRun) {
        ctx.log.info(`dry run: would stop pid ${p.pid} ${JSON.stringify(p.command)}`);
        return { pid: p.pid, wasRunning: true, exitCode: null, signal: null, output: '' };
      }
      return stopOne(started, p, graceMs(input.graceSeconds), (m) => ctx.log.info(m));
    },
  });
}

/** `kill_all`: ends every process start steps left running, in every execution. */
export function createKillAllAction(started: StartedProcesses) {
  return defineAction({
    id: 'kill_all',
    description:
      'Stops every process start steps left running (each process group: SIGTERM, SIGKILL after graceSeconds); ' +
      'outputs how many and their pids. Commands of running steps are not touched: cancel their executions.',
    mutates: true,
    supportsDryRun: true,
    input: KillAllInput,
    output: KillAllOutput,
    exampleOutput: { killed: 0, pids: [] },

    async run(ctx, input) {
      const all = started.list();
      const pids = all.map((p) => p.pid);
      if (ctx.dryRun) {
        ctx.log.info(`dry run: would stop ${all.length} process(es)${pids.length ? `: pid ${pids.join(', ')}` : ''}`);
        return { killed: all.length, pids };
      }
      if (all.length === 0) ctx.log.info('no process started by this agent is running');
      await Promise.all(all.map((p) => stopOne(started, p, graceMs(input.graceSeconds), (m) => ctx.log.info(m))));
      return { killed: all.length, pids };
    },
  });
}

async function stopOne(
  started: StartedProcesses,
  p: StartedProcess,
  graceMs: number,
  log: (message: string) => void,
): Promise<StopOutput> {
  const exit = await started.stop(p, graceMs);
  log(
    `stopped pid ${p.pid} ${JSON.stringify(p.command)}: ${exit.signal ? `ended by ${exit.signal}` : `exit code ${exit.exitCode}`}`,
  );
  return { pid: p.pid, wasRunning: true, ...exit, output: p.tail.toString() };
}

import { type Static, Type } from '@sinclair/typebox';
import { StringEnum } from '../shared/schemas.js';
import { MAX_TIMER_SECONDS } from '../shared/timers.js';
import { RunInput } from './run-input.js';

/** How long `start` waits for readiness when the step does not say. */
export const DEFAULT_READY_TIMEOUT_SECONDS = 30;

const { command, cwd, env, shell } = RunInput.properties;

export const ReadyInput = Type.Object(
  {
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description:
          "ready once a socket of the process's network namespace is bound to this port (listening, for TCP)",
      }),
    ),
    protocol: Type.Optional(
      StringEnum(['tcp', 'udp'], { type: 'string', default: 'tcp', description: 'the protocol of port (default tcp)' }),
    ),
    line: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'ready once a line of stdout or stderr matches this regular expression',
      }),
    ),
    timeoutSeconds: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: MAX_TIMER_SECONDS,
        description: `fail with timeout (and stop the process) when not ready after this many seconds (default ${DEFAULT_READY_TIMEOUT_SECONDS})`,
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'when the process counts as started: a port bound, a line printed, or both; without it, as soon as it was spawned',
  },
);

export type ReadyInput = Static<typeof ReadyInput>;

/** The `start` action's input: what to run, as for `run`, and when it counts as started. */
export const StartInput = Type.Object(
  {
    command,
    cwd,
    env,
    shell,
    ready: Type.Optional(ReadyInput),
  },
  { additionalProperties: false },
);
export type StartInput = Static<typeof StartInput>;

export const StartOutput = Type.Object(
  {
    pid: Type.Integer({ description: 'pid of the process, which leads its own process group' }),
    command: Type.Array(Type.String(), { description: 'argv as started' }),
    startedAt: Type.String({ description: 'when it was spawned (ISO 8601)' }),
    readyAfterMs: Type.Integer({ description: 'milliseconds from spawning to ready' }),
  },
  { additionalProperties: false },
);
export type StartOutput = Static<typeof StartOutput>;

import { type Static, Type } from '@sinclair/typebox';
import { Dictionary, StringEnum, TypeList } from '../shared/schemas.js';
import { MAX_TIMER_SECONDS } from '../shared/timers.js';

/** A process gets C strings: a NUL byte in argv, cwd or env cannot be passed, so it is refused as invalid input. */
const NO_NUL = '^[^\\u0000]*$';

/** The `run` action's input: the JSON Schema the engine validates it against, and its type. */
export const RunInput = Type.Object(
  {
    command: Type.Array(TypeList<string | number | boolean>(['string', 'number', 'boolean'], { pattern: NO_NUL }), {
      minItems: 1,
      description:
        'argv of the command: command[0] is the program (looked up in PATH), the rest its arguments, each passed as one argument as it is ' +
        '(numbers and booleans as text), never parsed by a shell. With shell: true, command[0] is a /bin/sh script and the rest reach it as "$1", "$2", …',
    }),
    cwd: Type.Optional(
      Type.String({
        pattern: NO_NUL,
        description:
          "working directory of the command (default: the agent's, or SHELL_WORK_ROOT when set; a relative cwd is then taken from it, and must stay inside it)",
      }),
    ),
    env: Type.Optional(
      Dictionary(Type.String({ pattern: NO_NUL }), {
        propertyNames: { pattern: NO_NUL },
        description: "the command's environment: only these variables plus the agent's PATH; nothing else is inherited",
      }),
    ),
    stdin: Type.Optional(
      Type.String({
        description: "text written to the command's stdin, which is then closed; without it stdin is empty",
      }),
    ),
    timeoutSeconds: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: MAX_TIMER_SECONDS,
        description:
          'stop the command (SIGTERM, then SIGKILL to its process group) and fail with timeout after this many seconds',
      }),
    ),
    successExitCodes: Type.Optional(
      Type.Array(Type.Integer(), { default: [0], description: 'exit codes that count as success (default [0])' }),
    ),
    parse: Type.Optional(
      StringEnum(['text', 'json', 'lines'], {
        type: 'string',
        default: 'text',
        description:
          "also return stdout parsed: 'json' adds output json, 'lines' adds output lines; 'text' adds nothing",
      }),
    ),
    shell: Type.Optional(
      Type.Boolean({
        description:
          'run command[0] as a script with /bin/sh -c (default false; only where the agent sets SHELL_ALLOW_SHELL). ' +
          'The script must not contain ${{ }}: pass values as further command entries and use "$1", "$2", …',
      }),
    ),
  },
  { additionalProperties: false },
);
export type RunInput = Static<typeof RunInput>;

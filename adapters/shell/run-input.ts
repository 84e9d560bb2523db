import { MAX_TIMER_SECONDS } from '../shared/timers.js';

/** The `run` action's input: its type and the JSON Schema the engine validates it against. */
export interface RunInput {
  /** Numbers and booleans (e.g. from a typed template) are passed as their text. */
  command: Array<string | number | boolean>;
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  timeoutSeconds?: number;
  successExitCodes?: number[];
  parse?: 'text' | 'json' | 'lines';
  /** command[0] is a /bin/sh script; allowed only by the agent's configuration. */
  shell?: boolean;
}

/** A process gets C strings: a NUL byte in argv, cwd or env cannot be passed, so it is refused as invalid input. */
const NO_NUL = '^[^\\u0000]*$';

export const RunInputSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    command: {
      type: 'array',
      minItems: 1,
      items: { type: ['string', 'number', 'boolean'], pattern: NO_NUL },
      description:
        'argv of the command: command[0] is the program (looked up in PATH), the rest its arguments, each passed as one argument as it is ' +
        '(numbers and booleans as text), never parsed by a shell. With shell: true, command[0] is a /bin/sh script and the rest reach it as "$1", "$2", …',
    },
    cwd: {
      type: 'string',
      pattern: NO_NUL,
      description:
        "working directory of the command (default: the agent's, or SHELL_WORK_ROOT when set; a relative cwd is then taken from it, and must stay inside it)",
    },
    env: {
      type: 'object',
      propertyNames: { pattern: NO_NUL },
      additionalProperties: { type: 'string', pattern: NO_NUL },
      description: "the command's environment: only these variables plus the agent's PATH; nothing else is inherited",
    },
    stdin: {
      type: 'string',
      description: "text written to the command's stdin, which is then closed; without it stdin is empty",
    },
    timeoutSeconds: {
      type: 'number',
      exclusiveMinimum: 0,
      maximum: MAX_TIMER_SECONDS,
      description:
        'stop the command (SIGTERM, then SIGKILL to its process group) and fail with timeout after this many seconds',
    },
    successExitCodes: {
      type: 'array',
      items: { type: 'integer' },
      default: [0],
      description: 'exit codes that count as success (default [0])',
    },
    parse: {
      type: 'string',
      enum: ['text', 'json', 'lines'],
      default: 'text',
      description: "also return stdout parsed: 'json' adds output json, 'lines' adds output lines; 'text' adds nothing",
    },
    shell: {
      type: 'boolean',
      description:
        'run command[0] as a script with /bin/sh -c (default false; only where the agent sets SHELL_ALLOW_SHELL). ' +
        'The script must not contain ${{ }}: pass values as further command entries and use "$1", "$2", …',
    },
  },
} as const;

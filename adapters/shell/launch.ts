/**
 * What a `run` input starts, under the agent's shell policy: the file, its arguments and the cwd.
 * Every refusal happens here, before anything is started, and none is retried (the same input and
 * configuration give the same answer).
 */
import { AgentError } from '../errors.js';
import { checkProgram, loaderVariables, notAllowedMessage } from './executables.js';
import type { RunInput } from './run-input.js';
import type { ShellSettings } from './settings.js';
import { locateCwd } from './work-root.js';

/** The shell of `shell: true` steps. */
export const SHELL_PATH = '/bin/sh';
/** `$0` of a shell script, so that the further command entries are "$1", "$2", … */
export const SCRIPT_NAME = 'sh';

export interface Launch {
  file: string;
  args: string[];
  /** Undefined: the agent's own cwd. */
  cwd: string | undefined;
}

/** What a launch reads of a run or start input. */
export type LaunchInput = Pick<RunInput, 'command' | 'cwd' | 'env' | 'shell'>;

export function planLaunch(settings: ShellSettings, input: LaunchInput): Launch {
  const command = input.command.map(String);
  const nul = command.findIndex((arg) => arg.includes('\0'));
  if (nul !== -1) {
    throw new AgentError(
      'validation_error',
      `command[${nul}] contains a NUL byte, which no process argument can hold`,
      { retryable: false },
    );
  }
  const loader = settings.allowedExecutables === undefined ? [] : loaderVariables(input.env);
  if (loader.length)
    throw new AgentError('forbidden', loaderMessage(loader), { retryable: false, details: { env: loader } });
  if (input.shell === true && !settings.allowShell) {
    throw new AgentError(
      'forbidden',
      'shell: true is not allowed by this agent (SHELL_ALLOW_SHELL is false); pass the program and its arguments as a list in command',
      {
        retryable: false,
      },
    );
  }
  const cwd = confinedCwd(settings, input.cwd);
  // The script is command[0] alone; the other entries reach it as "$1", "$2", … and are never parsed as shell text.
  const [program, ...args] =
    input.shell === true
      ? [SHELL_PATH, '-c', command[0]!, SCRIPT_NAME, ...command.slice(1)]
      : (command as [string, ...string[]]);
  return { file: allowedFile(settings, program, cwd), args, cwd };
}

export function loaderMessage(keys: string[]): string {
  return `env ${keys.join(', ')} is refused while SHELL_ALLOWED_EXECUTABLES is set: the dynamic loader would run other code inside the allowed program`;
}

function confinedCwd(settings: ShellSettings, cwd: string | undefined): string | undefined {
  if (settings.workRoot === undefined) return cwd;
  const root = settings.workRoot;
  const where = locateCwd(root, cwd);
  const details = { cwd: cwd ?? null, workRoot: root };
  switch (where.status) {
    case 'no_root':
      throw new AgentError(
        'adapter_error',
        `SHELL_WORK_ROOT '${root}' cannot be used (${where.code}); the operator must create it or fix the setting`,
        {
          retryable: false,
          details,
        },
      );
    case 'outside':
      throw new AgentError(
        'forbidden',
        `cwd '${cwd}' is outside SHELL_WORK_ROOT '${root}' (through '..', an absolute path or a symbolic link); use a directory inside it`,
        {
          retryable: false,
          details,
        },
      );
    case 'inside':
      if (!where.isDirectory) {
        throw new AgentError(
          'command_failed',
          `cwd '${cwd ?? root}' does not exist or is not a directory (inside SHELL_WORK_ROOT '${root}'); create it first`,
          {
            retryable: false,
            details,
          },
        );
      }
      return where.path;
  }
}

/** The file to start: under an allowlist, the checked absolute path, so that no PATH can swap it. */
function allowedFile(settings: ShellSettings, program: string, cwd: string | undefined): string {
  const allowed = settings.allowedExecutables;
  if (allowed === undefined) return program;
  const verdict = checkProgram(allowed, program, cwd ?? process.cwd());
  if (verdict.ok) return verdict.path;
  if (verdict.reason === 'not_found') {
    const message = program.includes('/')
      ? `cannot run '${program}': no such file`
      : `cannot run '${program}': not found in PATH; install it or pass its full path in command[0]`;
    throw new AgentError('command_failed', message, {
      retryable: false,
      details: { program, cwd: cwd ?? null, code: 'ENOENT' },
    });
  }
  throw new AgentError('forbidden', notAllowedMessage(program, verdict, allowed), {
    retryable: false,
    details: { program, path: verdict.path, realPath: verdict.realPath },
  });
}

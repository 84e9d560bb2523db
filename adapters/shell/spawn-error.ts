import { statSync } from 'node:fs';
import { AgentError } from '../errors.js';

/** A command that could not be started; retrying cannot help, so it says what to fix. */
export function spawnError(
  program: string,
  cwd: string | undefined,
  code: string | undefined,
  cause: unknown,
): AgentError {
  const options = { retryable: false, cause, details: { program, cwd: cwd ?? null, code: code ?? null } };
  if (cwd !== undefined && !isDirectory(cwd)) {
    return new AgentError(
      'command_failed',
      `cannot run '${program}': cwd '${cwd}' does not exist or is not a directory`,
      options,
    );
  }
  switch (code) {
    case 'ENOENT':
      return new AgentError(
        'command_failed',
        program.includes('/')
          ? `cannot run '${program}': no such file`
          : `cannot run '${program}': not found in PATH; install it or pass its full path in command[0]`,
        options,
      );
    case 'EACCES':
      return new AgentError(
        'command_failed',
        `cannot run '${program}': permission denied (is it an executable file?)`,
        options,
      );
    default:
      return new AgentError('command_failed', `cannot run '${program}': ${code ?? 'spawn failed'}`, options);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

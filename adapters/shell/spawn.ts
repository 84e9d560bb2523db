/** Starts a command as run and start do: argv under the shell policy, in a process group of its own. */
import { AgentError } from '../errors.js';
import { type LaunchInput, planLaunch } from './launch.js';
import type { ShellSettings } from './settings.js';
import { spawnError } from './spawn-error.js';

export async function spawnInGroup(
  settings: ShellSettings,
  input: LaunchInput & { stdin?: string },
  signal: AbortSignal,
) {
  // Imported by the first command, not at start: an agent that runs none does not hold execa (docs/operations.md#memory).
  const { execa } = await import('execa');
  if (signal.aborted)
    throw new AgentError('cancelled', `command was cancelled before '${String(input.command[0])}' started`);
  const { file: program, args, cwd } = planLaunch(settings, input);
  const subprocess = execa(program, args, {
    cwd,
    env: { PATH: process.env.PATH, ...input.env },
    extendEnv: false,
    stdin: input.stdin !== undefined ? 'pipe' : 'ignore',
    reject: false,
    buffer: false,
    detached: true, // leads its own process group, so cancel reaches grandchildren too
    cleanup: true, // a no-op for detached children; trackGroup() does that job
  });
  const pid = subprocess.pid;
  if (pid === undefined) {
    const failed = await subprocess;
    throw spawnError(program, cwd, failed.code, failed);
  }
  return { subprocess, pid, argv: [program, ...args] };
}

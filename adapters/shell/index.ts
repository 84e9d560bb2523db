import type { Adapter } from '../contract.js';
import { shellHealth } from './health.js';
import { createRunAction } from './run.js';
import { DEFAULT_SHELL, type ShellSettings } from './settings.js';
import { createStartAction } from './start.js';
import { StartedProcesses } from './started.js';
import { createKillAllAction, createStopAction } from './stop.js';

/**
 * Runs local programs as argv, each in its own process group, under the shell policy of `settings`:
 * a /bin/sh script only where allowShell says so, programs only from allowedExecutables when it is
 * set, and every cwd inside workRoot when it is set. `start` leaves a program running; `stop` and
 * `kill_all` end what it started.
 */
export function createShellAdapter(settings: ShellSettings = DEFAULT_SHELL): Adapter {
  const started = new StartedProcesses();
  return {
    name: 'shell',
    description:
      'Runs local commands as argv lists (a shell only where the agent allows it); cancel and timeouts stop the whole process group. ' +
      'start leaves a server running until stop, kill_all, the end of its execution other than completed, or the shutdown of the agent.',
    actions: {
      run: createRunAction(settings),
      start: createStartAction(settings, started),
      stop: createStopAction(started),
      kill_all: createKillAllAction(started),
    },
    // The work root and the allowlist are all a shell step needs; a missing work root fails every step.
    readiness: () => shellHealth(settings),
    health: async () => shellHealth(settings),
  };
}

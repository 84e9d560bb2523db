import type { Adapter } from '../contract.js';
import { shellHealth } from './health.js';
import { createRunAction } from './run.js';
import { DEFAULT_SHELL, type ShellSettings } from './settings.js';

/**
 * Runs local programs as argv, each in its own process group, under the shell policy of `settings`:
 * a /bin/sh script only where allowShell says so, programs only from allowedExecutables when it is
 * set, and every cwd inside workRoot when it is set.
 */
export function createShellAdapter(settings: ShellSettings = DEFAULT_SHELL): Adapter {
  return {
    name: 'shell',
    description:
      'Runs local commands as argv lists (a shell only where the agent allows it); cancel and timeouts stop the whole process group.',
    actions: { run: createRunAction(settings) },
    // The work root and the allowlist are all a shell step needs; a missing work root fails every step.
    readiness: () => shellHealth(settings),
    health: async () => shellHealth(settings),
  };
}

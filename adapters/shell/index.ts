import type { Adapter } from '../contract.js';
import { run } from './run.js';
import { DEFAULT_SHELL, type ShellSettings } from './settings.js';

/** Runs local programs as argv (never through a shell), each in its own process group. */
export function createShellAdapter(_settings: ShellSettings = DEFAULT_SHELL): Adapter {
  return {
    name: 'shell',
    description: 'Runs local commands as argv lists, without a shell; cancel and timeouts stop the whole process group.',
    actions: { run },
  };
}

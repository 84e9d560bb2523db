/**
 * Readiness of the shell adapter: its policy settings point at things that exist. They are checked
 * again at every step, so fixing the filesystem needs no restart. /health may be open to callers who
 * cannot run anything, so it says which setting is wrong, not which paths the policy names.
 */
import { existsSync } from 'node:fs';
import type { AdapterHealth } from '../contract.js';
import type { ShellSettings } from './settings.js';
import { locateCwd } from './work-root.js';

export function shellHealth(settings: ShellSettings): AdapterHealth {
  if (settings.workRoot !== undefined) {
    const root = locateCwd(settings.workRoot, undefined);
    if (root.status !== 'inside' || !root.isDirectory) {
      return {
        ready: false,
        message: 'SHELL_WORK_ROOT is not an existing directory; every shell step fails until it is',
      };
    }
  }
  const missing = (settings.allowedExecutables ?? []).filter((path) => !existsSync(path)).length;
  return missing
    ? { ready: true, message: `${missing} of the SHELL_ALLOWED_EXECUTABLES do not exist; steps cannot run them` }
    : { ready: true };
}

/** What the agent's configuration lets shell steps do (SHELL_* settings). */
export interface ShellSettings {
  /** `shell: true` steps (/bin/sh -c) are allowed (SHELL_ALLOW_SHELL). */
  allowShell: boolean;
  /**
   * Absolute paths of the only programs steps may start (SHELL_ALLOWED_EXECUTABLES); undefined = any.
   * With it, the loader's LD_* variables are refused in a step's env: they would load other code into an allowed program.
   */
  allowedExecutables?: string[];
  /** Absolute directory every `cwd` must stay inside, and the default cwd (SHELL_WORK_ROOT); undefined = unconfined. */
  workRoot?: string;
}

export const DEFAULT_SHELL: ShellSettings = { allowShell: false };

/** What the agent's configuration lets shell steps do. */
export interface ShellSettings {
  /** `shell: true` steps (/bin/sh -c) are allowed. */
  allowShell: boolean;
  /** Absolute paths of the only programs steps may start; undefined = any. */
  allowedExecutables?: string[];
  /** Absolute directory every `cwd` must stay inside; undefined = unconfined. */
  workRoot?: string;
}

export const DEFAULT_SHELL: ShellSettings = { allowShell: false };

/**
 * The executable allowlist (SHELL_ALLOWED_EXECUTABLES): which file a step would start, found the way
 * execvp finds it, and whether the configuration allows that file.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { basename, delimiter, resolve } from 'node:path';

/**
 * The absolute path a program stands for: with a slash, the path itself (relative to `cwd`); without
 * one, the first executable regular file of that name in `pathEnv` (the agent's PATH, not a PATH the
 * step sets: under the allowlist the agent starts the file it checked, by its absolute path). An empty
 * PATH entry would mean the cwd to execvp; it is skipped, so a step's own directory never shadows PATH.
 */
export function resolveProgram(
  program: string,
  cwd: string,
  pathEnv: string = process.env.PATH ?? '',
): string | undefined {
  if (program.includes('/')) return resolve(cwd, program);
  for (const dir of pathEnv.split(delimiter)) {
    if (dir === '') continue;
    const candidate = resolve(cwd, dir, program);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

export type ProgramVerdict =
  | { ok: true; path: string }
  | { ok: false; reason: 'not_found'; path?: string }
  | { ok: false; reason: 'not_allowed'; path: string; realPath: string };

/**
 * Whether `program` may start. An entry allows the file it names, reached by any path whose real path
 * (symlinks resolved) is the entry's real path and whose file name is the entry's file name: listing
 * /bin/sh allows `sh` found as /usr/bin/sh (both are dash), but not /usr/bin/dash or /bin/busybox
 * under another name, because multi-call programs pick their behaviour from the name they are run by.
 * Real paths are taken at each check, so an upgrade that moves a symlink's target needs no restart;
 * the entries themselves must therefore live where steps cannot write.
 */
export function checkProgram(allowed: readonly string[], program: string, cwd: string): ProgramVerdict {
  const path = resolveProgram(program, cwd);
  if (path === undefined) return { ok: false, reason: 'not_found' };
  const realPath = realpathOrUndefined(path);
  if (realPath === undefined) return { ok: false, reason: 'not_found', path };
  const name = basename(path);
  const match = allowed.some((entry) => basename(entry) === name && realpathOrUndefined(entry) === realPath);
  return match ? { ok: true, path } : { ok: false, reason: 'not_allowed', path, realPath };
}

/**
 * Variables through which the dynamic loader runs other code inside any program (LD_PRELOAD,
 * LD_LIBRARY_PATH, LD_AUDIT, …): a step could otherwise turn an allowed program into any program.
 * Interpreters have their own such variables (NODE_OPTIONS, PYTHONPATH, BASH_ENV): whoever allows an
 * interpreter allows whatever code it can be given.
 */
export function loaderVariables(env: Record<string, unknown> | undefined): string[] {
  return Object.keys(env ?? {}).filter((key) => key.startsWith('LD_'));
}

/** Says why a program is refused and what to change. */
export function notAllowedMessage(
  program: string,
  verdict: { path: string; realPath: string },
  allowed: readonly string[],
): string {
  const where = verdict.realPath === verdict.path ? verdict.path : `${verdict.path} -> ${verdict.realPath}`;
  return `'${program}' (${where}) is not in SHELL_ALLOWED_EXECUTABLES (${allowed.join(', ')}); use one of those programs, or ask the operator to add its absolute path`;
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync.native(path);
  } catch {
    return undefined;
  }
}

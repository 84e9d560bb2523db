/**
 * cwd confinement (SHELL_WORK_ROOT): where a step's cwd really is, and whether that is inside the root.
 * Real paths are compared, so neither `..` nor a symbolic link leads out.
 */
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

export type CwdLocation =
  /** `path` is the real path, the one to start the command in; `isDirectory` is false when nothing usable is there. */
  | { status: 'inside'; path: string; isDirectory: boolean }
  | { status: 'outside'; path: string }
  /** The root itself cannot be resolved (missing, or not searchable). */
  | { status: 'no_root'; code: string };

/**
 * Locates `cwd` (default: the root; a relative one is taken from the root). A path that does not exist
 * yet is placed by the real path of its deepest existing ancestor, so a missing directory below a
 * symbolic link that leads out is still outside.
 */
export function locateCwd(workRoot: string, cwd: string | undefined): CwdLocation {
  let root: string;
  try {
    root = realpathSync.native(workRoot);
  } catch (err) {
    return { status: 'no_root', code: (err as NodeJS.ErrnoException).code ?? 'unknown' };
  }
  const path = realOfDeepestExisting(resolve(workRoot, cwd ?? '.'));
  if (!isInside(root, path)) return { status: 'outside', path };
  return { status: 'inside', path, isDirectory: isDirectory(path) };
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** `path` (absolute, normalised) with its deepest existing ancestor replaced by that ancestor's real path. */
function realOfDeepestExisting(path: string): string {
  const missing: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    try {
      return join(realpathSync.native(at), ...missing.reverse());
    } catch {
      if (dirname(at) === at) return path;
      missing.push(basename(at));
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

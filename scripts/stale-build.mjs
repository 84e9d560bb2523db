// What build-if-needed.mjs and build-ui-if-needed.mjs share: the newest source time, and a build run only
// when a source is newer than its stamp. Paths are the repository's, whatever the working directory.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** The newest modification time of `path`, or of the files below it whose names `keep` accepts. */
export function newest(path, keep = () => true) {
  const s = statSync(path);
  if (!s.isDirectory()) return keep(path) ? s.mtimeMs : 0;
  let t = 0;
  for (const e of readdirSync(path)) t = Math.max(t, newest(join(path, e), keep));
  return t;
}

/**
 * Runs `node <args>` in the repository (its output to stderr: a command's stdout stays its own) when `force`
 * or the stamp is older than `sources`, then writes the stamp; exits with the build's status when it fails.
 */
export function buildIfStale({ stamp, sources, force = false, what, args }) {
  if (!force && existsSync(stamp) && statSync(stamp).mtimeMs >= sources) return;
  process.stderr.write(`runtime-agent: building ${what}...\n`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeFileSync(stamp, new Date().toISOString());
}

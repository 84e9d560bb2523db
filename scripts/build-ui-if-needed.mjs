// Builds the web console (services/runtime-agent/ui) into dist/ui with Vite when a source is newer than the
// last build: npm start, npm run build, and the browser specs (a clean clone has no dist/) call it.
// Paths are the repository's, whatever the working directory.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ui = join(root, 'services/runtime-agent/ui');

function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = 0;
  for (const e of readdirSync(path)) t = Math.max(t, newest(join(path, e)));
  return t;
}

const stamp = join(root, 'dist/ui/.build-stamp');
const force = process.argv.includes('--force');
if (
  force ||
  !existsSync(stamp) ||
  statSync(stamp).mtimeMs < Math.max(newest(ui), newest(join(root, 'package-lock.json')))
) {
  process.stderr.write('runtime-agent: building the web console (vite)...\n');
  // Vite's own output goes to stderr: a command's stdout stays its own.
  const r = spawnSync(
    process.execPath,
    ['node_modules/vite/bin/vite.js', 'build', '--config', 'services/runtime-agent/ui/vite.config.mjs'],
    { cwd: root, stdio: ['ignore', 2, 2] },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeFileSync(stamp, new Date().toISOString());
}

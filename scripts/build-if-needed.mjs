// Builds dist/ with tsc when a source is newer than the last build (npm start, npm run bench), and the web
// console into dist/ui (build-ui-if-needed.mjs).
// Paths are the repository's (this file's folder's parent), whatever the working directory: bin/runtime-agent.mjs
// imports this in its own process.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

const stamp = join(root, 'dist/.build-stamp');
const sources = Math.max(
  newest(join(root, 'services')),
  newest(join(root, 'adapters')),
  statSync(join(root, 'tsconfig.build.json')).mtimeMs,
);
if (!existsSync(stamp) || statSync(stamp).mtimeMs < sources) {
  process.stderr.write('runtime-agent: building (tsc)...\n');
  // tsc's own output goes to stderr: a command's stdout stays its own.
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: ['ignore', 2, 2],
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeFileSync(stamp, new Date().toISOString());
}

await import('./build-ui-if-needed.mjs');

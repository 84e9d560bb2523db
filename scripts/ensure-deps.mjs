// Installs the locked dependencies on a fresh clone (npm ci), so `npm start` and `npm test` work as the first command.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const marker = 'node_modules/.package-lock.json';
if (!existsSync(marker) || statSync('package-lock.json').mtimeMs > statSync(marker).mtimeMs) {
  process.stderr.write(
    'runtime-agent: installing dependencies (npm ci; better-sqlite3 may compile for a few minutes)...\n',
  );
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// npm start: install on a fresh clone, build when sources are newer than dist/, then run the agent.
import { spawnSync } from 'node:child_process';

for (const script of ['scripts/ensure-deps.mjs', 'scripts/build-if-needed.mjs']) {
  const r = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
await import('../dist/services/runtime-agent/src/main.js');

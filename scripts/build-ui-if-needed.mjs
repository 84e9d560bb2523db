// Builds the web console (services/runtime-agent/ui) into dist/ui with Vite when a source is newer than the
// last build: npm start, npm run build, and the browser specs (a clean clone has no dist/) call it.
// Paths are the repository's, whatever the working directory.
import { join } from 'node:path';
import { buildIfStale, newest, root } from './stale-build.mjs';

buildIfStale({
  stamp: join(root, 'dist/ui/.build-stamp'),
  sources: Math.max(newest(join(root, 'services/runtime-agent/ui')), newest(join(root, 'package-lock.json'))),
  force: process.argv.includes('--force'),
  what: 'the web console (vite)',
  args: ['node_modules/vite/bin/vite.js', 'build', '--config', 'services/runtime-agent/ui/vite.config.mjs'],
});

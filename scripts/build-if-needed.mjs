// Builds dist/ with tsc when a source is newer than the last build (npm start, npm run bench), and the web
// console into dist/ui (build-ui-if-needed.mjs).
// Paths are the repository's (this file's folder's parent), whatever the working directory: bin/runtime-agent.mjs
// imports this in its own process.
import { join } from 'node:path';
import { buildIfStale, newest, root } from './stale-build.mjs';

const typescript = (path) => path.endsWith('.ts');
buildIfStale({
  stamp: join(root, 'dist/.build-stamp'),
  sources: Math.max(
    newest(join(root, 'services'), typescript),
    newest(join(root, 'adapters'), typescript),
    newest(join(root, 'tsconfig.build.json')),
  ),
  what: '(tsc)',
  args: ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
});

await import('./build-ui-if-needed.mjs');

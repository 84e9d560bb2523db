#!/usr/bin/env node
// The runtime-agent command (services/runtime-agent/src/cli/main.ts, compiled to dist/). In a checkout it
// builds dist/ first when a source is newer (a message on stderr, so stdout stays the command's own); an
// installed image has dist/ only and runs it as it is.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (existsSync(`${root}services`) && existsSync(`${root}node_modules/typescript`)) {
  await import('../scripts/build-if-needed.mjs');
}
await import('../dist/services/runtime-agent/src/cli/main.js');

/** Writes workflows/wpk-v1.schema.json from the adapters' action schemas (npm run schema). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinAdapters } from '../adapters/index.js';
import { REPO_ROOT } from '../services/runtime-agent/src/paths.js';
import { buildPublishedSchema, SCHEMA_FILE } from '../services/runtime-agent/src/wpk/schema.js';

const text = `${JSON.stringify(buildPublishedSchema(builtinAdapters()), null, 2)}\n`;
writeFileSync(join(REPO_ROOT, SCHEMA_FILE), text);
process.stdout.write(`wrote ${SCHEMA_FILE} (${text.length} bytes)\n`);

/** Writes the settings table of docs/configuration.md from SETTINGS (npm run docs:config). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../services/runtime-agent/src/paths.js';
import { CONFIGURATION_PAGE, withSettingsTable } from '../services/runtime-agent/src/usage.js';

const file = join(REPO_ROOT, CONFIGURATION_PAGE);
const before = readFileSync(file, 'utf8');
const after = withSettingsTable(before);
if (after !== before) writeFileSync(file, after);
process.stdout.write(`${CONFIGURATION_PAGE}: ${after === before ? 'already up to date' : 'settings table written'}\n`);

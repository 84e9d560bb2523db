import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS } from '../../../services/runtime-agent/src/config.js';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { CONFIGURATION_PAGE, withSettingsTable } from '../../../services/runtime-agent/src/usage.js';

describe('docs/configuration.md', () => {
  const page = readFileSync(join(REPO_ROOT, CONFIGURATION_PAGE), 'utf8');

  it('holds the settings table generated from SETTINGS, as it is in the code', () => {
    assert.ok(
      page === withSettingsTable(page),
      `${CONFIGURATION_PAGE} and SETTINGS in services/runtime-agent/src/config.ts differ: run npm run docs:config and commit the page`,
    );
  });

  it('lists every setting once, with its default', () => {
    for (const s of SETTINGS) {
      const rows = page.split('\n').filter((l) => l.startsWith(`| \`${s.env}\` |`));
      assert.equal(rows.length, 1, `${s.env} has ${rows.length} rows`);
      if (s.default !== '') assert.ok(rows[0].includes(`\`${s.default}`), `${s.env}'s row shows ${s.default}`);
    }
  });
});

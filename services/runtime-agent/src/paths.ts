/** Where the repository's files are, whether running from sources (tsx) or from dist/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRoot } from '../../../adapters/shared/repo-root.js';

export const REPO_ROOT = findRoot();
export const WORKFLOWS_DIR = join(REPO_ROOT, 'workflows');
export const VERSION: string = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

/**
 * A real browser for the console's specs: Debian's chromium driven by playwright-core, one per spec file, each
 * with a fresh profile. Every page records what must never happen on the console: a dialog (alert, confirm),
 * an uncaught script error, or a Content-Security-Policy violation.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots of each screen, for a reviewer to look at (gitignored). */
export const SHOTS_DIR = join(REPO_ROOT, 'test-output/ui');

export interface Watched {
  page: Page;
  dialogs: string[];
  errors: string[];
  /** CSP violations the page reported (securitypolicyviolation events). */
  cspViolations(): Promise<string[]>;
}

/** Builds the console when dist/ui is missing or older than its sources (a clean clone), as npm start does. */
export function buildConsole(): void {
  const r = spawnSync(process.execPath, ['scripts/build-ui-if-needed.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the console failed:\n${r.stdout}${r.stderr}`);
}

export function useBrowser(): { open(url: string, viewport?: { width: number; height: number }): Promise<Watched> } {
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  before(async function () {
    this.timeout(120_000);
    if (!existsSync(CHROMIUM))
      throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium package (.ci/run does when missing)`);
    buildConsole();
    mkdirSync(SHOTS_DIR, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'runtime-agent-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 800 },
    });
  });
  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });
  const pages: Page[] = [];
  afterEach(async () => {
    for (const p of pages.splice(0)) await p.close();
  });
  return {
    async open(url, viewport) {
      const page = await context!.newPage();
      pages.push(page);
      if (viewport) await page.setViewportSize(viewport);
      page.setDefaultTimeout(15_000);
      const dialogs: string[] = [];
      const errors: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      page.on('pageerror', (e) => errors.push(e.message));
      // Injected by the browser's debugging protocol, outside the page's CSP.
      await page.addInitScript(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
      );
      await page.goto(url);
      return {
        page,
        dialogs,
        errors,
        cspViolations: () => page.evaluate<string[]>('window.__csp'),
      };
    },
  };
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS_DIR, `${name}.png`), fullPage: true });
}

/** Signs in through the form with `token`, and waits until the console shows who that is. */
export async function signIn(page: Page, token: string, name: string): Promise<void> {
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').filter({ hasText: name }).waitFor();
}

/** The page's own global `name` (tests run without DOM types: the expressions are the page's). */
export function pageValue<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate<T>(expression);
}

/** Goes to a screen of the console in the same tab (a hash change: the session and the page stay). */
export async function visit(page: Page, hash: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
}

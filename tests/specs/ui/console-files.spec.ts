/**
 * How the agent serves the console: a strict Content-Security-Policy on every file, caching by hash, no inline
 * code, a small bundle; and without tokens (loopback) no sign-in, the caller shown as anonymous.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CONSOLE_DIR } from '../../../services/runtime-agent/src/http/routes/console.js';
import { useAgent } from '../support/agent-process.js';
import { call } from '../http/http-support.js';
import { shot, useBrowser } from './browser.js';

const MAX_GZIP_BYTES = 150 * 1024;

describe('web console: how the agent serves it (no tokens, loopback)', function () {
  this.timeout(60_000);
  const agent = useAgent();
  const browser = useBrowser();

  it('answers every file with a strict CSP: nothing inline, nothing from elsewhere, no framing', async () => {
    const page = await call(agent, 'GET', '/ui/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const assets = [...page.text.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), page.text);
    assert.doesNotMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(page.text, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or handler');
    for (const r of [page, ...(await Promise.all(assets.map((a) => call(agent, 'GET', a))))]) {
      const csp = r.headers.get('content-security-policy') ?? '';
      const directives = new Map(
        csp
          .split(';')
          .map((d) => d.trim().split(/\s+/) as [string, ...string[]])
          .map(([k, ...v]) => [k, v.join(' ')]),
      );
      assert.equal(directives.get('default-src'), "'none'", csp);
      assert.equal(directives.get('script-src'), "'self'", csp);
      assert.equal(directives.get('style-src'), "'self'", csp);
      assert.equal(directives.get('connect-src'), "'self'", csp);
      assert.equal(directives.get('frame-ancestors'), "'none'", csp);
      assert.equal(directives.get('base-uri'), "'none'", csp);
      assert.equal(directives.get('form-action'), "'none'", csp);
      assert.doesNotMatch(csp, /unsafe|\*|http:|https:/, csp);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    }
    const asset = await agent.request('GET', assets[0]);
    assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal((await call(agent, 'GET', '/ui/assets/..%2F..%2Fpackage.json')).status, 404);
    assert.equal((await call(agent, 'GET', '/ui/assets/nope.js')).status, 404);
    const bare = await fetch(`${agent.url}/ui`, { redirect: 'manual' });
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.get('location'), '/ui/');
  });

  it(`is under ${MAX_GZIP_BYTES / 1024} KB gzipped, all files together`, () => {
    const files = ['index.html', ...readdirSync(join(CONSOLE_DIR, 'assets')).map((f) => `assets/${f}`)];
    const gz = files.reduce((n, f) => n + gzipSync(readFileSync(join(CONSOLE_DIR, f))).length, 0);
    assert.ok(gz < MAX_GZIP_BYTES, `${gz} bytes gzipped`);
  });

  it('opens without a sign-in on an agent without tokens, and shows the overview of the last 24 hours', async () => {
    const r = await call(agent, 'POST', '/execute', { workflow_id: 'host-report-1.0.0', dry_run: true });
    assert.equal(r.status, 202, r.text);
    const me = await call(agent, 'GET', '/whoami');
    assert.equal(me.body.authentication, false);
    const w = await browser.open(`${agent.url}/ui/#/overview`);
    await w.page.getByTestId('who').filter({ hasText: 'anonymous' }).waitFor();
    assert.equal(await w.page.getByLabel('Bearer token').count(), 0, 'no sign-in form');
    await w.page.getByRole('img', { name: 'Runs by status' }).waitFor();
    await w.page.locator('.chart text', { hasText: 'host-report-1.0.0' }).waitFor();
    const overview = await call(agent, 'GET', '/executions/overview?since=1h');
    assert.equal(overview.status, 200);
    assert.ok(overview.body.total >= 1);
    await shot(w.page, 'overview');
    assert.deepEqual(await w.cspViolations(), []);
    assert.deepEqual(w.errors, []);
  });
});

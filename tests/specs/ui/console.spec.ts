/**
 * The web console at /ui/, in a real browser (chromium through playwright-core) against a real agent with
 * tokens: sign-in, the runs list and its filters, a run's live log, rollback and retry from its buttons, a
 * bundled workflow run from its form (dry run first), what a viewer is shown, and hostile text shown as text.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { useAgentWithTokens, waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { uniqueName } from '../http/http-support.js';
import { pageValue, shot, signIn, useBrowser, visit, type Watched } from './browser.js';

const DONE = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];
const PROBE = '<img src=x onerror=window.__xss=1;alert(1)>';

describe('web console in a browser (tokens on)', function () {
  this.timeout(60_000);
  const { agent, token } = useAgentWithTokens({ admin: ['admin'], viewer: ['viewer'] });
  const browser = useBrowser();
  let scratch: string;
  before(() => {
    scratch = mkdtempSync('/tmp/runtime-agent-console-');
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  const admin = () => ({ Authorization: `Bearer ${token('admin')}` });
  async function submit(wpk: unknown, until?: string[]): Promise<string> {
    const r = await agent.request('POST', '/execute', { wpk_content: wpk }, admin());
    assert.equal(r.status, 202, r.text);
    if (until) await waitForStatus(agent, r.body.execution_id, until, 15_000, admin());
    return r.body.execution_id;
  }
  async function signedIn(who: 'admin' | 'viewer', hash = ''): Promise<Watched> {
    const w = await browser.open(`${agent.url}/ui/`);
    await signIn(w.page, token(who), who);
    if (hash) await visit(w.page, hash);
    return w;
  }
  const chip = (page: Page, status: string) => page.locator('.title-row .chip', { hasText: new RegExp(`^${status}$`) });

  it('signs in with a pasted token kept out of every URL, refuses a wrong one, and shows the role', async () => {
    const w = await browser.open(`${agent.url}/ui/`);
    const urls: string[] = [];
    w.page.on('request', (r) => urls.push(r.url()));
    await w.page.getByLabel('Bearer token').waitFor();
    await shot(w.page, 'sign-in');
    await w.page.getByLabel('Bearer token').fill('not-a-token');
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await w.page.getByRole('alert').filter({ hasText: 'refused this token' }).waitFor();
    await signIn(w.page, token('admin'), 'admin');
    assert.match((await w.page.getByTestId('who').textContent()) ?? '', /admin\s+admin/);
    await w.page.locator('h1', { hasText: 'Runs' }).waitFor();
    assert.equal(await pageValue(w.page, "sessionStorage.getItem('runtime-agent.token')"), token('admin'));
    assert.ok(urls.length > 0);
    for (const u of urls) assert.ok(!u.includes(token('admin')), `the token is in a URL: ${u}`);
    await w.page.getByRole('button', { name: 'Sign out' }).click();
    await w.page.getByLabel('Bearer token').waitFor();
    assert.equal(await pageValue(w.page, "sessionStorage.getItem('runtime-agent.token')"), null);
  });

  it('filters to the runs that failed in the last hour with one click', async () => {
    const failed = await submit(pkg(uniqueName('broken'), [shellStep('boom', ['false'])]), DONE);
    const fine = await submit(pkg(uniqueName('fine'), [shellStep('hello', ['echo', 'hi'])]), DONE);
    const w = await signedIn('admin');
    const rows = w.page.locator('table.runs tbody tr');
    await w.page.locator(`tr[data-id="${fine}"]`).waitFor();
    await w.page.getByRole('button', { name: 'Failed in the last hour' }).click();
    await w.page.locator(`tr[data-id="${fine}"]`).waitFor({ state: 'detached' });
    await w.page.locator(`tr[data-id="${failed}"]`).waitFor();
    const statuses = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status')));
    assert.ok(statuses.length >= 1);
    for (const s of statuses) assert.ok(['failed', 'rolled_back', 'rollback_failed'].includes(s!), `shown: ${s}`);
    assert.equal(await w.page.getByRole('checkbox', { name: 'failed', exact: true }).isChecked(), true);
    await shot(w.page, 'runs-failed');
    // A run that fails now appears without a reload: the list follows the journal.
    const late = await submit(pkg(uniqueName('late'), [shellStep('boom', ['false'])]));
    await w.page.locator(`tr[data-id="${late}"]`).waitFor();

    // The filters are in the URL: the same link opened elsewhere shows the same runs.
    const shared = new URL(w.page.url()).hash;
    const params = new URLSearchParams(shared.slice(shared.indexOf('?') + 1));
    assert.deepEqual(params.get('status')?.split(','), ['failed', 'rolled_back', 'rollback_failed']);
    assert.equal(params.get('since'), '1h');
    const other = await signedIn('admin', shared);
    await other.page.locator(`tr[data-id="${fine}"]`).waitFor({ state: 'detached' });
    await other.page.locator(`tr[data-id="${failed}"]`).waitFor();
    assert.equal(await other.page.getByRole('checkbox', { name: 'rolled_back', exact: true }).isChecked(), true);
    assert.equal(await other.page.getByLabel('Since').inputValue(), '1h');
    // A status the agent does not have is ignored, not sent.
    await visit(other.page, '#/runs?status=completed,bogus');
    await other.page.locator(`tr[data-id="${failed}"]`).waitFor({ state: 'detached' });
    await other.page.locator(`tr[data-id="${fine}"]`).waitFor();
  });

  it("streams a running step's log lines as they are written, and the status when it ends", async () => {
    const gate = join(scratch, 'log-gate');
    const id = await submit(
      pkg(uniqueName('talk'), [
        shellStep('talk', [
          'sh',
          '-c',
          `echo first-line; while [ ! -e ${gate} ]; do sleep 0.05; done; echo second-line`,
        ]),
      ]),
    );
    const w = await signedIn('admin', `#/runs/${id}`);
    const log = w.page.getByRole('log');
    await log.getByText('first-line', { exact: true }).waitFor();
    await chip(w.page, 'running').waitFor();
    assert.equal(await log.getByText('second-line', { exact: true }).count(), 0);
    await pageValue(w.page, 'window.__same = 1');
    writeFileSync(gate, '');
    await log.getByText('second-line', { exact: true }).waitFor();
    await chip(w.page, 'completed').waitFor();
    assert.equal(await pageValue(w.page, 'window.__same'), 1, 'no reload');
    await w.page.getByLabel('Search').fill('second');
    await log.getByText('first-line', { exact: true }).waitFor({ state: 'detached' });
    await w.page.getByLabel('Search').fill('');
    await shot(w.page, 'run');
    await w.page.setViewportSize({ width: 420, height: 800 });
    await shot(w.page, 'run-narrow');
  });

  it('cancels a running run from its button, after a confirmation, and shows cancelled without a reload', async () => {
    const id = await submit(pkg(uniqueName('long'), [shellStep('wait', ['sleep', '60'])]));
    const w = await signedIn('admin', `#/runs/${id}`);
    await chip(w.page, 'running').waitFor();
    await pageValue(w.page, 'window.__same = 1');
    await w.page.getByRole('button', { name: 'Cancel', exact: true }).click();
    const dialog = w.page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel the run' }).click();
    await chip(w.page, 'cancelled').waitFor();
    assert.equal(await pageValue(w.page, 'window.__same'), 1, 'no reload');
    assert.equal(
      await w.page.getByRole('button', { name: 'Cancel', exact: true }).count(),
      0,
      'nothing left to cancel',
    );
    const record = (await agent.request('GET', `/execute/${id}`, undefined, admin())).body;
    assert.equal(record.status, 'cancelled');
    assert.equal(record.steps[0].status, 'cancelled');
  });

  it('rolls back a completed run from its button, after a confirmation, and shows rolled_back without a reload', async () => {
    const undoable = (n: string) =>
      shellStep(n, ['echo', `did-${n}`], { rollback: { action: 'run', with: { command: ['echo', `undo-${n}`] } } });
    const id = await submit(pkg(uniqueName('undo'), [undoable('alpha'), undoable('beta')]), DONE);
    const w = await signedIn('admin', `#/runs/${id}`);
    await chip(w.page, 'completed').waitFor();
    await pageValue(w.page, 'window.__same = 1');
    // Escape closes the confirmation and nothing happens.
    await w.page.getByRole('button', { name: 'Roll back' }).click();
    const dialog = w.page.getByRole('dialog');
    await dialog.getByText('Of the 2 steps that succeeded').waitFor();
    await w.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await agent.request('GET', `/execute/${id}`, undefined, admin())).body.status, 'completed');
    await w.page.getByRole('button', { name: 'Roll back' }).click();
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await chip(w.page, 'rolled_back').waitFor();
    await w.page.getByText('Trigger: manual, requested by admin.').waitFor();
    await w.page.locator('.rollback details.step', { hasText: 'alpha:rollback' }).waitFor();
    // The log, which had ended with the run, goes on with the rollback's lines.
    await w.page.getByRole('log').getByText('undo-alpha', { exact: true }).waitFor();
    await shot(w.page, 'run-rolled-back');
    assert.equal(await pageValue(w.page, 'window.__same'), 1, 'no reload');
  });

  it('retries a failed run from its failed step, keeping the steps before it', async () => {
    const gate = join(scratch, 'retry-gate');
    const id = await submit(
      pkg(uniqueName('flaky'), [
        shellStep('prepare', ['echo', 'prepared']),
        shellStep('check', ['test', '-e', gate]),
        shellStep('finish', ['echo', 'done']),
      ]),
      DONE,
    );
    writeFileSync(gate, '');
    const w = await signedIn('admin', `#/runs/${id}`);
    await chip(w.page, 'failed').waitFor();
    await w.page.getByRole('button', { name: 'Retry from step…' }).click();
    const dialog = w.page.getByRole('dialog');
    assert.equal(await dialog.getByLabel('Start at step').inputValue(), 'check', 'the failed step by default');
    await dialog.getByText('the step before it is not run again').waitFor();
    await dialog.getByRole('button', { name: 'Retry from check' }).click();
    await w.page.waitForURL((u) => u.hash.startsWith('#/runs/') && !u.hash.endsWith(id));
    const newId = decodeURIComponent(new URL(w.page.url()).hash.replace('#/runs/', ''));
    await chip(w.page, 'completed').waitFor();
    const rec = (await agent.request('GET', `/execute/${newId}`, undefined, admin())).body;
    assert.equal(rec.retry_of, id);
    assert.deepEqual(
      rec.steps.map((s: { outputs_source: string }) => s.outputs_source),
      ['reused', 'run', 'run'],
    );
    // The kept step ran in the other run: no bar of its own on this run's timeline, and it says so.
    const prepare = w.page.locator('figure.timeline g.tl-row', { hasText: 'prepare' });
    await prepare.getByText('kept from the run retried').waitFor();
    assert.equal(await prepare.locator('rect').count(), 0);
    assert.equal(await w.page.locator('figure.timeline g.tl-row', { hasText: 'check' }).locator('rect').count(), 1);
  });

  it('runs a bundled workflow from its form: the agent checks the fields, a dry run shows the plan, then the real run', async () => {
    const workdir = join(scratch, 'demo');
    const w = await signedIn('admin', '#/workflows');
    await w.page.locator('[data-workflow="rollback-demo-1.0.0"]').waitFor();
    await shot(w.page, 'workflows');
    await w.page.getByRole('link', { name: 'Run rollback-demo-1.0.0' }).click();
    const form = w.page.locator('form.run-form');
    const field = form.getByLabel(/^workdir/);
    assert.equal(await field.inputValue(), '/tmp/runtime-agent-rollback-demo', 'the default');
    assert.equal(await form.getByLabel(/^failAt/).evaluate((e) => e.tagName), 'SELECT', 'an enum is a select');
    await field.fill('/var/not-scratch');
    await form.getByRole('button', { name: 'Dry run' }).click();
    const problem = form.locator('[data-field="workdir"] .field-problem');
    await problem.waitFor();
    assert.match((await problem.textContent()) ?? '', /pattern|\^\/tmp\//);
    await field.fill(workdir);
    await form.getByLabel(/^failAt/).selectOption('never');
    await form.getByRole('button', { name: 'Dry run' }).click();
    const plan = w.page.locator('section.plan');
    await plan.locator('h2 .chip', { hasText: 'completed' }).waitFor();
    await plan.getByText('write-release').waitFor();
    assert.equal(
      await plan.locator('li', { hasText: 'write-release' }).locator('.chip').textContent(),
      'would run',
      'the plan says what would run, not that it succeeded',
    );
    // A changed value needs a dry run of its own: the plan goes, and with it "Run for real".
    await field.fill(`${workdir}-changed`);
    await plan.waitFor({ state: 'detached' });
    await field.fill(workdir);
    await form.getByRole('button', { name: 'Dry run' }).click();
    await plan.locator('h2 .chip', { hasText: 'completed' }).waitFor();
    await shot(w.page, 'workflow-form');
    assert.equal(existsSync(workdir), false, 'a dry run changes nothing');
    await plan.getByRole('button', { name: 'Run for real' }).click();
    await w.page.waitForURL((u) => u.hash.startsWith('#/runs/'));
    await chip(w.page, 'completed').waitFor();
    assert.ok(existsSync(join(workdir, 'release-1')), 'the real run did its work');
    assert.equal(await w.page.locator('.title-row .badge', { hasText: 'dry run' }).count(), 0);
  });

  it('shows a field that is not JSON and the problems the agent finds in the others in one round', async () => {
    const name = uniqueName('typed');
    const parameters = {
      hosts: { type: 'array', required: true },
      count: { type: 'integer', minimum: 1, required: true },
    };
    const registered = await agent.request(
      'POST',
      '/execute',
      {
        wpk_content: pkg(name, [shellStep('echo', ['echo', '${{ params.count }}'])], { parameters }),
        parameters: { hosts: ['a'], count: 1 },
        dry_run: true,
      },
      admin(),
    );
    assert.equal(registered.status, 202, registered.text);
    const w = await signedIn('admin', `#/workflows/${name}-1.0.0/run`);
    const form = w.page.locator('form.run-form');
    await form.getByLabel(/^hosts/).fill('[not json');
    await form.getByLabel(/^count/).fill('0');
    await form.getByRole('button', { name: 'Dry run' }).click();
    const problem = (field: string) => form.locator(`[data-field="${field}"] .field-problem`);
    await problem('count').waitFor();
    assert.equal(await problem('hosts').textContent(), 'is not valid JSON');
    assert.match((await problem('count').textContent()) ?? '', /1/);
    const runs = await agent.request('GET', `/executions?workflow_id=${name}-1.0.0`, undefined, admin());
    assert.equal(runs.body.executions.length, 1, 'nothing was submitted from the form');
  });

  it('shows a viewer no action buttons and no Run links', async () => {
    const failed = await submit(pkg(uniqueName('viewed'), [shellStep('boom', ['false'])]), DONE);
    const w = await signedIn('viewer', `#/runs/${failed}`);
    await chip(w.page, 'failed').waitFor();
    assert.match((await w.page.getByTestId('who').textContent()) ?? '', /viewer\s+viewer/);
    await w.page.getByRole('log').waitFor();
    for (const name of ['Cancel', 'Roll back', 'Retry from step…'])
      assert.equal(await w.page.getByRole('button', { name }).count(), 0, `${name} shown to a viewer`);
    await visit(w.page, '#/workflows');
    await w.page.locator('[data-workflow="rollback-demo-1.0.0"]').waitFor();
    assert.equal(await w.page.getByRole('link', { name: /^Run / }).count(), 0);
  });

  it('shows hostile text in a log line, an output and a description as text, and runs nothing', async () => {
    const wpk = pkg(uniqueName('probe'), [shellStep('say', ['printf', '%s\\n', PROBE])]) as {
      metadata: Record<string, unknown>;
    };
    wpk.metadata.description = PROBE;
    const id = await submit(wpk, DONE);
    const w = await signedIn('admin', `#/runs/${id}`);
    await w.page.getByRole('log').getByText(PROBE, { exact: true }).waitFor();
    await w.page.locator('details.step summary', { hasText: 'say' }).click();
    await w.page.locator('details.step pre', { hasText: `"stdout": "${PROBE}` }).waitFor();
    await visit(w.page, '#/workflows');
    await w.page.locator('.card p', { hasText: PROBE }).first().waitFor();
    assert.equal(await w.page.locator('img').count(), 0, 'no element was made from the text');
    assert.equal(await pageValue(w.page, 'window.__xss'), undefined);
    assert.deepEqual(w.dialogs, []);
    assert.deepEqual(w.errors, []);
    assert.deepEqual(await w.cspViolations(), []);
  });
});

describe('web console when its token is revoked', function () {
  this.timeout(60_000);
  const roles = { admin: ['admin'], oncall: ['operator'] };
  const { agent, token, rewrite } = useAgentWithTokens(roles, { TOKENS_RELOAD_SECONDS: '1' });
  const browser = useBrowser();

  it('signs out, on its open event stream, once the token is gone from the tokens file', async () => {
    const w = await browser.open(`${agent.url}/ui/`);
    await signIn(w.page, token('oncall'), 'oncall');
    await w.page.locator('.live', { hasText: /^live$/ }).waitFor();
    // The rotated Secret keeps the admin and drops the on-call token; the page asks for nothing meanwhile.
    rewrite({ admin: roles.admin });
    await w.page.getByRole('alert').filter({ hasText: 'no longer accepts this token' }).waitFor();
    await w.page.getByLabel('Bearer token').waitFor();
    assert.equal(await pageValue(w.page, "sessionStorage.getItem('runtime-agent.token')"), null);
    // The admin's token still works.
    await signIn(w.page, token('admin'), 'admin');
  });
});

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { builtinAdapters } from '../../../adapters/index.js';
import { AdapterRegistry } from '../../../services/runtime-agent/src/adapter-registry.js';
import { REPO_ROOT, WORKFLOWS_DIR } from '../../../services/runtime-agent/src/paths.js';
import { buildPublishedSchema, SCHEMA_FILE } from '../../../services/runtime-agent/src/wpk/schema.js';
import { PackageValidator } from '../../../services/runtime-agent/src/wpk/validate.js';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';

const files = readdirSync(WORKFLOWS_DIR).filter((f) => /\.ya?ml$/.test(f));
const validator = new PackageValidator(new AdapterRegistry(builtinAdapters()));

describe('bundled workflows', () => {
  it('there are at least three, and each validates with no errors', () => {
    assert.ok(files.length >= 3, `found ${files.join(', ')}`);
    for (const f of files) {
      const { report } = validator.validate(readFileSync(join(WORKFLOWS_DIR, f), 'utf8'));
      assert.deepEqual(report.errors, [], `${f}: ${JSON.stringify(report.errors)}`);
    }
  });

  it('the published JSON Schema is up to date with the adapters (npm run schema)', () => {
    const onDisk = JSON.parse(readFileSync(join(REPO_ROOT, SCHEMA_FILE), 'utf8'));
    assert.deepEqual(onDisk, buildPublishedSchema(builtinAdapters()));
  });

  it('the published JSON Schema accepts every bundled workflow and rejects a wrong action input', () => {
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(
      JSON.parse(readFileSync(join(REPO_ROOT, SCHEMA_FILE), 'utf8')),
    );
    for (const f of files)
      assert.ok(
        validate(parseYaml(readFileSync(join(WORKFLOWS_DIR, f), 'utf8'))),
        `${f}: ${JSON.stringify(validate.errors)}`,
      );
    const bad = parseYaml(readFileSync(join(WORKFLOWS_DIR, 'host-report.yaml'), 'utf8'));
    bad.spec.handlers[0].with.command = 'uname -sr';
    assert.equal(validate(bad), false);
    bad.spec.handlers[0].with = { command: ['uname'] };
    bad.spec.handlers[0].action = 'exec';
    assert.equal(validate(bad), false);
  });

  describe('dry runs through the agent', () => {
    let agent: AgentProcess;
    let target: Server;
    let hits = 0;
    before(async () => {
      target = createServer((_req, res) => {
        hits++;
        res.setHeader('content-type', 'application/json');
        res.end('{"status":"ok"}');
      });
      await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
      agent = await startAgent();
    });
    after(async () => {
      await agent.stop();
      agent.cleanup();
      target.close();
    });

    /** Starts a dry run of a bundled workflow; resolves with its record once it completed or failed. */
    async function dryRun(workflowId: string, parameters: Record<string, unknown>) {
      const r = await agent.request('POST', '/execute', { workflow_id: workflowId, dry_run: true, parameters });
      return waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
    }

    it('every bundled workflow dry-runs to completion', async () => {
      for (const id of ['http-health-check-1.0.0', 'host-report-1.0.0', 'rollback-demo-1.0.0']) {
        const r = await agent.request('POST', '/execute', {
          workflow_id: id,
          dry_run: true,
          parameters: id.startsWith('rollback') ? { workdir: '/tmp/ra-dry-unused' } : {},
        });
        assert.equal(r.status, 202, r.text);
        const rec = await waitForStatus(agent, r.body.execution_id, [
          'completed',
          'failed',
          'rolled_back',
          'rollback_failed',
        ]);
        assert.equal(rec.dry_run, true);
        // A dry run has no real outputs to compare, so example outputs flow on; rollback-demo's verify is skipped or ok.
        assert.ok(['completed'].includes(rec.status), `${id}: ${rec.status} ${JSON.stringify(rec.error)}`);
      }
    });

    it('a shell dry run changes nothing and logs the exact argv', async () => {
      const workdir = `/tmp/ra-dry-${process.pid}-${Date.now()}`;
      const rec = await dryRun('rollback-demo-1.0.0', { workdir });
      assert.equal(rec.status, 'completed');
      assert.equal(existsSync(workdir), false, 'mkdir must not have run');
      assert.ok(
        rec.steps.filter((s: any) => s.status === 'succeeded').every((s: any) => s.outputs_source !== 'run'),
        'no output comes from a real run',
      );
      const logs = await agent.request('GET', `/logs/${rec.execution_id}`);
      assert.ok(
        logs.body.logs.some((l: any) => l.message.includes(JSON.stringify(['mkdir', '-p', workdir]))),
        'the argv is logged',
      );
    });

    it('an api dry run sends nothing and logs the rendered request', async () => {
      const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
      const before = hits;
      const rec = await dryRun('http-health-check-1.0.0', { url });
      assert.equal(rec.status, 'completed');
      assert.equal(hits, before, 'the target must receive no request');
      const logs = await agent.request('GET', `/logs/${rec.execution_id}`);
      assert.ok(
        logs.body.logs.some((l: any) => l.message.includes(`GET ${url}`)),
        JSON.stringify(logs.body.logs.map((l: any) => l.message)),
      );
      // Both branches depend on the probe's answer, which a dry run does not have: the plan shows both,
      // and the unknown value is a visible placeholder rather than an empty string.
      const byName = Object.fromEntries(rec.steps.map((s: any) => [s.name, s]));
      assert.equal(byName['report-healthy'].status, 'succeeded');
      assert.equal(byName['report-unhealthy'].status, 'succeeded');
      assert.ok(logs.body.logs.some((l: any) => l.message.includes('<dry run: steps.probe.outputs.service_status>')));
    });

    it('the health check runs for real against a local server and takes the healthy branch', async () => {
      const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
      const r = await agent.request('POST', '/execute', {
        workflow_id: 'http-health-check-1.0.0',
        parameters: { url },
      });
      const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
      assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
      const byName = Object.fromEntries(rec.steps.map((s: any) => [s.name, s]));
      assert.equal(byName.probe.outputs.service_status, 'ok');
      assert.equal(byName.probe.outputs.http_status, 200);
      assert.equal(byName['report-healthy'].status, 'succeeded');
      assert.match(byName['report-healthy'].outputs.stdout, /^healthy: .* answered 200 with status=ok/);
      assert.equal(byName['report-unhealthy'].status, 'skipped');
    });

    it('the host report parses its summary as JSON', async () => {
      const r = await agent.request('POST', '/execute', { workflow_id: 'host-report-1.0.0' });
      const rec = await waitForStatus(agent, r.body.execution_id, ['completed', 'failed']);
      assert.equal(rec.status, 'completed', JSON.stringify(rec.steps.map((s: any) => s.error)));
      const summary = rec.steps[2].outputs.json;
      assert.equal(summary.mount, '/');
      assert.ok(summary.used_percent >= 0 && summary.used_percent <= 100);
    });
  });
});

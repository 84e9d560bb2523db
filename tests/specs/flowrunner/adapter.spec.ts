/**
 * The flowrunner adapter through the agent: bounded runs whose numbers gate
 * later steps, thresholds that fail the step and trigger rollback, background
 * runs compensated by stop, dry runs that send nothing, and the bundled
 * traffic-check package.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFlowrunnerAdapter } from '../../../adapters/flowrunner/index.js';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { realOutput } from '../support/outputs.js';
import { pkg } from '../support/packages.js';
import { waitFor } from '../support/wait.js';

const ENDED = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];
/** The actions whose output schemas the outputs below must match. */
const { actions } = createFlowrunnerAdapter();

interface Hit {
  method: string;
  url: string;
  at: number;
  headers: IncomingMessage['headers'];
}

/** A step of the flowrunner adapter; `more` adds step fields (rollback, when). */
function flowrunnerStep(
  name: string,
  action: string,
  input: Record<string, unknown>,
  more: Record<string, unknown> = {},
) {
  return { name, adapter: 'flowrunner', action, with: input, ...more };
}

describe('flowrunner adapter', function () {
  this.timeout(30_000);
  let agent: AgentProcess;
  let target: Server;
  let base: string;
  let hits: Hit[] = [];
  /** Path prefix -> status the target answers. */
  let statusFor: (url: string) => number = () => 200;

  before(async () => {
    target = createServer((req, res) => {
      hits.push({ method: req.method!, url: req.url!, at: Date.now(), headers: req.headers });
      req.resume();
      req.on('end', () => {
        res.statusCode = statusFor(req.url!);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status: 'ok', id: 7 }));
      });
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    agent = await startAgent();
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
    target.close();
  });
  beforeEach(() => {
    hits = [];
    statusFor = () => 200;
  });

  const flowmap = {
    name: 'two-steps',
    staticVars: { section: 'shop' },
    steps: [
      {
        id: 'list',
        type: 'request',
        url: '/{{section}}/items',
        extract: { firstId: 'body.id' },
        assertions: [{ variable: 'response_list_status', operator: 'equals', value: 200 }],
      },
      { id: 'item', type: 'request', url: '/{{section}}/items/{{firstId}}' },
    ],
  };
  const execute = async (body: Record<string, unknown>) => {
    const r = await agent.request('POST', '/execute', body);
    assert.equal(r.status, 202, r.text);
    return r.body.execution_id as string;
  };

  /** The input of a run or start of `flowmap` against the target; `config` adds to flow_target_url. */
  const against = (config: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
    config: { flow_target_url: base, ...config },
    flowmap,
    ...more,
  });

  it('run: a bounded run outputs its numbers, and a later step gates on them with when', async () => {
    const id = await execute({
      wpk_content: pkg('gate', [
        flowrunnerStep(
          'traffic',
          'run',
          against({ sim_users: 2, min_sleep_ms: 0, max_sleep_ms: 0 }, { iterations: 3 }),
        ),
        {
          name: 'too-slow',
          adapter: 'shell',
          action: 'run',
          when: { variable: 'steps.traffic.outputs.p95_ms', operator: 'greater_than', value: 10_000 },
          with: { command: ['echo', 'slow'] },
        },
        {
          name: 'all-good',
          adapter: 'shell',
          action: 'run',
          when: { variable: 'steps.traffic.outputs.errors', operator: 'equals', value: 0 },
          with: { command: ['echo', 'good'] },
        },
      ]),
    });
    const rec = await waitForStatus(agent, id, ENDED);
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    const out = realOutput(actions.run!, rec.steps[0].outputs);
    assert.deepEqual(
      [out.requests, out.flows, out.errors, out.assertions_passed, out.assertions_failed],
      [12, 6, 0, 6, 0],
    );
    assert.ok(out.p95_ms > 0 && out.rps > 0);
    assert.equal(hits.length, 12);
    assert.equal(hits.filter((h) => h.url === '/shop/items/7').length, 6, 'the extracted id went into the next URL');
    assert.deepEqual(
      rec.steps.map((s: any) => s.status),
      ['succeeded', 'skipped', 'succeeded'],
    );
  });

  it('run: config.ramp_up_seconds starts the users spread over it; a bad value is a validation error', async () => {
    const before = Date.now();
    const id = await execute({
      wpk_content: pkg('ramped', [
        flowrunnerStep(
          'traffic',
          'run',
          against({ sim_users: 3, ramp_up_seconds: 0.6, min_sleep_ms: 0, max_sleep_ms: 0 }, { iterations: 1 }),
        ),
      ]),
    });
    const rec = await waitForStatus(agent, id, ENDED);
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    assert.equal(realOutput(actions.run!, rec.steps[0].outputs).requests, 6);
    // Users start 200 ms apart (timers never fire early): the third user's request comes >= 400 ms after the submission.
    const firsts = hits.filter((h) => h.url === '/shop/items').map((h) => h.at);
    assert.equal(firsts.length, 3);
    assert.ok(Math.max(...firsts) - before >= 395, `every user started within ${Math.max(...firsts) - before} ms`);

    // The action's input schema has it: the package is refused before it runs.
    const bad = await agent.request('POST', '/execute', {
      wpk_content: pkg('bad-ramp', [
        flowrunnerStep('traffic', 'run', against({ ramp_up_seconds: -1 }, { iterations: 1 })),
      ]),
    });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error_type, 'validation_error');
    assert.deepEqual(
      bad.body.details.errors.map((e: { path: string }) => e.path),
      ['$.spec.handlers[0].with.config.ramp_up_seconds'],
    );
  });

  it('run: over its thresholds the step fails with the numbers, and rollback runs', async () => {
    statusFor = (url) => (url.endsWith('/7') ? 503 : 200);
    const id = await execute({
      wpk_content: pkg(
        'threshold',
        [
          flowrunnerStep(
            'traffic',
            'run',
            against(
              { sim_users: 1, min_sleep_ms: 0, max_sleep_ms: 0 },
              { iterations: 2, failWhen: { maxErrorRate: 0.1 } },
            ),
            { rollback: 'none' },
          ),
        ],
        {
          rollback: {
            enabled: true,
            handlers: [
              {
                name: 'report',
                adapter: 'shell',
                action: 'run',
                with: { command: ['echo', 'rolled back: ${{ error.message }}'] },
              },
            ],
          },
        },
      ),
    });
    const rec = await waitForStatus(agent, id, ENDED, 20_000);
    assert.equal(rec.status, 'rolled_back', JSON.stringify(rec.error));
    // Every failed request counts: each 503 and its retries.
    assert.match(rec.error.message, /traffic check failed: error rate 0\.75 > 0\.1/);
    assert.equal(rec.steps[0].error.details.outputs.errors, 6);
    assert.equal(rec.steps[0].attempts, 1, 'a breached threshold is not retried');
    // The 503s were retried by the engine's default resilience (3 attempts each): 2 flows x (1 + 3) requests.
    assert.equal(hits.length, 8);
  });

  it('start runs in the background until stop; rolling back a start stops it', async () => {
    const id = await execute({
      wpk_content: pkg('background', [
        flowrunnerStep('bg', 'start', against({ sim_users: 2, min_sleep_ms: 20, max_sleep_ms: 40 })),
      ]),
    });
    const rec = await waitForStatus(agent, id, ENDED);
    assert.equal(rec.status, 'completed');
    const runId = realOutput(actions.start!, rec.steps[0].outputs).run_id;
    assert.match(runId, /^[0-9a-f-]{36}$/);
    await waitFor(() => hits.length >= 10, 'background traffic');
    const rb = await agent.request('POST', `/rollback/${id}`);
    assert.equal(rb.status, 202, rb.text);
    const after = await waitForStatus(agent, id, ['rolled_back', 'rollback_failed']);
    assert.equal(after.status, 'rolled_back');
    assert.equal(after.rollback.steps[0].action, 'stop');
    assert.equal(realOutput(actions.stop!, after.rollback.steps[0].outputs).found, true);
    assert.ok(after.rollback.steps[0].outputs.requests >= 10);
    const count = hits.length;
    const stopped = Date.now();
    await new Promise((r) => setTimeout(r, 300)); // an interval in which a running flow would send several requests
    assert.equal(hits.filter((h) => h.at > stopped).length, 0, `no traffic after stop (${hits.length - count} more)`);
    // Stopping again finds nothing running, which is not an error.
    const again = await execute({
      wpk_content: pkg('stop-again', [flowrunnerStep('s', 'stop', { run_id: runId })]),
    });
    const rec2 = await waitForStatus(agent, again, ENDED);
    assert.deepEqual([rec2.status, realOutput(actions.stop!, rec2.steps[0].outputs).found], ['completed', false]);
  });

  it('a dry run validates, logs the rendered first iteration, and sends nothing', async () => {
    const id = await execute({
      dry_run: true,
      wpk_content: pkg('dry', [flowrunnerStep('traffic', 'run', against({ sim_users: 50 }, { durationSeconds: 60 }))]),
    });
    const rec = await waitForStatus(agent, id, ENDED);
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].outputs_source, 'example');
    const logs = (await agent.request('GET', `/logs/${id}`)).body.logs.map((l: any) => l.message);
    assert.ok(
      logs.some((m: string) => m.includes(`list: GET ${base}/shop/items`)),
      logs.join('\n'),
    );
    assert.ok(logs.some((m: string) => m.includes(`item: GET ${base}/shop/items/`)));
    assert.equal(hits.length, 0);
  });

  it('invalid config and flowmap fail the step with every problem; bundled paths stay inside workflows/', async () => {
    const id = await execute({
      wpk_content: pkg('invalid', [
        flowrunnerStep('bad', 'run', {
          config: { flow_target_url: 'ftp://x', min_sleep_ms: 500, max_sleep_ms: 100, debug: 'false' },
          flowmap: { steps: [{ id: 'a', url: '/' }] },
          iterations: 1,
        }),
      ]),
    });
    const rec = await waitForStatus(agent, id, ENDED);
    assert.equal(rec.error.type, 'validation_error');
    const paths = rec.steps[0].error.details.errors.map((e: any) => e.path).sort();
    assert.deepEqual(paths, [
      '$.with.config.debug',
      '$.with.config.flow_target_url',
      '$.with.config.max_sleep_ms',
      '$.with.flowmap.steps[0].type',
    ]);
    const escaping = await execute({
      wpk_content: pkg('escape', [
        flowrunnerStep('bad', 'run', { config: { flow_target_url: base }, flowmap: '../package.json', iterations: 1 }),
      ]),
    });
    const rec2 = await waitForStatus(agent, escaping, ENDED);
    assert.equal(rec2.error.type, 'validation_error');
    assert.match(
      rec2.error.message + JSON.stringify(rec2.steps[0].error.details),
      /under the bundled workflows folder/,
    );
    assert.equal(hits.length, 0);
  });

  it('cancel stops a long run at once', async () => {
    const id = await execute({
      wpk_content: pkg('long', [
        flowrunnerStep(
          'traffic',
          'run',
          against({ sim_users: 2, min_sleep_ms: 10, max_sleep_ms: 20 }, { durationSeconds: 600 }),
        ),
      ]),
    });
    await waitFor(() => hits.length >= 5, 'traffic');
    const r = await agent.request('POST', `/execute/${id}/cancel`);
    assert.equal(r.status, 202);
    const rec = await waitForStatus(agent, id, ENDED, 5000);
    assert.equal(rec.status, 'cancelled');
    const n = hits.length;
    await new Promise((r2) => setTimeout(r2, 200));
    assert.equal(hits.length, n, 'no request after the cancel took effect');
  });

  it('traffic-check (bundled) passes against the agent itself and fails over its limits against a broken target', async () => {
    const ok = await execute({
      workflow_id: 'traffic-check-1.0.0',
      parameters: { targetUrl: agent.url, durationSeconds: 2, users: 2 },
    });
    const rec = await waitForStatus(agent, ok, ENDED, 20_000);
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    assert.ok(rec.steps[0].outputs.requests > 0);
    assert.equal(rec.steps[0].outputs.assertions_failed, 0);
    statusFor = () => 500;
    const bad = await execute({
      workflow_id: 'traffic-check-1.0.0',
      parameters: { targetUrl: base, durationSeconds: 2, users: 1 },
    });
    const rec2 = await waitForStatus(agent, bad, ENDED, 20_000);
    assert.equal(rec2.status, 'rolled_back', JSON.stringify(rec2.error));
    const logs = (await agent.request('GET', `/logs/${bad}`)).body.logs.map((l: any) => l.message);
    assert.ok(
      logs.some((m: string) =>
        /traffic check against .* failed at traffic: traffic check failed: error rate 1 > 0\.01/.test(m),
      ),
      logs.join('\n'),
    );
  });
});

/**
 * The container-control file around the flowrunner adapter's steps, through the real agent running
 * packages: pre_start before a `run` or `start` step's flow and post_stop at its end (completed, cancelled,
 * rolled back), a failing pre_start failing the step with its output, a dry run that says what it would
 * run and runs nothing, and one flow at a time holding the container control, whether the control API's
 * or a step's.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentsPerTest, type AgentProcess, waitForStatus } from '../support/agent-process.js';
import { pkg } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { append, FAIL } from './lifecycle-argv.js';

const ENDED = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

describe('the container-control file around flowrunner steps', function () {
  this.timeout(60_000);
  const startAgent = agentsPerTest();
  let dir: string;
  let marks: string;
  let target: Server;
  let base: string;
  let hits = 0;
  /** What the marks file held when the target saw its first request. */
  let marksAtFirstHit: string[] | undefined;

  before(async () => {
    target = createServer((_req, res) => {
      if (hits++ === 0) marksAtFirstHit = marked();
      res.end('ok');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
  });
  after(() => target.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fr-step-control-'));
    marks = join(dir, 'marks');
    hits = 0;
    marksAtFirstHit = undefined;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const marked = () => (existsSync(marks) ? readFileSync(marks, 'utf8').trim().split('\n') : []);

  /** An agent whose control file runs `preStart` and `postStop`. */
  async function agentWith(preStart: string[][], postStop: string[][] = [append(marks, 'post')]) {
    const file = join(dir, 'control.yaml');
    writeFileSync(file, JSON.stringify({ privileged_commands: { pre_start: preStart, post_stop: postStop } }));
    return startAgent({ env: { FLOWRUNNER_CONTROL_CONFIG: file } });
  }

  const flowInput = (more: Record<string, unknown>) => ({
    config: { flow_target_url: base, sim_users: 1, min_sleep_ms: 20, max_sleep_ms: 40 },
    flowmap: { steps: [{ id: 'get', type: 'request', url: '/' }] },
    ...more,
  });
  const step = (name: string, action: string, input: Record<string, unknown>) => ({
    name,
    adapter: 'flowrunner',
    action,
    with: input,
  });

  async function execute(agent: AgentProcess, body: Record<string, unknown>): Promise<string> {
    const r = await agent.request('POST', '/execute', body);
    assert.equal(r.status, 202, r.text);
    return r.body.execution_id as string;
  }
  const logsOf = async (agent: AgentProcess, id: string): Promise<string[]> =>
    (await agent.request('GET', `/logs/${id}`)).body.logs.map((l: { message: string }) => l.message);

  it('a run step: pre_start before its flow sends a request, post_stop once it ended', async () => {
    const agent = await agentWith([append(marks, 'pre')]);
    const id = await execute(agent, {
      wpk_content: pkg('run', [step('traffic', 'run', flowInput({ iterations: 2 }))]),
    });
    const rec = await waitForStatus(agent, id, ENDED, 20_000);
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    assert.equal(rec.steps[0].outputs.requests, 2);
    assert.deepEqual(marksAtFirstHit, ['pre'], 'pre_start ran before the first request, post_stop after');
    assert.deepEqual(marked(), ['pre', 'post']);
  });

  it('a failing pre_start fails the step with its output; no request is sent and no post_stop runs', async () => {
    const agent = await agentWith([FAIL]);
    const id = await execute(agent, {
      wpk_content: pkg('run', [step('traffic', 'run', flowInput({ iterations: 2 }))]),
    });
    const rec = await waitForStatus(agent, id, ENDED, 20_000);
    assert.equal(rec.status, 'failed');
    assert.equal(rec.steps[0].error.type, 'command_failed');
    assert.match(rec.steps[0].error.message, /^pre_start command \[.*\] exited with code 3: /);
    assert.match(rec.steps[0].error.message, /checking limits.*somaxconn: permission denied/);
    assert.equal(rec.steps[0].attempts, 1, 'a failing pre_start is not retried');
    assert.equal(hits, 0);
    assert.deepEqual(marked(), []);
  });

  it('a start step: pre_start before its flow, post_stop when its rollback stops it', async () => {
    const agent = await agentWith([append(marks, 'pre')]);
    const id = await execute(agent, { wpk_content: pkg('bg', [step('bg', 'start', flowInput({}))]) });
    assert.equal((await waitForStatus(agent, id, ENDED, 20_000)).status, 'completed');
    await waitFor(() => hits >= 3, 'background traffic');
    assert.deepEqual(marksAtFirstHit, ['pre']);
    assert.deepEqual(marked(), ['pre']);
    assert.equal((await agent.request('POST', `/rollback/${id}`)).status, 202);
    assert.equal((await waitForStatus(agent, id, ['rolled_back', 'rollback_failed'])).status, 'rolled_back');
    assert.deepEqual(marked(), ['pre', 'post'], 'post_stop ran before the stop step ended');
  });

  it('cancelling a run step runs post_stop before the execution ends', async () => {
    const agent = await agentWith([append(marks, 'pre')]);
    const id = await execute(agent, {
      wpk_content: pkg('long', [step('traffic', 'run', flowInput({ durationSeconds: 600 }))]),
    });
    await waitFor(() => hits >= 3, 'traffic');
    assert.equal((await agent.request('POST', `/execute/${id}/cancel`)).status, 202);
    assert.equal((await waitForStatus(agent, id, ENDED)).status, 'cancelled');
    assert.deepEqual(marked(), ['pre', 'post']);
  });

  it('a dry run logs the commands it would run around the flow, and runs none', async () => {
    const agent = await agentWith([append(marks, 'pre')]);
    const id = await execute(agent, {
      dry_run: true,
      wpk_content: pkg('dry', [step('traffic', 'run', flowInput({ durationSeconds: 60 }))]),
    });
    assert.equal((await waitForStatus(agent, id, ENDED)).status, 'completed');
    const logs = await logsOf(agent, id);
    assert.ok(
      logs.some((m) => /^dry run: would run pre_start \[.*"pre"\]$/.test(m)),
      logs.join('\n'),
    );
    assert.ok(logs.some((m) => /^dry run: would run post_stop \[.*"post"\] when the flow ends$/.test(m)));
    assert.deepEqual(marked(), []);
    assert.equal(hits, 0);
  });

  it("one flow holds the container control: /api/start is refused while a step's run holds it, and a step while the API's flow does", async () => {
    const agent = await agentWith([append(marks, 'pre')]);
    const bg = await execute(agent, { wpk_content: pkg('bg', [step('bg', 'start', flowInput({}))]) });
    assert.equal((await waitForStatus(agent, bg, ENDED, 20_000)).status, 'completed');
    const refused = await agent.request('POST', '/api/start', flowInput({}));
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.body.detail, /serves one flow at a time, and the background run of step 'bg' in execution/);
    assert.equal(
      (await agent.request('GET', '/api/health')).body.app_status,
      'initializing',
      'a refused start is no failure',
    );
    assert.equal((await agent.request('POST', `/rollback/${bg}`)).status, 202);
    await waitForStatus(agent, bg, ['rolled_back', 'rollback_failed']);

    assert.equal((await agent.request('POST', '/api/start', flowInput({}))).status, 200);
    const id = await execute(agent, {
      wpk_content: pkg('run', [step('traffic', 'run', flowInput({ iterations: 1 }))]),
    });
    const rec = await waitForStatus(agent, id, ENDED, 20_000);
    assert.equal(rec.status, 'failed');
    assert.equal(rec.steps[0].error.type, 'conflict');
    assert.match(rec.steps[0].error.message, /the control API's flow \(stop it with POST \/api\/stop\) holds it/);
    assert.equal((await agent.request('POST', '/api/stop')).status, 200);
    assert.deepEqual(marked(), ['pre', 'post', 'pre', 'post'], 'the refused flows ran no command');
  });
});

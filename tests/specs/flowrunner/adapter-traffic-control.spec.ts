/**
 * Traffic control around the flowrunner adapter's steps for real, in network namespaces the test creates
 * (support/netns.ts): the agent in one runs packages whose steps carry `with.config.bandwidth_limit_mbps`;
 * the qdisc is on the agent's interface while the step's flow runs, the limit holds within 15%, and it is
 * gone once the step ends, fails, is cancelled or rolled back, and once the agent shuts down; without
 * CAP_NET_ADMIN the step fails naming it. Skipped where the machine allows no `ip netns` (no CAP_NET_ADMIN).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentInNs, NetnsLab, stopAgentInNs } from '../support/netns.js';
import { pkg } from '../support/packages.js';
import { waitFor } from '../support/wait.js';

const ENDED = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];
const lab = new NetnsLab('s');

const CONTROL_CONFIG = `
traffic_control:
  enabled: true
  interface: "${lab.dev}"
  bandwidth_mbps_key: "bandwidth_limit_mbps"
  default_bandwidth_mbps: 0
  latency_ms_key: "latency_ms"
  default_latency_ms: 0
`;

const flowInput = (config: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  config: { flow_target_url: lab.targetUrl, sim_users: 2, min_sleep_ms: 100, max_sleep_ms: 200, ...config },
  flowmap: { steps: [{ id: 'get', type: 'request', url: '/' }] },
  ...more,
});
const step = (action: string, input: Record<string, unknown>) => ({
  name: 'traffic',
  adapter: 'flowrunner',
  action,
  with: input,
});

async function execute(body: Record<string, unknown>): Promise<string> {
  const r = await lab.api('POST', '/execute', body);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.execution_id as string;
}

const statusOf = async (id: string) => (await lab.api('GET', `/execute/${id}`)).body;

async function waitForStatus(id: string, statuses: string[], timeoutMs = 30_000): Promise<any> {
  return waitFor(
    async () => {
      const rec = await statusOf(id);
      return statuses.includes(rec?.status) ? rec : undefined;
    },
    `execution ${id} to reach ${statuses.join('|')}`,
    timeoutMs,
    100,
  );
}

/** Waits for the agent's qdisc to be on the interface while the execution runs. */
async function shapedWhileRunning(id: string): Promise<void> {
  await waitFor(() => lab.agentQdisc(), 'the qdisc of the step to be applied', 15_000, 50);
  assert.equal((await statusOf(id)).status, 'running');
}

describe('traffic control around flowrunner steps, in network namespaces the test creates', function () {
  this.timeout(90_000);
  let dir: string;
  let agent: AgentInNs | undefined;

  before(async function () {
    if (!(await lab.setUp())) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'fr-step-tc-'));
    agent = await lab.startAgent(dir, CONTROL_CONFIG);
  });

  after(async () => {
    await stopAgentInNs(agent?.proc);
    lab.tearDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a run step's config.bandwidth_limit_mbps is applied with tbf while its flow runs, holds within 15%, and is gone when the step ends", async () => {
    assert.equal(lab.agentQdisc(), false);
    const id = await execute({
      wpk_content: pkg('limited', [step('run', flowInput({ bandwidth_limit_mbps: 20 }, { durationSeconds: 7 }))]),
    });
    await shapedWhileRunning(id);
    assert.match(lab.qdiscs(), /qdisc tbf f10: root .*rate 20Mbit/);
    const metrics = await lab.api('GET', '/api/metrics');
    assert.deepEqual(metrics.body.traffic_control.applied, { bandwidth_mbps: 20, latency_ms: 0, qdiscs: ['tbf'] });
    const measured = await lab.measureMbps();
    console.log(`      run step limited to 20 Mbit/s: measured ${measured.toFixed(2)} Mbit/s`);
    assert.ok(Math.abs(measured - 20) <= 20 * 0.15, `measured ${measured.toFixed(2)} Mbit/s`);
    const rec = await waitForStatus(id, ENDED);
    assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
    assert.ok(rec.steps[0].outputs.requests > 0, 'the flow reached its target through the limit');
    assert.equal(lab.agentQdisc(), false, lab.qdiscs());
  });

  it('cancelling the run step takes the limit away before the execution ends', async () => {
    const id = await execute({
      wpk_content: pkg('long', [step('run', flowInput({ bandwidth_limit_mbps: 10 }, { durationSeconds: 600 }))]),
    });
    await shapedWhileRunning(id);
    assert.equal((await lab.api('POST', `/execute/${id}/cancel`)).status, 202);
    assert.equal((await waitForStatus(id, ENDED)).status, 'cancelled');
    assert.equal(lab.agentQdisc(), false, lab.qdiscs());
  });

  it('a run step that fails (over its thresholds) has the limit while it runs, and takes it away', async () => {
    const id = await execute({
      wpk_content: pkg('failing', [
        step(
          'run',
          flowInput(
            { bandwidth_limit_mbps: 10 },
            {
              durationSeconds: 2,
              flowmap: {
                steps: [
                  {
                    id: 'get',
                    type: 'request',
                    url: '/',
                    assertions: [{ variable: 'response_get_status', operator: 'equals', value: 500 }],
                  },
                ],
              },
              failWhen: { maxAssertionsFailed: 0 },
            },
          ),
        ),
      ]),
    });
    await shapedWhileRunning(id);
    const rec = await waitForStatus(id, ENDED);
    assert.equal(rec.status, 'failed', JSON.stringify(rec));
    assert.match(rec.error.message, /traffic check failed: .*failed assertions/);
    assert.equal(lab.agentQdisc(), false, lab.qdiscs());
  });

  it('latency through netem: without netem in the kernel the step fails naming it, and nothing is left', async () => {
    const id = await execute({
      wpk_content: pkg('latency', [
        step('run', flowInput({ bandwidth_limit_mbps: 20, latency_ms: 25 }, { iterations: 1 })),
      ]),
    });
    const rec = await waitForStatus(id, ENDED);
    if (rec.status !== 'completed') {
      assert.equal(rec.status, 'failed');
      assert.match(
        rec.steps[0].error.message,
        /latency_ms 25 needs the netem qdisc, which this kernel does not have \(module sch_netem, CONFIG_NET_SCH_NETEM\)/,
      );
    }
    assert.equal(lab.agentQdisc(), false, lab.qdiscs());
  });

  it("a bad value is refused naming the field (by the action's schema, or at run time when templated), and applies nothing", async () => {
    const refused = await lab.api('POST', '/execute', {
      wpk_content: pkg('bad', [step('run', flowInput({ bandwidth_limit_mbps: 'fast' }, { iterations: 1 }))]),
    });
    assert.equal(refused.status, 400);
    assert.deepEqual(
      refused.body.details.errors.map((e: { path: string }) => e.path),
      ['$.spec.handlers[0].with.config.bandwidth_limit_mbps'],
    );
    const id = await execute({
      wpk_content: pkg(
        'templated',
        [step('run', flowInput({ bandwidth_limit_mbps: '${{ params.bw }}' }, { iterations: 1 }))],
        {
          parameters: { bw: { type: 'string', default: 'fast' } },
        },
      ),
    });
    const rec = await waitForStatus(id, ENDED);
    assert.equal(rec.error.type, 'validation_error', JSON.stringify(rec.error));
    assert.match(JSON.stringify(rec.steps[0].error), /with\.config\.bandwidth_limit_mbps/);
    assert.equal(lab.agentQdisc(), false);
  });

  it('a dry run says which limit it would apply, with the tc command, and applies none', async () => {
    const id = await execute({
      dry_run: true,
      wpk_content: pkg('dry', [step('run', flowInput({ bandwidth_limit_mbps: 20 }, { durationSeconds: 60 }))]),
    });
    assert.equal((await waitForStatus(id, ENDED)).status, 'completed');
    const logs: string[] = (await lab.api('GET', `/logs/${id}`)).body.logs.map((l: { message: string }) => l.message);
    assert.ok(
      logs.some((m) =>
        m.startsWith(
          `dry run: would apply traffic control on ${lab.dev}: 20 Mbit/s, no added latency (tc qdisc replace dev ${lab.dev} root handle f10: tbf rate 20000kbit`,
        ),
      ),
      logs.join('\n'),
    );
    assert.equal(lab.agentQdisc(), false);
  });

  it("a start step's limit stays while its background run runs, and rolling the start back takes it away", async () => {
    const id = await execute({ wpk_content: pkg('bg', [step('start', flowInput({ bandwidth_limit_mbps: 10 }))]) });
    assert.equal((await waitForStatus(id, ENDED)).status, 'completed');
    assert.match(lab.qdiscs(), /qdisc tbf f10: root .*rate 10Mbit/);
    assert.equal((await lab.api('POST', `/rollback/${id}`)).status, 202);
    assert.equal((await waitForStatus(id, ['rolled_back', 'rollback_failed'])).status, 'rolled_back');
    assert.equal(lab.agentQdisc(), false, lab.qdiscs());
  });

  it("agent shutdown (SIGTERM) with a start step's run holding a limit takes it away", async () => {
    const id = await execute({ wpk_content: pkg('bg', [step('start', flowInput({ bandwidth_limit_mbps: 10 }))]) });
    assert.equal((await waitForStatus(id, ENDED)).status, 'completed');
    assert.equal(lab.agentQdisc(), true);
    await stopAgentInNs(agent!.proc);
    assert.equal(agent!.proc.exitCode, 0, agent!.output());
    assert.equal(lab.agentQdisc(), false, lab.qdiscs());
  });

  it('without CAP_NET_ADMIN the step fails naming NET_ADMIN, and nothing is applied', async () => {
    agent = await lab.startAgent(dir, CONTROL_CONFIG, [
      'setpriv',
      '--bounding-set=-net_admin',
      '--inh-caps=-net_admin',
      '--',
    ]);
    const id = await execute({
      wpk_content: pkg('no-cap', [step('run', flowInput({ bandwidth_limit_mbps: 10 }, { iterations: 1 }))]),
    });
    const rec = await waitForStatus(id, ENDED);
    assert.equal(rec.status, 'failed');
    assert.match(
      rec.steps[0].error.message,
      /traffic control needs the NET_ADMIN capability \(CAP_NET_ADMIN\), which the agent's process lacks/,
    );
    assert.equal(rec.steps[0].attempts, 1);
    assert.equal(lab.agentQdisc(), false);
  });
});

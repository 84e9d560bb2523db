/**
 * Traffic control of the FlowRunner control API for real, in two network namespaces the test creates: the
 * agent (and so FlowRunner's traffic) in one, a target and an iperf3 server in the other, across a veth
 * pair. iperf3 from the agent's namespace measures what the interface lets through: the bandwidth limit
 * holds within 15%, /api/update replaces it, and after stop, a failed start and shutdown no qdisc of the
 * agent's is left. Skipped where the machine allows no `ip netns` (no CAP_NET_ADMIN).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentInNs, NetnsLab, stopAgentInNs } from '../support/netns.js';
import { waitFor } from '../support/wait.js';

/** Within this share of the limit the measured rate must be. */
const TOLERANCE = 0.15;
const lab = new NetnsLab('t');
const { dev: DEV } = lab;
const qdiscs = () => lab.qdiscs();
const agentQdisc = () => lab.agentQdisc();
const api = (method: string, path: string, body?: unknown) => lab.api(method, path, body);
const measureMbps = () => lab.measureMbps();

function within(measured: number, limit: number): void {
  assert.ok(
    Math.abs(measured - limit) <= limit * TOLERANCE,
    `measured ${measured.toFixed(2)} Mbit/s, limit ${limit} Mbit/s (±${TOLERANCE * 100}%)`,
  );
}

const CONTROL_CONFIG = (dev: string) => `
adapter:
  class: flowrunner_adapter.FlowRunnerAdapter
metrics:
  network_monitoring:
    enabled: true
    interface: "${dev}"
traffic_control:
  enabled: true
  interface: "${dev}"
  bandwidth_mbps_key: "bandwidth_limit_mbps"
  default_bandwidth_mbps: 30
  latency_ms_key: "latency_ms"
  default_latency_ms: 0
`;

const flowStart = (extra: Record<string, unknown>) => ({
  config: { flow_target_url: lab.targetUrl, sim_users: 2, min_sleep_ms: 100, max_sleep_ms: 200, ...extra },
  flowmap: { steps: [{ id: 'get', type: 'request', url: '/' }] },
});

const startAgentInNs = (dir: string, prefix: string[] = []) => lab.startAgent(dir, CONTROL_CONFIG(DEV), prefix);
const stopAgent = stopAgentInNs;

describe('traffic control in network namespaces the test creates', function () {
  this.timeout(90_000);
  let dir: string;
  let agent: AgentInNs | undefined;
  let unlimitedMbps = 0;

  before(async function () {
    if (!(await lab.setUp())) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'fr-tc-'));
    agent = await startAgentInNs(dir);
  });

  after(async () => {
    await stopAgent(agent?.proc);
    lab.tearDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without traffic control the link is far faster than the limits used here', async () => {
    assert.equal(agentQdisc(), false);
    unlimitedMbps = await measureMbps();
    assert.ok(unlimitedMbps > 200, `unlimited: ${unlimitedMbps.toFixed(0)} Mbit/s`);
  });

  it('/api/start applies the bandwidth limit of the payload with tbf before the flow starts, and it holds within 15%', async () => {
    const started = await api('POST', '/api/start', flowStart({ bandwidth_limit_mbps: 20 }));
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.match(qdiscs(), /qdisc tbf f10: root .*rate 20Mbit/);
    const metrics = await api('GET', '/api/metrics');
    assert.deepEqual(metrics.body.traffic_control, {
      enabled: true,
      interface: DEV,
      applied: { bandwidth_mbps: 20, latency_ms: 0, qdiscs: ['tbf'] },
    });
    const measured = await measureMbps();
    console.log(
      `      bandwidth limit 20 Mbit/s: measured ${measured.toFixed(2)} Mbit/s (unlimited ${unlimitedMbps.toFixed(0)})`,
    );
    within(measured, 20);
    const after = await api('GET', '/api/metrics');
    assert.ok(after.body.flow_runner.total_requests > 0, 'the flow reaches its target through the limit');
    assert.ok(after.body.network.bytes_sent > ((3 * 20e6) / 8) * 0.8, `the counters are those of ${DEV}`);
  });

  it('/api/update replaces the limit, and the new one holds', async () => {
    const updated = await api('POST', '/api/update', { config: { bandwidth_limit_mbps: 50 } });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.deepEqual(updated.body.traffic_control.applied, { bandwidth_mbps: 50, latency_ms: 0, qdiscs: ['tbf'] });
    assert.match(qdiscs(), /rate 50Mbit/);
    const measured = await measureMbps();
    console.log(`      bandwidth limit 50 Mbit/s after /api/update: measured ${measured.toFixed(2)} Mbit/s`);
    within(measured, 50);
  });

  it('/api/stop removes it: no qdisc of the agent is left and the link is fast again', async () => {
    assert.equal((await api('POST', '/api/stop')).status, 200);
    assert.equal(agentQdisc(), false, qdiscs());
    assert.equal((await api('GET', '/api/metrics')).body.traffic_control.applied, null);
    const measured = await measureMbps();
    assert.ok(measured > 200, `after stop: ${measured.toFixed(0)} Mbit/s`);
  });

  it('a start without the keys gets the defaults of the file', async () => {
    assert.equal((await api('POST', '/api/start', flowStart({}))).status, 200);
    assert.match(qdiscs(), /rate 30Mbit/);
    assert.equal((await api('POST', '/api/stop')).status, 200);
    assert.equal(agentQdisc(), false);
  });

  it('latency goes through netem: without netem in the kernel the start fails naming it, and nothing is left', async () => {
    const started = await api('POST', '/api/start', flowStart({ bandwidth_limit_mbps: 20, latency_ms: 25 }));
    if (started.status === 200) {
      // A kernel with netem: both are applied, and stop removes them.
      assert.match(qdiscs(), /qdisc netem f10: root .*delay 25/);
      assert.match(qdiscs(), /qdisc tbf f11: parent f10:1 .*rate 20Mbit/);
      assert.equal((await api('POST', '/api/stop')).status, 200);
    } else {
      assert.equal(started.status, 500);
      assert.match(
        started.body.detail,
        /latency_ms 25 needs the netem qdisc, which this kernel does not have \(module sch_netem, CONFIG_NET_SCH_NETEM\)/,
      );
      assert.equal((await api('GET', '/api/health')).body.app_status, 'error');
    }
    assert.equal(agentQdisc(), false, qdiscs());
  });

  it('a bad value is a 400 naming the field, and changes nothing', async () => {
    const r = await api('POST', '/api/start', flowStart({ bandwidth_limit_mbps: 'fast' }));
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.detail[0].loc, ['body', 'config', 'bandwidth_limit_mbps']);
    assert.equal(agentQdisc(), false);
  });

  it('a flow that ends by itself (max_duration_seconds) takes its limit away', async () => {
    const started = await api('POST', '/api/start', flowStart({ bandwidth_limit_mbps: 10, max_duration_seconds: 1 }));
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(agentQdisc(), true);
    await waitFor(() => !agentQdisc(), 'the limit to be removed after the flow ended', 10_000, 100);
    assert.equal((await api('GET', '/api/health')).body.app_status, 'stopped');
  });

  it('agent shutdown (SIGTERM) with a limited flow running removes the limit', async () => {
    assert.equal((await api('POST', '/api/start', flowStart({ bandwidth_limit_mbps: 10 }))).status, 200);
    assert.equal(agentQdisc(), true);
    await stopAgent(agent!.proc);
    assert.equal(agent!.proc.exitCode, 0, agent!.output());
    assert.equal(agentQdisc(), false, qdiscs());
  });

  it('without CAP_NET_ADMIN the start fails naming NET_ADMIN', async () => {
    agent = await startAgentInNs(dir, ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin', '--']);
    const r = await api('POST', '/api/start', flowStart({ bandwidth_limit_mbps: 10 }));
    assert.equal(r.status, 500);
    assert.match(
      r.body.detail,
      /traffic control needs the NET_ADMIN capability \(CAP_NET_ADMIN\), which the agent's process lacks/,
    );
    assert.equal(agentQdisc(), false);
  });
});

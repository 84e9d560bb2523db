/**
 * The egress policy in the flowrunner adapter and the FlowRunner control:
 * destinations known up front (the target, its DNS override, written-out
 * absolute step URLs) refuse the step or the start with `forbidden` before
 * any request; hosts rendered at run time are refused request by request,
 * without retries, with the policy named in the log. Real local servers count
 * the connections they accept; a fake resolver stands in for DNS.
 */
import assert from 'node:assert/strict';
import { FlowControl, parseStartRequest } from '../../../adapters/flowrunner/control.js';
import { createFlowrunnerAdapter } from '../../../adapters/flowrunner/index.js';
import type { EgressSettings } from '../../../adapters/shared/egress.js';
import { runChecked } from '../support/outputs.js';
import { waitFor } from '../support/wait.js';
import { expectForbidden, fakeDns, stepContext, useCountingServers } from './egress-support.js';

const QUICK = { min_sleep_ms: 0, max_sleep_ms: 0 };
const oneStep = (url = '/ping') => ({ name: 'egress', steps: [{ id: 'ping', type: 'request', method: 'GET', url }] });

function flowrunner(settings: Partial<EgressSettings>, dns: Record<string, string[]> = {}) {
  const resolver = fakeDns(dns);
  const adapter = createFlowrunnerAdapter({
    egress: { allowLoopback: true, allowPrivate: false, resolve: resolver.resolve, ...settings },
  });
  const context = stepContext();
  return {
    adapter,
    logs: context.logs,
    asked: resolver.asked,
    run: (input: Record<string, unknown>) =>
      runChecked(adapter.actions.run!, context.ctx, input) as Promise<Record<string, any>>,
    start: (input: Record<string, unknown>) =>
      runChecked(adapter.actions.start!, context.ctx, input) as Promise<Record<string, any>>,
  };
}

describe('egress policy: flowrunner', () => {
  const { target, other } = useCountingServers();

  it('run: refuses a loopback target with allowLoopback false before any request', async () => {
    const fr = flowrunner({ allowLoopback: false });
    const err = await expectForbidden(
      fr.run({ config: { flow_target_url: target.url, ...QUICK }, flowmap: oneStep(), iterations: 1 }),
    );
    assert.match(
      err.message,
      /^outbound HTTP to 127\.0\.0\.1 is refused by the egress policy: a loopback address .*set EGRESS_ALLOW_LOOPBACK=true/,
    );
    assert.equal(target.connections, 0);
  });

  it('run: refuses a target whose name resolves to the metadata address', async () => {
    const fr = flowrunner({ allowPrivate: true }, { 'innocent.test': ['169.254.169.254'] });
    const err = await expectForbidden(
      fr.run({ config: { flow_target_url: 'http://innocent.test', ...QUICK }, flowmap: oneStep(), iterations: 1 }),
    );
    assert.match(
      err.message,
      /innocent\.test \(address 169\.254\.169\.254\) is refused by the egress policy: a link-local address/,
    );
  });

  it('start: refuses a target off the allowlist and starts no background run', async () => {
    const fr = flowrunner({ allowedHosts: ['app.test'] }, { 'other.test': ['127.0.0.1'] });
    const err = await expectForbidden(
      fr.start({ config: { flow_target_url: `http://other.test:${other.port}`, ...QUICK }, flowmap: oneStep() }),
    );
    assert.match(err.message, /other\.test is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS \(app\.test\)/);
    assert.deepEqual(fr.asked, []);
    assert.equal((fr.adapter.runs as unknown as { runs: Map<string, unknown> }).runs.size, 0);
    assert.equal(other.connections, 0);
  });

  it('run: judges a DNS override address as the address of the target', async () => {
    const fr = flowrunner({ allowLoopback: false });
    const err = await expectForbidden(
      fr.run({
        config: {
          flow_target_url: `http://service.test:${target.port}`,
          flow_target_dns_override: '127.0.0.1',
          ...QUICK,
        },
        flowmap: oneStep(),
        iterations: 1,
      }),
    );
    assert.match(
      err.message,
      /service\.test \(address 127\.0\.0\.1\) is refused by the egress policy: a loopback address/,
    );
    assert.equal(target.connections, 0);
  });

  it('run: refuses a written-out absolute step URL to a refused host when step hosts are not overridden', async () => {
    const fr = flowrunner({ allowedHosts: ['app.test'] }, { 'app.test': ['127.0.0.1'] });
    const flowmap = {
      name: 'two',
      steps: [
        { id: 'a', type: 'request', url: '/a' },
        { id: 'b', type: 'request', url: `${other.url}/b` },
      ],
    };
    const err = await expectForbidden(
      fr.run({
        config: { flow_target_url: `http://app.test:${target.port}`, override_step_url_host: false, ...QUICK },
        flowmap,
        iterations: 1,
      }),
    );
    assert.match(
      err.message,
      /outbound HTTP to 127\.0\.0\.1 is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS/,
    );
    assert.equal(target.connections, 0, 'nothing was sent, not even the allowed first step');
    assert.equal(other.connections, 0);
  });

  it('run: reaches an allowlisted target name over one keep-alive connection', async () => {
    const fr = flowrunner({ allowedHosts: ['app.test'] }, { 'app.test': ['127.0.0.1'] });
    const out = await fr.run({
      config: { flow_target_url: `http://app.test:${target.port}`, ...QUICK },
      flowmap: oneStep(),
      iterations: 3,
    });
    assert.equal(out.requests, 3);
    assert.equal(out.errors, 0);
    assert.equal(target.connections, 1);
    assert.ok(target.requests.every((r) => r.host === `app.test:${target.port}`));
  });

  it('run: a host rendered at run time is refused request by request, without retries, and the log names the policy', async () => {
    const fr = flowrunner({ allowedHosts: ['app.test'] }, { 'app.test': ['127.0.0.1'] });
    const flowmap = {
      name: 'rendered',
      staticVars: { elsewhere: '127.0.0.1' },
      steps: [{ id: 'x', type: 'request', url: `http://{{elsewhere}}:${other.port}/x` }],
    };
    const out = await fr.run({
      config: { flow_target_url: `http://app.test:${target.port}`, override_step_url_host: false, ...QUICK },
      flowmap,
      iterations: 2,
    });
    assert.equal(out.requests, 2, 'one attempt per iteration: a refusal is not retried');
    assert.equal(out.errors, 2);
    assert.equal(other.connections, 0);
    const warning = fr.logs.find((l) => l.level === 'warn');
    assert.match(
      warning?.message ?? '',
      /^user 1 step x: outbound HTTP to 127\.0\.0\.1 is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS/,
    );
  });

  it('run: a rendered name resolving to a refused address fails at connect time, after DNS, in the lookup of its own connection', async () => {
    const fr = flowrunner(
      { allowLoopback: false, allowedHosts: ['app.test', 'inner.test'] },
      { 'app.test': ['203.0.113.10'], 'inner.test': ['127.0.0.1'] },
    );
    const flowmap = {
      name: 'rendered',
      staticVars: { inner: 'inner.test' },
      steps: [{ id: 'x', type: 'request', url: `http://{{inner}}:${other.port}/x` }],
    };
    const out = await fr.run({
      config: { flow_target_url: 'http://app.test', override_step_url_host: false, ...QUICK },
      flowmap,
      iterations: 1,
    });
    assert.equal(out.requests, 1);
    assert.equal(out.errors, 1);
    assert.ok(fr.asked.includes('inner.test'));
    assert.equal(other.connections, 0);
    assert.match(
      fr.logs.find((l) => l.level === 'warn')?.message ?? '',
      /inner\.test \(address 127\.0\.0\.1\) is refused by the egress policy: a loopback address/,
    );
  });

  it('dry run: warns that the run would be refused, without failing or connecting', async () => {
    const fr = flowrunner({ allowLoopback: false });
    const { ctx, logs } = stepContext();
    await fr.adapter.actions.run!.run(
      { ...ctx, dryRun: true },
      { config: { flow_target_url: target.url }, flowmap: oneStep(), iterations: 1 },
    );
    assert.match(
      logs.find((l) => l.level === 'warn')?.message ?? '',
      /^dry run: the run would fail: outbound HTTP to 127\.0\.0\.1 is refused by the egress policy/,
    );
    assert.equal(target.connections, 0);
  });
});

describe('egress policy: FlowRunner control', () => {
  let flows: FlowControl;
  const logs: string[] = [];

  beforeEach(() => {
    logs.length = 0;
    flows = new FlowControl({
      log: (level, message) => void logs.push(`${level}: ${message}`),
      egress: {
        allowLoopback: true,
        allowPrivate: false,
        allowedHosts: ['app.test'],
        resolve: fakeDns({ 'app.test': ['127.0.0.1'] }).resolve,
      },
    });
  });
  afterEach(async () => {
    await flows.shutdown();
  });
  // After the hooks above: the servers start after the control is made and close after it shut down.
  const { target, other } = useCountingServers();

  const startRequest = (url: string) => {
    const parsed = parseStartRequest({ config: { flow_target_url: url, sim_users: 1, ...QUICK }, flowmap: oneStep() });
    assert.ok(parsed.ok);
    return parsed;
  };

  it('refuses a start to a refused target and leaves the running flow running', async () => {
    const good = startRequest(`http://app.test:${target.port}`);
    await flows.start(good.config, good.flowmap);
    await waitFor(() => target.requests.length > 0, 'the allowed flow to send');
    const bad = startRequest(other.url);
    const err = await expectForbidden(flows.start(bad.config, bad.flowmap));
    assert.match(
      err.message,
      /outbound HTTP to 127\.0\.0\.1 is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS \(app\.test\)/,
    );
    assert.equal(flows.appStatus, 'running');
    assert.equal(flows.config?.flow_target_url, `http://app.test:${target.port}`);
    assert.equal(other.connections, 0);
    assert.ok(logs.some((l) => l.startsWith('warn: flow start refused: outbound HTTP to 127.0.0.1')));
  });
});

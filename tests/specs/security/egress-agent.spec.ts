/**
 * The egress policy through the real agent process, configured by the
 * environment (EGRESS_ALLOW_LOOPBACK=false): an api step to a local server
 * fails with `forbidden` in the execution record, a flowrunner step too, and
 * the control API refuses the start with 403 in its FastAPI shape; the server
 * never sees a connection.
 */
import assert from 'node:assert/strict';
import { useAgent, waitForStatus } from '../support/agent-process.js';
import { pkg } from '../support/packages.js';
import { countingServer, type CountingServer } from './egress-support.js';

const ENDED = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

describe('egress policy: through the agent', function () {
  this.timeout(30_000);
  const agent = useAgent({ env: { EGRESS_ALLOW_LOOPBACK: 'false' } });
  let target: CountingServer;

  beforeEach(async () => {
    target = await countingServer();
  });
  afterEach(async () => {
    await target.close();
  });

  async function execute(handlers: unknown[]): Promise<any> {
    const r = await agent.request('POST', '/execute', { wpk_content: pkg('egress', handlers) });
    assert.equal(r.status, 202, r.text);
    return waitForStatus(agent, r.body.execution_id, ENDED);
  }

  it('fails an api step to a loopback server with forbidden, not retried, and the server sees no connection', async () => {
    const rec = await execute([
      {
        name: 'call',
        adapter: 'api',
        action: 'request',
        retries: { count: 2, delayMs: 1 },
        with: { url: `${target.url}/hook` },
      },
    ]);
    assert.equal(rec.status, 'failed');
    assert.equal(rec.steps[0].error.type, 'forbidden');
    assert.equal(rec.steps[0].attempts, 1);
    assert.match(
      rec.steps[0].error.message,
      /was not sent: outbound HTTP to 127\.0\.0\.1 is refused by the egress policy: a loopback address .*set EGRESS_ALLOW_LOOPBACK=true/,
    );
    assert.equal(rec.steps[0].error.details.setting, 'EGRESS_ALLOW_LOOPBACK');
    assert.equal(target.connections, 0);
  });

  it('fails a flowrunner step to a loopback target with forbidden before any request', async () => {
    const flowmap = { name: 'probe', steps: [{ id: 'ping', type: 'request', url: '/ping' }] };
    const rec = await execute([
      {
        name: 'traffic',
        adapter: 'flowrunner',
        action: 'run',
        with: { config: { flow_target_url: target.url }, flowmap, iterations: 1 },
      },
    ]);
    assert.equal(rec.status, 'failed');
    assert.equal(rec.steps[0].error.type, 'forbidden');
    assert.equal(target.connections, 0);
  });

  it('answers a control API start to a loopback target with 403 and a detail sentence', async () => {
    const r = await agent.request('POST', '/api/start', {
      config: { flow_target_url: target.url, sim_users: 1 },
      flowmap: { name: 'probe', steps: [{ id: 'ping', type: 'request', url: '/ping' }] },
    });
    assert.equal(r.status, 403, r.text);
    assert.deepEqual(Object.keys(r.body), ['detail']);
    assert.match(r.body.detail, /^outbound HTTP to 127\.0\.0\.1 is refused by the egress policy: a loopback address/);
    assert.equal((await agent.request('GET', '/api/health')).body.app_status, 'initializing');
    assert.equal(target.connections, 0);
  });
});

/**
 * An idle agent holds only what it needs to answer: the libraries behind steps (got for api, execa for
 * shell, hdr-histogram-js for FlowRunner, the Kubernetes client) load when a step first needs
 * them (docs/operations.md#memory). ESM has no require.cache to look into, so the agent runs with a
 * preload (support/module-trace.mjs) whose loader hook writes down every module it loads; the test reads
 * that list after start, after answering requests that run no step, and after steps of each kind, which
 * also shows that the list sees a library once it loads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, uniqueName } from '../http/http-support.js';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';

const TRACE_PRELOAD = fileURLToPath(new URL('../support/module-trace.mjs', import.meta.url));

/** The package a module URL belongs to (`@scope/name` or `name`), or undefined outside node_modules. */
function packageOf(url: string): string | undefined {
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  return m?.[1];
}

describe('limits: an idle agent loads no step libraries', function () {
  this.timeout(60_000);
  let home: string;
  let traceFile: string;
  let agent: AgentProcess;

  const loadedPackages = () =>
    new Set(
      readFileSync(traceFile, 'utf8')
        .split('\n')
        .map(packageOf)
        .filter((p) => p !== undefined),
    );

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'runtime-agent-idle-'));
    traceFile = join(home, 'modules.txt');
    agent = await startAgent({
      env: {
        // No Kubernetes configuration at all, as on a machine without a cluster.
        HOME: home,
        K8S_SERVICE_ACCOUNT_DIR: join(home, 'no-service-account'),
        NODE_OPTIONS: `--import=${TRACE_PRELOAD}`,
        MODULE_TRACE_FILE: traceFile,
      },
    });
  });

  after(async () => {
    await agent?.stop();
    agent?.cleanup();
    rmSync(home, { recursive: true, force: true });
  });

  it('after start, /health, /validate, a dry run and /metrics: none of got, execa, undici, hdr-histogram-js, @kubernetes/client-node, socket.io', async () => {
    assert.equal((await call(agent, 'GET', '/health')).status, 200);
    const wpk = pkg(uniqueName('idle'), [
      shellStep('say', ['echo', 'hi']),
      { name: 'probe', adapter: 'api', action: 'request', with: { url: `${agent.url}/health` } },
    ]);
    assert.equal((await call(agent, 'POST', '/validate', { wpk_content: wpk })).body.valid, true);
    const dry = await call(agent, 'POST', '/execute', { wpk_content: wpk, dry_run: true });
    assert.equal((await waitForStatus(agent, dry.body.execution_id, ['completed', 'failed'])).status, 'completed');
    assert.equal((await call(agent, 'GET', '/metrics')).status, 200);

    const loaded = loadedPackages();
    assert.ok(
      loaded.has('koa') && loaded.has('better-sqlite3'),
      `the trace sees the agent's own libraries: ${[...loaded]}`,
    );
    for (const heavy of [
      'got',
      'execa',
      'undici',
      'hdr-histogram-js',
      '@kubernetes/client-node',
      'socket.io',
      'engine.io',
    ])
      assert.ok(!loaded.has(heavy), `${heavy} is loaded by an agent that ran no step needing it`);
    // The first Socket.IO request loads it, and is answered as if it had been there all along.
    const handshake = await fetch(`${agent.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(handshake.status, 200, await handshake.text());
    assert.ok(loadedPackages().has('socket.io'));
  });

  it('the first api, shell and flowrunner steps load their libraries, and the Kubernetes client stays unloaded', async () => {
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('first-use'), [
        shellStep('say', ['echo', 'hi']),
        { name: 'probe', adapter: 'api', action: 'request', with: { url: `${agent.url}/health` } },
        {
          name: 'flow',
          adapter: 'flowrunner',
          action: 'run',
          with: {
            config: { flow_target_url: agent.url, sim_users: 1, min_sleep_ms: 0, max_sleep_ms: 0 },
            flowmap: { id: 'one', steps: [{ id: 'health', type: 'request', method: 'GET', url: '/health' }] },
            iterations: 1,
          },
        },
      ]),
    });
    assert.equal((await waitForStatus(agent, r.body.execution_id, ['completed', 'failed'])).status, 'completed');
    const loaded = loadedPackages();
    for (const lib of ['got', 'execa', 'hdr-histogram-js']) assert.ok(loaded.has(lib), `${lib} was loaded`);
    assert.ok(!loaded.has('@kubernetes/client-node'));
  });
});

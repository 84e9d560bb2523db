/**
 * The bundled iperf workflows run for real (Debian's iperf3) through a real agent: a server left running,
 * TCP and UDP clients against it with their parsed summaries, kill-all ending the server. Where the machine
 * allows `ip netns`, a server and a client in two network namespaces the test creates and removes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { freePort, useAgent, waitForStatus } from '../support/agent-process.js';
import { pkg } from '../support/packages.js';
import { haveIperf3, isRunning } from '../support/processes.js';

describe('bundled iperf workflows, with real iperf3', function () {
  this.timeout(60_000);
  const agent = useAgent();
  let port: number;
  let serverPid: number | undefined;

  before(async () => {
    assert.ok(haveIperf3(), 'iperf3 is not installed: apt-get install iperf3 (.ci/run does this)');
    port = await freePort();
  });

  after(() => {
    if (serverPid !== undefined && isRunning(serverPid)) process.kill(-serverPid, 'SIGKILL');
  });

  async function run(workflowId: string, parameters: Record<string, unknown>) {
    const posted = await agent.request('POST', '/execute', { workflow_id: workflowId, parameters });
    assert.equal(posted.status, 202, posted.text);
    const done = await waitForStatus(agent, posted.body.execution_id, ['completed', 'failed'], 30_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error ?? done.steps));
    return done.steps[0].outputs;
  }

  it('iperf-server-start leaves a listening iperf3 server behind', async () => {
    const out = await run('iperf-server-start-1.0.0', { port });
    serverPid = out.pid;
    assert.ok(isRunning(out.pid));
    assert.deepEqual(out.command.slice(-3), ['--server', '--port', String(port)]);
  });

  it('iperf-client-run over TCP outputs the summary with bits per second and retransmits', async () => {
    const { json } = await run('iperf-client-run-1.0.0', { server_ip: '127.0.0.1', port, time: 1 });
    assert.equal(json.summary.protocol, 'tcp');
    assert.ok(json.summary.bits_per_second > 0, JSON.stringify(json.summary));
    assert.equal(typeof json.summary.retransmits, 'number');
    assert.equal(json.summary.jitter_ms, null);
    assert.equal(json.raw.start.test_start.protocol, 'TCP', 'the raw iperf3 JSON comes along');
  });

  it('iperf-client-run over UDP outputs jitter and lost percent', async () => {
    const { json } = await run('iperf-client-run-1.0.0', {
      server_ip: '127.0.0.1',
      port,
      udp: true,
      time: 1,
      bitrate: '10M',
    });
    assert.equal(json.summary.protocol, 'udp');
    assert.ok(json.summary.bits_per_second > 0, JSON.stringify(json.summary));
    assert.equal(typeof json.summary.jitter_ms, 'number');
    assert.equal(typeof json.summary.lost_percent, 'number');
    assert.equal(json.summary.retransmits, null);
    assert.equal(json.raw.start.test_start.protocol, 'UDP');
  });

  it('a client against a port nobody listens on fails with iperf3 saying why', async () => {
    const posted = await agent.request('POST', '/execute', {
      workflow_id: 'iperf-client-run-1.0.0',
      parameters: { server_ip: '127.0.0.1', port: await freePort(), time: 1 },
    });
    const done = await waitForStatus(agent, posted.body.execution_id, ['failed'], 30_000);
    assert.equal(done.error.type, 'command_failed');
    const logs = await agent.request('GET', `/logs/${posted.body.execution_id}?step=client`);
    assert.ok(
      logs.body.logs.some((l: { message: string }) => /iperf3: unable to connect/i.test(l.message)),
      JSON.stringify(logs.body.logs.map((l: { message: string }) => l.message)),
    );
  });

  it('kill-all stops the server and says so', async () => {
    const out = await run('kill-all-1.0.0', {});
    assert.equal(out.killed, 1);
    assert.deepEqual(out.pids, [serverPid]);
    assert.equal(isRunning(serverPid!), false);
  });
});

/** Runs `ip` with the arguments; throws with its stderr. */
function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

describe('iperf3 between two network namespaces the test creates', function () {
  this.timeout(60_000);
  const agent = useAgent();
  const suffix = `${process.pid % 100000}`;
  const [server, client] = [`ra-srv-${suffix}`, `ra-cli-${suffix}`];
  let made = false;

  before(function () {
    try {
      ip('netns', 'add', server);
      made = true;
      ip('netns', 'add', client);
      ip('link', 'add', `ras${suffix}`, 'type', 'veth', 'peer', 'name', `rac${suffix}`);
      ip('link', 'set', `ras${suffix}`, 'netns', server);
      ip('link', 'set', `rac${suffix}`, 'netns', client);
      ip('-n', server, 'addr', 'add', '10.213.0.1/30', 'dev', `ras${suffix}`);
      ip('-n', client, 'addr', 'add', '10.213.0.2/30', 'dev', `rac${suffix}`);
      for (const [ns, dev] of [
        [server, `ras${suffix}`],
        [client, `rac${suffix}`],
      ]) {
        ip('-n', ns!, 'link', 'set', dev!, 'up');
        ip('-n', ns!, 'link', 'set', 'lo', 'up');
      }
    } catch (err) {
      if (!made) this.skip(); // no CAP_NET_ADMIN here: nothing was created
      throw err;
    }
  });

  after(() => {
    for (const ns of [server, client]) {
      try {
        ip('netns', 'del', ns); // removes its end of the veth pair, and so the pair
      } catch {
        // never created
      }
    }
  });

  it('runs the server in one and the client in the other, and kill_all ends the server', async () => {
    const port = 5201;
    const wpk = pkg('iperf-netns', [
      {
        name: 'server',
        adapter: 'shell',
        action: 'start',
        with: { command: ['ip', 'netns', 'exec', server, 'iperf3', '--server', '--port', port], ready: { port } },
      },
      {
        name: 'client',
        adapter: 'shell',
        action: 'run',
        with: {
          command: ['ip', 'netns', 'exec', client, 'iperf3', '-c', '10.213.0.1', '-p', port, '-t', '1', '-J'],
          parse: 'json',
          timeoutSeconds: 30,
        },
      },
      { name: 'stop-all', adapter: 'shell', action: 'kill_all', with: {} },
    ]);
    const posted = await agent.request('POST', '/execute', { wpk_content: wpk });
    assert.equal(posted.status, 202, posted.text);
    const done = await waitForStatus(agent, posted.body.execution_id, ['completed', 'failed'], 45_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const [started, ran, killed] = done.steps;
    assert.ok(ran.outputs.json.end.sum_received.bits_per_second > 0);
    assert.equal(ran.outputs.json.start.connected[0].remote_host, '10.213.0.1');
    assert.deepEqual(killed.outputs.pids, [started.outputs.pid]);
    assert.equal(isRunning(started.outputs.pid), false);
  });
});

/**
 * The Flow Manager's failures, each with the seed's error_type, and the events of its watch on the managed
 * workloads (status_changed, container_crashed, container_health_warning, container_status_update), through
 * a real Socket.IO client.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { waitFor } from '../support/wait.js';
import { type Lab, startLab } from './lab.js';

const NS = 'load';

async function listen<T extends Server | TcpServer>(server: T): Promise<{ server: T; port: number }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

describe('Flow Manager: failures and the workers watch', function () {
  this.timeout(90_000);
  let lab: Lab;
  before(async () => {
    // A short request timeout, for socket_timeout_error; nothing here starts a flow on a worker.
    lab = await startLab({ FLOW_WORKER_REQUEST_TIMEOUT_MS: '2000' });
  });
  after(async () => {
    await lab?.close();
  });

  it('names each failure as the seed does: image_not_found, system_error, kubernetes_api_error, container_not_found', async () => {
    const admin = await lab.client('admin');
    assert.equal(
      (await admin.command('create_container', { name: 'broken', image: 'registry.example/does-not-exist:1' })).ok,
      true,
    );
    const pull = await admin.command('start_container', { container_id: 'broken' });
    assert.equal(pull.ok, false);
    assert.equal(pull.error.error_type, 'image_not_found');
    assert.match(pull.error.message, /ImagePullBackOff/);
    assert.equal(pull.error.details.operation, 'start_container');
    await admin.waitForEvent('error', (e) => e.error_type === 'image_not_found');

    assert.equal(
      (await admin.command('create_container', { name: 'crashy', image: 'runtime-agent:crashes' })).ok,
      true,
    );
    const crash = await admin.command('start_container', { container_id: 'crashy' });
    assert.equal(crash.error.error_type, 'system_error');
    assert.match(crash.error.message, /crashing \(CrashLoopBackOff/);

    lab.kube.failNext(
      { method: 'GET', resource: 'deployments' },
      { code: 500, message: 'etcdserver: request timed out' },
    );
    const api = await admin.command('list_containers', {});
    assert.equal(api.error.error_type, 'kubernetes_api_error');
    lab.kube.deny('list', 'deployments');
    try {
      const denied = await admin.command('list_containers', {});
      assert.equal(denied.error.error_type, 'kubernetes_api_error');
      assert.match(denied.error.message, /may not list deployments/);
    } finally {
      lab.kube.allowAll();
    }
    assert.equal(
      (await admin.command('restart_container', { container_id: 'nope' })).error.error_type,
      'container_not_found',
    );
  });

  it('names the ways a worker cannot be reached: socket_connection_error, socket_timeout_error, socket_error', async () => {
    const admin = await lab.client('admin');
    // Pods with nothing behind them: the API server's proxy cannot connect.
    assert.equal((await admin.command('create_container', { name: 'empty' })).ok, true);
    assert.equal((await admin.command('start_container', { container_id: 'empty' })).ok, true);
    const refused = await admin.command('send_message', { container_id: 'empty', message: { command: 'status' } });
    assert.equal(refused.error.error_type, 'socket_connection_error');
    assert.match(refused.error.message, /connection refused/);

    // Something that accepts the connection and never answers.
    const held: Socket[] = [];
    const silent = await listen(createTcpServer((s) => void held.push(s)));
    // And something that answers, but not as the control API does.
    const html = await listen(
      createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>')),
    );
    try {
      assert.equal((await admin.command('create_container', { name: 'odd' })).ok, true);
      assert.equal((await admin.command('start_container', { container_id: 'odd', replicas: 2 })).ok, true);
      const [a, b] = (await admin.command('get_container_status', { container_id: 'odd' })).pods.map(
        (p: any) => p.name,
      );
      lab.kube.forwardPod(NS, a, () => ({ host: '127.0.0.1', port: silent.port }));
      lab.kube.forwardPod(NS, b, () => ({ host: '127.0.0.1', port: html.port }));
      const t0 = Date.now();
      const slow = await admin.command('send_message', { container_id: 'odd', pod: a, message: { command: 'status' } });
      assert.equal(slow.error.error_type, 'socket_timeout_error');
      assert.ok(Date.now() - t0 >= 1900, 'after FLOW_WORKER_REQUEST_TIMEOUT_MS (2000)');
      const garbled = await admin.command('send_message', {
        container_id: 'odd',
        pod: b,
        message: { command: 'status' },
      });
      assert.equal(garbled.error.error_type, 'socket_error');
      assert.match(garbled.error.message, /not the control API's JSON/);
    } finally {
      for (const s of held) s.destroy();
      silent.server.close();
      html.server.close();
    }
  });

  it('reports status changes, crashes, health warnings and periodic status of running workers to every client', async () => {
    const viewer = await lab.client('viewer');
    const admin = await lab.client('admin');
    assert.equal((await admin.command('create_container', { name: 'watched' })).ok, true);
    await lab.startWorkers('watched', 2);
    assert.equal((await admin.command('start_container', { container_id: 'watched', replicas: 2 })).ok, true);
    const isWatched = (e: any) => e.container_id === 'watched';
    await viewer.waitForEvent('status_changed', (e) => isWatched(e) && e.kind === 'container' && e.to === 'running');
    // Periodic, with both pods once the watch has seen them.
    const update = await viewer.waitForEvent(
      'container_status_update',
      (e) => isWatched(e) && e.pods.length === 2,
      15_000,
    );
    assert.equal(update.replicas, 2);

    const pods = (await admin.command('get_container_status', { container_id: 'watched' })).pods.map(
      (p: any) => p.name,
    );
    lab.kube.setPodState(NS, pods[0], 'crash-loop');
    const crashed = await viewer.waitForEvent('container_crashed', (e) => isWatched(e) && e.pod === pods[0]);
    assert.equal(crashed.reason, 'CrashLoopBackOff');
    assert.equal(crashed.restarts, 1);
    await viewer.waitForEvent('status_changed', (e) => isWatched(e) && e.to === 'crashed');
    // Each new restart is reported again.
    lab.kube.setPodState(NS, pods[0], 'crash-loop');
    await waitFor(
      () => viewer.events('container_crashed').filter((e) => e.pod === pods[0]).length >= 2,
      'a second crash report',
    );

    lab.kube.setPodState(NS, pods[1], 'not-ready');
    const warning = await viewer.waitForEvent(
      'container_health_warning',
      (e) => isWatched(e) && e.pod === pods[1],
      10_000,
    );
    assert.ok(warning.not_ready_seconds >= 2);
    // One warning per stretch of unreadiness: two more periodic updates (each after a health check) bring no other.
    const seen = viewer.events('container_status_update').filter(isWatched).length;
    await waitFor(
      () => viewer.events('container_status_update').filter(isWatched).length >= seen + 2,
      'two more status updates',
    );
    assert.equal(viewer.events('container_health_warning').filter((e) => e.pod === pods[1]).length, 1);

    // Back to running once both pods are: a new status_changed to running, after the crash.
    const before = viewer.events('status_changed').length;
    lab.kube.setPodState(NS, pods[0], 'running');
    lab.kube.setPodState(NS, pods[1], 'running');
    await waitFor(
      () =>
        viewer
          .events('status_changed')
          .slice(before)
          .find((e) => isWatched(e) && e.to === 'running'),
      `the worker to be running again (${JSON.stringify(viewer.events('status_changed').map((e) => `${e.from}->${e.to}`))})`,
      15_000,
    );
    assert.equal((await admin.command('stop_container', { container_id: 'watched' })).ok, true);
    await viewer.waitForEvent('status_changed', (e) => isWatched(e) && e.to === 'stopped');
  });
});

/**
 * The Flow Manager's container commands through a real Socket.IO client against a real agent, on the fake
 * kube-apiserver, with worker agent processes behind the pods: each command, its named event, its effect on
 * the cluster, its role, and its failures with the seed's error types.
 */
import assert from 'node:assert/strict';
import { Target } from '../flowrunner/target.js';
import { waitFor } from '../support/wait.js';
import { type Lab, startLab } from './lab.js';

const NS = 'load';
const MANAGED = {
  'app.kubernetes.io/managed-by': 'runtime-agent',
  'app.kubernetes.io/component': 'flowrunner-worker',
  'runtime-agent.io/manager': 'manager-1',
};

describe('Flow Manager: container commands over Socket.IO', function () {
  this.timeout(90_000);
  let lab: Lab;
  let target: Target;
  before(async () => {
    [lab, target] = await Promise.all([startLab(), Target.start()]);
    target.on('/health', { json: { status: 'ok' } });
  });
  after(async () => {
    await Promise.all([lab?.close(), target?.close()]);
  });

  it('create_container with traffic_control: true gives the worker NET_ADMIN, and nothing else', async () => {
    const admin = await lab.client('admin');
    const created = await admin.command('create_container', {
      name: 'w-tc',
      traffic_control: true,
      environment: { FLOWRUNNER_CONTROL_CONFIG: '/etc/flowrunner/control.yaml' },
      volumes: { 'configmap/flowrunner-control': '/etc/flowrunner' },
    });
    assert.equal(created.ok, true, JSON.stringify(created));
    const d = lab.kube.get('apps/v1', 'Deployment', NS, 'w-tc') as any;
    const c = d.spec.template.spec.containers[0];
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN'] });
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(
      c.securityContext.runAsUser,
      0,
      'tc holds NET_ADMIN only as uid 0 (no escalation, no ambient capabilities)',
    );
    const bad = await admin.command('create_container', { name: 'w-tc2', traffic_control: 'yes' });
    assert.equal(bad.ok, false);
    assert.equal((await admin.command('delete_container', { container_id: 'w-tc' })).ok, true);
  });

  it('creates, starts, reads, messages, restarts, updates, stops and deletes a worker, each answered and announced', async () => {
    const admin = await lab.client('admin');
    const created = await admin.command('create_container', {
      name: 'w1',
      environment: { EGRESS_ALLOW_LOOPBACK: 'true', TEAM: 'sre' },
      volumes: { 'configmap/flows': '/etc/flows' },
      ports: { 9100: 9100 },
    });
    assert.equal(created.ok, true, JSON.stringify(created));
    assert.equal(created.container_id, 'w1');
    assert.equal(created.status, 'stopped');
    assert.equal((await admin.waitForEvent('container_created')).container_id, 'w1');
    // The cluster has what the command says: a Deployment at 0 replicas, a Service and the control Secret, all labelled.
    const d = lab.kube.get('apps/v1', 'Deployment', NS, 'w1') as any;
    assert.equal(d.spec.replicas, 0);
    assert.deepEqual(
      { ...d.metadata.labels, 'app.kubernetes.io/instance': undefined },
      { ...MANAGED, 'app.kubernetes.io/instance': undefined },
    );
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.image, 'runtime-agent:0.1.0');
    assert.deepEqual(
      c.env
        .filter((e: any) => ['EGRESS_ALLOW_LOOPBACK', 'TEAM', 'HOST'].includes(e.name))
        .map((e: any) => `${e.name}=${e.value}`),
      ['HOST=0.0.0.0', 'EGRESS_ALLOW_LOOPBACK=true', 'TEAM=sre'],
    );
    assert.ok(c.ports.some((p: any) => p.containerPort === 9100));
    assert.ok(d.spec.template.spec.volumes.some((v: any) => v.configMap?.name === 'flows'));
    assert.equal(d.spec.template.spec.automountServiceAccountToken, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] }, 'no capability without traffic_control');
    assert.equal(c.securityContext.runAsUser, undefined, 'the image user (non-root) without traffic_control');
    assert.ok(lab.kube.get('v1', 'Service', NS, 'w1'));
    const secret = lab.kube.get('v1', 'Secret', NS, 'w1-control') as any;
    assert.ok(secret.data.token, 'the control token is in the Secret');

    await lab.startWorkers('w1', 1);
    const started = await admin.command('start_container', { container_id: 'w1' });
    assert.equal(started.ok, true, JSON.stringify(started));
    assert.equal(started.status, 'running');
    assert.equal(started.ready_replicas, 1);
    await admin.waitForEvent('container_started');

    // send_message: message_sent at once, then the worker's answer as message_received.
    const status = await admin.command('send_message', { container_id: 'w1', message: { command: 'status' } });
    assert.equal(status.ok, true, JSON.stringify(status));
    assert.equal(status.message.answers.length, 1);
    assert.equal(status.message.answers[0].status, 200);
    assert.equal(status.message.answers[0].body.app_status, 'initializing');
    assert.equal(
      status.message.data.app_status,
      'initializing',
      'data: the one pod answer, as the seed clients read it',
    );
    assert.ok(admin.events('message_sent').length >= 1);
    const start = await admin.command('send_message', {
      container_id: 'w1',
      message: {
        command: 'start',
        data: {
          config: {
            flow_target_url: target.url,
            sim_users: 2,
            min_sleep_ms: 0,
            max_sleep_ms: 0,
            max_duration_seconds: 60,
          },
          flowmap: { name: 'probe', steps: [{ id: 'h', type: 'request', method: 'GET', url: '/health' }] },
        },
      },
    });
    assert.equal(start.message.answers[0].status, 200, JSON.stringify(start.message.answers[0]));
    await waitFor(() => target.hits('/health').length >= 5, 'the worker to send load');
    const stop = await admin.command('send_message', { container_id: 'w1', message: { command: 'stop' } });
    assert.equal(stop.message.answers[0].status, 200);
    // The worker got these through the pod proxy, with its own token (never the API server's Authorization).
    const proxied = lab.kube.requests.filter((r) => r.subresource === 'proxy' && r.name?.startsWith('w1-'));
    assert.ok(
      proxied.some((r) => r.method === 'POST' && r.path.endsWith('/proxy/api/start')),
      'start went through the pod proxy',
    );

    lab.kube.setPodMetrics(NS, [...lab.served.keys()].find((p) => p.startsWith('w1-'))!, {
      worker: { cpu: '250m', memory: '64Mi' },
    });
    const detail = await admin.command('get_container_status', { container_id: 'w1' });
    assert.equal(detail.ok, true);
    assert.equal(detail.health, 'healthy');
    assert.equal(detail.pods.length, 1);
    assert.equal(detail.resource_usage.cpu_millicores, 250);
    assert.equal(detail.resource_usage.memory_bytes, 64 * 1024 * 1024);
    assert.equal(detail.flow[0].metrics.app_status, 'stopped');
    // A viewer sees the worker, not its flow (numbers and configuration, target included).
    const seen = await (await lab.client('viewer')).command('get_container_status', { container_id: 'w1' });
    assert.equal(seen.ok, true);
    assert.deepEqual(seen.flow, []);
    assert.equal(seen.pods.length, 1);
    assert.ok((await admin.waitForEvent('container_status')).pods);

    // An unmanaged Deployment of the same namespace is neither listed nor touched.
    lab.kube.seed({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'someone-else', namespace: NS, labels: { app: 'x' } },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'x' } },
        template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'x', image: 'nginx' }] } },
      },
    });
    const list = await admin.command('list_containers', {});
    assert.deepEqual(
      list.containers.map((w: any) => w.id),
      ['w1'],
    );
    assert.deepEqual(
      (await admin.waitForEvent('container_list')).containers.map((w: any) => w.id),
      ['w1'],
    );
    const foreign = await admin.command('stop_container', { container_id: 'someone-else' });
    assert.equal(foreign.ok, false);
    assert.equal(foreign.error.error_type, 'container_not_found');
    assert.equal(foreign.error.details.operation, 'stop_container');

    const restarted = await admin.command('restart_container', { container_id: 'w1' });
    assert.equal(restarted.ok, true, JSON.stringify(restarted));
    const afterRestart = lab.kube.get('apps/v1', 'Deployment', NS, 'w1') as any;
    assert.ok(afterRestart.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']);
    await admin.waitForEvent('container_restarted');

    const updated = await admin.command('update_container', {
      container_id: 'w1',
      image: 'runtime-agent:0.2.0',
      environment: { TEAM: 'platform' },
    });
    assert.equal(updated.ok, true, JSON.stringify(updated));
    assert.equal(updated.image, 'runtime-agent:0.2.0');
    const env = (lab.kube.get('apps/v1', 'Deployment', NS, 'w1') as any).spec.template.spec.containers[0].env;
    assert.equal(env.find((e: any) => e.name === 'TEAM').value, 'platform');
    assert.equal(env.find((e: any) => e.name === 'EGRESS_ALLOW_LOOPBACK').value, 'true', 'other variables are kept');
    await admin.waitForEvent('container_updated');

    const stopped = await admin.command('stop_container', { container_id: 'w1' });
    assert.equal(stopped.ok, true, JSON.stringify(stopped));
    assert.equal((lab.kube.get('apps/v1', 'Deployment', NS, 'w1') as any).spec.replicas, 0);
    await admin.waitForEvent('container_stopped');

    const deleted = await admin.command('delete_container', { container_id: 'w1' });
    assert.equal(deleted.ok, true, JSON.stringify(deleted));
    await admin.waitForEvent('container_deleted');
    assert.equal(lab.kube.get('apps/v1', 'Deployment', NS, 'w1'), undefined);
    assert.equal(lab.kube.get('v1', 'Service', NS, 'w1'), undefined);
    assert.equal(lab.kube.get('v1', 'Secret', NS, 'w1-control'), undefined);
    const gone = await admin.command('get_container_status', { container_id: 'w1' });
    assert.equal(gone.error.error_type, 'container_not_found');
    await admin.waitForEvent(
      'error',
      (e) => e.error_type === 'container_not_found' && e.details.operation === 'get_container_status',
    );
  });

  it('lets viewers read, operators start and stop, and only admins create, update and delete', async () => {
    const [viewer, executor, operator, admin] = await Promise.all([
      lab.client('viewer'),
      lab.client('executor'),
      lab.client('operator'),
      lab.client('admin'),
    ]);
    for (const c of [viewer, operator])
      assert.equal((await c.command('create_container', { name: 'w2' })).error.error_type, 'forbidden');
    assert.equal((await admin.command('create_container', { name: 'w2' })).ok, true);
    assert.equal((await viewer.command('list_containers', {})).ok, true);
    const distributed = {
      target_url: 'http://127.0.0.1:9',
      sim_users: 2,
      workers: 2,
      duration_seconds: 1,
      worker: 'w2',
    };
    assert.equal(
      (await executor.command('run_distributed', distributed)).error.error_type,
      'forbidden',
      'run_distributed scales workers',
    );
    assert.equal((await viewer.command('get_container_status', { container_id: 'w2' })).ok, true);
    for (const [name, payload] of [
      ['start_container', { container_id: 'w2' }],
      ['stop_container', { container_id: 'w2' }],
      ['restart_container', { container_id: 'w2' }],
      ['send_message', { container_id: 'w2', message: { command: 'status' } }],
    ] as const) {
      const refused = await executor.command(name, payload);
      assert.equal(refused.error.error_type, 'forbidden', `${name} as executor`);
      assert.match(refused.error.message, /needs the operator role/);
    }
    assert.equal((await operator.command('stop_container', { container_id: 'w2' })).ok, true);
    for (const [name, payload] of [
      ['update_container', { container_id: 'w2', image: 'x:1' }],
      ['delete_container', { container_id: 'w2' }],
    ] as const)
      assert.equal((await operator.command(name, payload)).error.error_type, 'forbidden', `${name} as operator`);
    assert.equal((await admin.command('delete_container', { container_id: 'w2' })).ok, true);
    // Refusals are in the audit log.
    const audit = await lab.manager.request('GET', '/audit?limit=500', undefined, {
      authorization: `Bearer ${lab.token('admin')}`,
    });
    assert.ok(audit.body.entries.some((e: any) => e.path === 'socket.io:delete_container' && e.status === 403));
  });

  it('refuses bad input with every problem listed and creates nothing: host paths, reserved variables, names', async () => {
    const admin = await lab.client('admin');
    const bad = await admin.command('create_container', {
      name: 'Bad_Name',
      environment: { PORT: '1', 'no good': 'x' },
      volumes: {
        '/var/run/docker.sock': '/var/run/docker.sock',
        'pvc/data': 'relative/path',
        'configmap/a': '/etc/runtime-agent',
        'configmap/b': '/srv/x',
        'pvc/c': '/srv/x/y',
      },
    });
    assert.equal(bad.ok, false);
    assert.equal(bad.error.error_type, 'validation_error');
    const paths = bad.error.details.errors.map((p: any) => p.path).sort();
    assert.deepEqual(paths, [
      'environment.PORT',
      'environment.no good',
      'name',
      'volumes./var/run/docker.sock',
      'volumes.configmap/a',
      'volumes.pvc/c',
      'volumes.pvc/data',
    ]);
    assert.match(JSON.stringify(bad.error.details.errors), /host paths are refused/);
    assert.equal(
      lab.kube.list('Deployment', NS).filter((d: any) => d.metadata.name.toLowerCase().startsWith('bad')).length,
      0,
    );
    const schema = await admin.command('start_container', { container_id: 'x', replicas: 0, extra: 1 });
    assert.equal(schema.error.error_type, 'validation_error');
    assert.equal(schema.error.details.errors.length, 2);
    // The agent keeps serving.
    assert.equal((await admin.command('list_containers', {})).ok, true);
  });
});

/**
 * Every k8s action against the fake kube-apiserver through the real client-node:
 * success, dry run (the cluster does not change and writes carry dryRun=All),
 * and each error the API server can answer, mapped to the taxonomy.
 */
import assert from 'node:assert/strict';
import { startCluster, deployment, event, pod, NS, type Cluster, type LogLine } from './k8s-support.js';
import { CoreV1Api } from '@kubernetes/client-node';
import { RESTARTED_AT } from '../../../adapters/k8s/restart.js';

describe('k8s adapter actions', function () {
  this.timeout(15_000);
  let c: Cluster;
  beforeEach(async () => {
    c = await startCluster();
  });
  afterEach(async () => {
    await c.close();
  });
  const writes = () => c.kube.requests.filter((r) => !['GET', 'HEAD'].includes(r.method));
  const deploy = () => c.kube.get('apps/v1', 'Deployment', NS, 'web') as any;

  describe('logs', () => {
    it('reads the previous log of every container of the pods a selector matches, into the log and the outputs', async () => {
      c.kube.seed(pod('web-1', { app: 'web' }, ['app', 'proxy']));
      c.kube.seed(pod('web-2', { app: 'web' }));
      c.kube.seed(pod('db-1', { app: 'db' }));
      c.kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'now' }], { previous: [{ text: 'boot' }, { text: 'panic: config missing' }] });
      c.kube.setPodLogs(NS, 'web-1', 'proxy', [{ text: 'ok' }], { previous: [{ text: 'proxy died' }] });
      c.kube.setPodLogs(NS, 'web-2', 'app', [{ text: 'fine' }], { previous: [{ text: 'oom' }] });
      c.kube.setPodLogs(NS, 'db-1', 'app', [{ text: 'db' }], { previous: [{ text: 'db crashed' }] });
      const log: LogLine[] = [];
      const out = (await c.run('logs', { selector: 'app=web', previous: true, tailLines: 1 }, { log })) as any;
      assert.equal(out.pods, 2);
      assert.deepEqual(
        out.containers.map((x: any) => [x.pod, x.container, x.text]),
        [['web-1', 'app', 'panic: config missing\n'], ['web-1', 'proxy', 'proxy died\n'], ['web-2', 'app', 'oom\n']],
      );
      assert.ok(log.some((l) => l.level === 'stdout' && l.text === '[web-1/app] panic: config missing'));
      assert.ok(!log.some((l) => l.text.includes('db crashed')));
      const q = c.kube.requests.find((r) => r.path.endsWith('/web-1/log'));
      assert.equal(q?.query.previous, 'true');
      assert.equal(q?.query.tailLines, '1');
    });

    it('keeps a container without a previous log as an error entry when others have one, and fails when none has', async () => {
      c.kube.seed(pod('web-1', { app: 'web' }));
      c.kube.seed(pod('web-2', { app: 'web' }, ['app'], false));
      c.kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'x' }], { previous: [{ text: 'crash' }] });
      c.kube.setPodLogs(NS, 'web-2', 'app', [{ text: 'y' }]);
      const out = (await c.run('logs', { selector: 'app=web', previous: true })) as any;
      assert.equal(out.containers[0].text, 'crash\n');
      assert.match(out.containers[1].error, /previous terminated container "app" in pod "web-2" not found/);
      const err = await c.failure('logs', { name: 'web-2', previous: true });
      assert.equal(err.type, 'validation_error');
      assert.match(err.message, /previous terminated container/);
    });

    it('reads by pod name with sinceSeconds, and a missing pod is not_found', async () => {
      c.kube.seed(pod('web-1', { app: 'web' }));
      c.kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'old', time: Date.now() - 3_600_000 }, { text: 'new', time: Date.now() - 1000 }]);
      const out = (await c.run('logs', { name: 'web-1', sinceSeconds: 60 })) as any;
      assert.equal(out.containers[0].text, 'new\n');
      const err = await c.failure('logs', { name: 'nope' });
      assert.equal(err.type, 'not_found');
      assert.equal(err.retryable, false);
    });
  });

  describe('events', () => {
    it('lists the events of one object through involvedObject field selectors, newest first, optionally only warnings', async () => {
      c.kube.seed(event('e1', { kind: 'Deployment', name: 'web' }, 'Normal', 'ScalingReplicaSet', 'scaled up', '2026-01-01T00:00:01Z'));
      c.kube.seed(event('e2', { kind: 'Deployment', name: 'web' }, 'Warning', 'FailedCreate', 'quota', '2026-01-01T00:00:03Z'));
      c.kube.seed(event('e3', { kind: 'Deployment', name: 'web' }, 'Warning', 'BackOff', 'back-off', '2026-01-01T00:00:02Z'));
      c.kube.seed(event('e4', { kind: 'Deployment', name: 'api' }, 'Warning', 'Other', 'not ours', '2026-01-01T00:00:04Z'));
      c.kube.seed(event('e5', { kind: 'Pod', name: 'web' }, 'Warning', 'Other', 'a pod named web', '2026-01-01T00:00:05Z'));
      const all = (await c.run('events', { kind: 'Deployment', name: 'web' })) as any;
      assert.deepEqual(all.events.map((e: any) => e.reason), ['FailedCreate', 'BackOff', 'ScalingReplicaSet']);
      assert.equal(all.warnings, 2);
      const warnings = (await c.run('events', { kind: 'Deployment', name: 'web', type: 'Warning', limit: 1 })) as any;
      assert.deepEqual(warnings.events.map((e: any) => e.reason), ['FailedCreate']);
      const q = c.kube.requests.filter((r) => r.path === '/api/v1/namespaces/default/events').at(-1);
      assert.equal(q?.query.fieldSelector, 'involvedObject.kind=Deployment,involvedObject.name=web,involvedObject.namespace=default,type=Warning');
    });
  });

  describe('get', () => {
    it('reads any kind, masks Secret values, and tells a missing object apart', async () => {
      c.kube.seed(deployment('web', 3));
      const out = (await c.run('get', { kind: 'Deployment', name: 'web' })) as any;
      assert.equal(out.object.spec.replicas, 3);
      c.kube.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: NS }, type: 'Opaque', data: { password: Buffer.from('hunter2').toString('base64') } });
      const secret = (await c.run('get', { kind: 'Secret', name: 'creds' })) as any;
      assert.deepEqual(secret.object.data, { password: '***' });
      assert.ok(!JSON.stringify(secret).includes(Buffer.from('hunter2').toString('base64')));
      assert.deepEqual(await c.run('get', { kind: 'Deployment', name: 'gone', ignoreNotFound: true }), { exists: false, object: null });
      assert.equal((await c.failure('get', { kind: 'Deployment', name: 'gone' })).type, 'not_found');
      const unknown = await c.failure('get', { kind: 'Widget', name: 'w' });
      assert.equal(unknown.type, 'validation_error');
      assert.match(unknown.message, /add apiVersion/);
    });
  });

  describe('restart', () => {
    it('patches the restartedAt annotation like kubectl rollout restart and reports the previous value and the new generation', async () => {
      c.kube.seed(deployment('web', 2, { annotations: { [RESTARTED_AT]: '2025-01-01T00:00:00Z' } }));
      const before = deploy().metadata.generation;
      const out = (await c.run('restart', { kind: 'Deployment', name: 'web' })) as any;
      assert.equal(out.previousRestartedAt, '2025-01-01T00:00:00Z');
      assert.match(out.restartedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(deploy().spec.template.metadata.annotations[RESTARTED_AT], out.restartedAt);
      assert.equal(out.generation, before + 1);
      const patch = writes().at(-1)!;
      assert.equal(patch.contentType, 'application/strategic-merge-patch+json');
      assert.equal(patch.fieldManager, 'runtime-agent');
    });

    it('a dry run sends dryRun=All and changes nothing', async () => {
      c.kube.seed(deployment('web'));
      const rv = c.kube.resourceVersion();
      const out = (await c.dry('restart', { kind: 'Deployment', name: 'web' })) as any;
      assert.equal(out.generation, out.previousGeneration + 1, 'the server says what the generation would become');
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal(deploy().spec.template.metadata.annotations, undefined);
      assert.ok(writes().every((r) => r.dryRun === true));
    });

    it('refuses a paused deployment, and a forbidden patch names the verb and the RBAC manifest', async () => {
      c.kube.seed(deployment('paused', 1, { paused: true }));
      const paused = await c.failure('restart', { kind: 'Deployment', name: 'paused' });
      assert.equal(paused.type, 'conflict');
      assert.match(paused.message, /rollout resume/);
      c.kube.seed(deployment('web'));
      c.kube.deny('patch', 'deployments', { group: 'apps' });
      const err = await c.failure('restart', { kind: 'Deployment', name: 'web' });
      assert.equal(err.type, 'forbidden');
      assert.equal(err.retryable, false);
      assert.match(err.message, /cannot patch resource "deployments" in API group "apps"/);
      assert.match(err.message, /may not patch deployments in API group apps; grant it in deploy\/rbac\.yaml/);
      assert.deepEqual([err.details.verb, err.details.resource], ['patch', 'deployments']);
    });
  });

  describe('scale', () => {
    it('sets replicas through the scale subresource and compensates to previousReplicas', async () => {
      c.kube.seed(deployment('web', 3));
      const out = (await c.run('scale', { kind: 'Deployment', name: 'web', replicas: 0 })) as any;
      assert.deepEqual(out, { previousReplicas: 3, replicas: 0 });
      assert.equal(deploy().spec.replicas, 0);
      assert.equal(writes().at(-1)!.path, '/apis/apps/v1/namespaces/default/deployments/web/scale');
      const spec = c.adapter.actions.scale;
      assert.deepEqual(spec.compensate!({ kind: 'Deployment', name: 'web', replicas: 0 }, out), { action: 'scale', with: { kind: 'Deployment', namespace: undefined, name: 'web', replicas: 3 } });
      c.kube.seed({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: NS }, spec: { replicas: 1, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'db' }] } } } });
      assert.deepEqual(await c.run('scale', { kind: 'StatefulSet', name: 'db', replicas: 2 }), { previousReplicas: 1, replicas: 2 });
    });

    it('a dry run changes nothing', async () => {
      c.kube.seed(deployment('web', 3));
      const rv = c.kube.resourceVersion();
      assert.deepEqual(await c.dry('scale', { kind: 'Deployment', name: 'web', replicas: 1 }), { previousReplicas: 3, replicas: 1 });
      assert.equal(deploy().spec.replicas, 3);
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal(writes().at(-1)!.dryRun, true);
    });

    it('maps 404, 409, 422, 429, 5xx and an unreachable server to the taxonomy with the right retry policy', async () => {
      assert.equal((await c.failure('scale', { kind: 'Deployment', name: 'nope', replicas: 1 })).type, 'not_found');
      c.kube.seed(deployment('web', 3));
      const cases: Array<[number, string, boolean]> = [
        [409, 'conflict', true],
        [422, 'validation_error', false],
        [429, 'rate_limited', true],
        [500, 'adapter_error', true],
        [503, 'adapter_error', true],
      ];
      for (const [code, type, retryable] of cases) {
        c.kube.failNext({ method: 'PATCH', subresource: 'scale' }, { code });
        const err = await c.failure('scale', { kind: 'Deployment', name: 'web', replicas: 1 });
        assert.deepEqual([err.type, err.retryable, err.details.code], [type, retryable, code], `${code}: ${err.message}`);
      }
      assert.equal(deploy().spec.replicas, 3);
      await c.kube.close();
      const down = await c.failure('scale', { kind: 'Deployment', name: 'web', replicas: 1 });
      assert.equal(down.type, 'network_error');
      assert.equal(down.retryable, true);
    });

    it('two writes to the same object never interleave: the second waits for the first', async () => {
      c.kube.seed(deployment('web', 3));
      const [a, b] = await Promise.all([
        c.run('scale', { kind: 'Deployment', name: 'web', replicas: 1 }),
        c.run('scale', { kind: 'Deployment', name: 'web', replicas: 2 }),
      ]);
      assert.deepEqual(a, { previousReplicas: 3, replicas: 1 });
      assert.deepEqual(b, { previousReplicas: 1, replicas: 2 }, 'the second read what the first wrote');
      const seq = c.kube.requests.filter((r) => r.subresource === 'scale').map((r) => r.method);
      assert.deepEqual(seq, ['GET', 'PATCH', 'GET', 'PATCH']);
    });
  });

  describe('wait', () => {
    it('waits for Available through a watch while the controller rolls out, without polling', async () => {
      c.kube.controller.enable({ mode: 'complete', delayMs: 300 });
      c.kube.seed(deployment('web', 2));
      const out = (await c.run('wait', { kind: 'Deployment', name: 'web', condition: 'Available', timeoutSeconds: 10 })) as any;
      assert.equal(out.met, true);
      assert.match(out.observed, /Available=True/);
      const gets = c.kube.requests.filter((r) => r.method === 'GET' && r.name === 'web');
      assert.ok(gets.length <= 2, `${gets.length} GETs: a watch, not a polling loop`);
      assert.ok(c.kube.requests.some((r) => r.query.watch === 'true' && r.query.fieldSelector === 'metadata.name=web'));
    });

    it('RolloutComplete follows a restart to the end, and a rollout past its deadline fails at once', async () => {
      c.kube.controller.enable({ mode: 'complete', delayMs: 200 });
      c.kube.seed(deployment('web', 2));
      await c.run('wait', { kind: 'Deployment', name: 'web', condition: 'RolloutComplete', timeoutSeconds: 10 });
      await c.run('restart', { kind: 'Deployment', name: 'web' });
      const out = (await c.run('wait', { kind: 'Deployment', name: 'web', condition: 'RolloutComplete', timeoutSeconds: 10 })) as any;
      assert.match(out.observed, /updated 2, available 2/);
      c.kube.controller.setMode('fail', { kind: 'Deployment', namespace: NS, name: 'web' });
      await c.run('restart', { kind: 'Deployment', name: 'web' });
      const started = Date.now();
      const err = await c.failure('wait', { kind: 'Deployment', name: 'web', condition: 'RolloutComplete', timeoutSeconds: 30 });
      assert.equal(err.type, 'timeout');
      assert.match(err.message, /exceeded the progress deadline/);
      assert.ok(Date.now() - started < 5000);
    });

    it('times out naming the last observed state; path/equals and Deleted conditions; a dry run looks once', async () => {
      c.kube.controller.enable({ mode: 'stuck', delayMs: 50 });
      c.kube.seed(deployment('web', 2));
      const err = await c.failure('wait', { kind: 'Deployment', name: 'web', condition: 'Available', timeoutSeconds: 1 });
      assert.equal(err.type, 'timeout');
      assert.match(err.message, /did not become Available=True within 1s; last observed: /);
      const dry = (await c.dry('wait', { kind: 'Deployment', name: 'web', condition: 'Available' })) as any;
      assert.equal(dry.met, false);
      setTimeout(() => c.kube.setStatus('apps/v1', 'Deployment', NS, 'web', (s: any) => ({ ...s, readyReplicas: 2 })), 200);
      const byPath = (await c.run('wait', { kind: 'Deployment', name: 'web', path: 'status.readyReplicas', equals: 2, timeoutSeconds: 5 })) as any;
      assert.equal(byPath.observed, 'status.readyReplicas = 2');
      setTimeout(() => c.kube.remove('apps/v1', 'Deployment', NS, 'web'), 200);
      assert.equal(((await c.run('wait', { kind: 'Deployment', name: 'web', condition: 'Deleted', timeoutSeconds: 5 })) as any).observed, 'deleted');
    });

    it('stops at once when the step is cancelled', async () => {
      c.kube.seed(deployment('web', 2));
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('cancelled by test')), 200);
      const started = Date.now();
      const err = await c.failure('wait', { kind: 'Deployment', name: 'web', condition: 'Available', timeoutSeconds: 30 }, { signal: controller.signal });
      assert.equal(err.type, 'cancelled');
      assert.ok(Date.now() - started < 2000);
    });
  });

  describe('apply', () => {
    const cm = (data: Record<string, string>) => ({ manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data } });

    it('creates with server-side apply, records the absence, and its compensation deletes what it created', async () => {
      const out = (await c.run('apply', cm({ mode: 'new' }))) as any;
      assert.equal(out.created, true);
      assert.equal(out.previous, null);
      const req = writes().at(-1)!;
      assert.deepEqual([req.contentType, req.fieldManager], ['application/apply-patch+yaml', 'runtime-agent']);
      const comp = c.adapter.actions.apply.compensate!(cm({ mode: 'new' }), out)!;
      assert.deepEqual(comp, { action: 'restore', with: { apiVersion: 'v1', kind: 'ConfigMap', namespace: NS, name: 'settings', previous: null } });
      assert.deepEqual(await c.run('restore', comp.with), { action: 'deleted' });
      assert.equal(c.kube.get('v1', 'ConfigMap', NS, 'settings'), undefined);
    });

    it('updates, records the object as it was, and its compensation puts it back', async () => {
      c.kube.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: NS, labels: { keep: 'me' } }, data: { mode: 'old' } });
      const out = (await c.run('apply', { ...cm({ mode: 'new' }), force: true })) as any;
      assert.equal(out.created, false);
      assert.deepEqual(out.previous.data, { mode: 'old' });
      assert.equal(out.previous.metadata.resourceVersion, undefined, 'server-owned fields are not recorded');
      assert.equal((c.kube.get('v1', 'ConfigMap', NS, 'settings') as any).data.mode, 'new');
      const comp = c.adapter.actions.apply.compensate!(cm({ mode: 'new' }), out)!;
      assert.deepEqual(await c.run('restore', comp.with), { action: 'replaced' });
      const restored = c.kube.get('v1', 'ConfigMap', NS, 'settings') as any;
      assert.deepEqual([restored.data, restored.metadata.labels], [{ mode: 'old' }, { keep: 'me' }]);
    });

    it('a dry run changes nothing; a field another manager owns is a conflict without force', async () => {
      // Created by another field manager, as `kubectl create` would.
      const core = c.kube.kubeConfig().makeApiClient(CoreV1Api);
      await core.createNamespacedConfigMap({ namespace: NS, fieldManager: 'kubectl-create', body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { mode: 'old' } } });
      const rv = c.kube.resourceVersion();
      const out = (await c.dry('apply', { ...cm({ mode: 'new' }), force: true })) as any;
      assert.equal(out.object.data.mode, 'new', 'what the object would become');
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal((c.kube.get('v1', 'ConfigMap', NS, 'settings') as any).data.mode, 'old');
      const err = await c.failure('apply', cm({ mode: 'mine' }));
      assert.equal(err.type, 'conflict');
      assert.match(err.message, /conflict with "kubectl-create"/);
      assert.equal((c.kube.get('v1', 'ConfigMap', NS, 'settings') as any).data.mode, 'old');
    });
  });

  describe('patch', () => {
    it('patches with each patch type and records the previous object for its compensation', async () => {
      c.kube.seed(deployment('web', 2));
      await c.run('patch', { kind: 'Deployment', name: 'web', type: 'merge', patch: { metadata: { labels: { tier: 'front' } } } });
      assert.equal(deploy().metadata.labels.tier, 'front');
      assert.equal(writes().at(-1)!.contentType, 'application/merge-patch+json');
      await c.run('patch', { kind: 'Deployment', name: 'web', patch: { spec: { template: { spec: { containers: [{ name: 'app', image: 'registry.local/app:2.0' }] } } } } });
      assert.equal(deploy().spec.template.spec.containers[0].image, 'registry.local/app:2.0');
      assert.equal(writes().at(-1)!.contentType, 'application/strategic-merge-patch+json');
      const out = (await c.run('patch', { kind: 'Deployment', name: 'web', type: 'json', patch: [{ op: 'replace', path: '/spec/replicas', value: 5 }] })) as any;
      assert.equal(deploy().spec.replicas, 5);
      assert.equal(writes().at(-1)!.contentType, 'application/json-patch+json');
      assert.equal(out.previous.spec.replicas, 2);
      const comp = c.adapter.actions.patch.compensate!({} as any, out)!;
      await c.run('restore', comp.with);
      assert.equal(deploy().spec.replicas, 2);
      assert.equal(deploy().spec.template.spec.containers[0].image, 'registry.local/app:2.0', 'restore puts back the object as the patch found it');
    });

    it('a dry run changes nothing, a mismatched patch is a validation error, a missing object not_found', async () => {
      c.kube.seed(deployment('web', 2));
      const rv = c.kube.resourceVersion();
      const out = (await c.dry('patch', { kind: 'Deployment', name: 'web', type: 'json', patch: [{ op: 'replace', path: '/spec/replicas', value: 7 }] })) as any;
      assert.equal(out.object.spec.replicas, 7);
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal(writes().at(-1)!.dryRun, true);
      assert.equal((await c.failure('patch', { kind: 'Deployment', name: 'web', type: 'json', patch: { spec: {} } })).type, 'validation_error');
      assert.equal((await c.failure('patch', { kind: 'Deployment', name: 'nope', patch: { spec: {} } })).type, 'not_found');
      const invalid = await c.failure('patch', { kind: 'Deployment', name: 'web', type: 'merge', patch: { spec: { replicas: -1 } } });
      assert.equal(invalid.type, 'validation_error');
      assert.match(invalid.message, /invalid/);
    });
  });

  describe('delete', () => {
    it('with record keeps a copy whose compensation re-creates the object; without, there is no compensation', async () => {
      c.kube.seed(deployment('web', 2));
      const out = (await c.run('delete', { kind: 'Deployment', name: 'web', record: true })) as any;
      assert.equal(out.deleted, true);
      assert.equal(deploy(), undefined);
      const comp = c.adapter.actions.delete.compensate!({ kind: 'Deployment', name: 'web', record: true }, out)!;
      assert.deepEqual(await c.run('restore', comp.with), { action: 'created' });
      assert.equal(deploy().spec.replicas, 2);
      const plainDelete = (await c.run('delete', { kind: 'Deployment', name: 'web' })) as any;
      assert.equal(c.adapter.actions.delete.compensate!({ kind: 'Deployment', name: 'web' }, plainDelete), undefined);
      assert.deepEqual(await c.run('delete', { kind: 'Deployment', name: 'web', ignoreNotFound: true }), { deleted: false, previous: null, target: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: NS, name: 'web' } });
      assert.equal((await c.failure('delete', { kind: 'Deployment', name: 'web' })).type, 'not_found');
    });

    it('a dry run deletes nothing', async () => {
      c.kube.seed(deployment('web', 2));
      const rv = c.kube.resourceVersion();
      await c.dry('delete', { kind: 'Deployment', name: 'web', record: true });
      assert.ok(deploy());
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal(writes().at(-1)!.dryRun, true);
    });
  });

  describe('every action maps the API server\'s failures', () => {
    const inputs: Record<string, Record<string, unknown>> = {
      logs: { name: 'web-1' },
      events: { kind: 'Deployment', name: 'web' },
      get: { kind: 'Deployment', name: 'web' },
      restart: { kind: 'Deployment', name: 'web' },
      scale: { kind: 'Deployment', name: 'web', replicas: 1 },
      wait: { kind: 'Deployment', name: 'web', condition: 'Available', timeoutSeconds: 2 },
      apply: { manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { a: '1' } } },
      patch: { kind: 'Deployment', name: 'web', type: 'merge', patch: { metadata: { labels: { x: 'y' } } } },
      delete: { kind: 'Deployment', name: 'web' },
      restore: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', previous: null },
    };
    const expected: Array<[number, string, boolean]> = [
      [401, 'unauthorized', false],
      [403, 'forbidden', false],
      [404, 'not_found', false],
      [422, 'validation_error', false],
      [429, 'rate_limited', true],
      [500, 'adapter_error', true],
      [503, 'adapter_error', true],
    ];
    for (const action of Object.keys(inputs)) {
      it(`${action}: ${expected.map(([code, type]) => `${code} ${type}`).join(', ')}`, async () => {
        for (const [code, type, retryable] of expected) {
          // For these the first call is a read where 404 means "absent", a state they handle (wait keeps waiting, apply creates, restore re-creates).
          if (code === 404 && ['wait', 'apply', 'restore'].includes(action)) continue;
          c.kube.seed(deployment('web', 2));
          c.kube.seed(pod('web-1', { app: 'web' }, ['app'], false));
          c.kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'x' }]);
          // The first call past discovery fails, whichever it is.
          c.kube.failNext((r) => !/^\/(api|apis)(\/[^/]+){0,2}$/.test(r.path), { code });
          const err = await c.failure(action, inputs[action]);
          assert.deepEqual([err.type, err.retryable], [type, retryable], `${action} ${code}: ${err.type} ${err.message}`);
          assert.ok(!/at .*\.ts:\d+/.test(err.message), 'no stack in the message');
        }
      });
    }
  });
});

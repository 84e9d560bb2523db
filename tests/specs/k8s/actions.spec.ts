/**
 * Every k8s action against the fake kube-apiserver through the real client-node:
 * success, dry run (the cluster does not change and writes carry dryRun=All),
 * and each error the API server can answer, mapped to the taxonomy.
 */
import assert from 'node:assert/strict';
import { configMap, deployment, event, pod, useCluster, NS, type LogLine } from './k8s-support.js';
import { CoreV1Api } from '@kubernetes/client-node';
import { RESTARTED_AT } from '../../../adapters/k8s/restart.js';
import { MAX_LOG_CHARS_PER_CONTAINER, MAX_LOG_CHARS_TOTAL } from '../../../adapters/k8s/logs.js';
import { recreatable } from '../../../adapters/k8s/recreatable.js';
import { LAST_APPLIED } from '../../../adapters/k8s/runtime.js';
import type { KObj } from '../support/fake-kube/index.js';
import { waitFor } from '../support/wait.js';

/** The error type an API server's status code becomes, and whether a retry may help. */
const STATUS_ERRORS: Record<number, [type: string, retryable: boolean]> = {
  401: ['unauthorized', false],
  403: ['forbidden', false],
  404: ['not_found', false],
  409: ['conflict', true],
  422: ['validation_error', false],
  429: ['rate_limited', true],
  500: ['adapter_error', true],
  503: ['adapter_error', true],
};

describe('k8s adapter actions', function () {
  this.timeout(15_000);
  const c = useCluster();
  const writes = () => c.kube.requests.filter((r) => !['GET', 'HEAD'].includes(r.method));
  const deploy = () => c.kube.get('apps/v1', 'Deployment', NS, 'web') as any;

  describe('logs', () => {
    it('reads the previous log of every container of the pods a selector matches, into the log and the outputs', async () => {
      c.kube.seed(pod('web-1', { app: 'web' }, ['app', 'proxy']));
      c.kube.seed(pod('web-2', { app: 'web' }));
      c.kube.seed(pod('db-1', { app: 'db' }));
      c.kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'now' }], {
        previous: [{ text: 'boot' }, { text: 'panic: config missing' }],
      });
      c.kube.setPodLogs(NS, 'web-1', 'proxy', [{ text: 'ok' }], { previous: [{ text: 'proxy died' }] });
      c.kube.setPodLogs(NS, 'web-2', 'app', [{ text: 'fine' }], { previous: [{ text: 'oom' }] });
      c.kube.setPodLogs(NS, 'db-1', 'app', [{ text: 'db' }], { previous: [{ text: 'db crashed' }] });
      const log: LogLine[] = [];
      const out = (await c.run('logs', { selector: 'app=web', previous: true, tailLines: 1 }, { log })) as any;
      assert.equal(out.pods, 2);
      assert.deepEqual(
        out.containers.map((x: any) => [x.pod, x.container, x.text]),
        [
          ['web-1', 'app', 'panic: config missing\n'],
          ['web-1', 'proxy', 'proxy died\n'],
          ['web-2', 'app', 'oom\n'],
        ],
      );
      assert.ok(log.some((l) => l.level === 'stdout' && l.message === '[web-1/app] panic: config missing'));
      assert.ok(!log.some((l) => l.message.includes('db crashed')));
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
      c.kube.setPodLogs(NS, 'web-1', 'app', [
        { text: 'old', time: Date.now() - 3_600_000 },
        { text: 'new', time: Date.now() - 1000 },
      ]);
      const out = (await c.run('logs', { name: 'web-1', sinceSeconds: 60 })) as any;
      assert.equal(out.containers[0].text, 'new\n');
      const err = await c.failure('logs', { name: 'nope' });
      assert.equal(err.type, 'not_found');
      assert.equal(err.retryable, false);
    });
    it('keeps at most 1 MiB of log text in outputs across all containers, the tail of each', async () => {
      const names = ['a', 'b', 'c', 'd', 'e', 'f'];
      const line = (pod: string, c: string, i: number) =>
        `${pod}/${c} line ${String(i).padStart(4, '0')} ${'x'.repeat(1000)}`;
      for (const p of ['web-1', 'web-2', 'web-3']) {
        c.kube.seed(pod(p, { app: 'web' }, names, false));
        for (const n of names)
          c.kube.setPodLogs(
            NS,
            p,
            n,
            Array.from({ length: 80 }, (_, i) => ({ text: line(p, n, i) })),
          );
      }
      const log: LogLine[] = [];
      const out = (await c.run('logs', { selector: 'app=web', tailLines: 1000 }, { log })) as any;
      assert.equal(out.containers.length, 18);
      const kept = out.containers.reduce((n: number, x: any) => n + x.text.length, 0);
      assert.ok(kept <= MAX_LOG_CHARS_TOTAL + 18 * 40, `${kept} characters kept in all`);
      assert.ok(
        out.containers.every((x: any) => x.truncated && x.lines === 80),
        'every container says it was cut, and how many lines it had',
      );
      assert.ok(
        out.containers[0].text.length > MAX_LOG_CHARS_PER_CONTAINER - 100,
        'the first containers keep their whole tail',
      );
      assert.ok(out.containers[0].text.endsWith(`${line('web-1', 'a', 79)}\n`), 'the tail is what is kept');
      assert.ok(out.containers.at(-1).text.length < 100, 'the last ones are cut to nothing once the budget is spent');
      assert.ok(log.some((l) => l.level === 'warn' && /outputs keep at most 1048576 characters/.test(l.message)));
      assert.equal(log.filter((l) => l.level === 'stdout').length, 18 * 80, 'the execution log still gets every line');
    });
  });

  describe('events', () => {
    it('lists the events of one object through involvedObject field selectors, newest first, optionally only warnings', async () => {
      c.kube.seed(
        event(
          'e1',
          { kind: 'Deployment', name: 'web' },
          'Normal',
          'ScalingReplicaSet',
          'scaled up',
          '2026-01-01T00:00:01Z',
        ),
      );
      c.kube.seed(
        event('e2', { kind: 'Deployment', name: 'web' }, 'Warning', 'FailedCreate', 'quota', '2026-01-01T00:00:03Z'),
      );
      c.kube.seed(
        event('e3', { kind: 'Deployment', name: 'web' }, 'Warning', 'BackOff', 'back-off', '2026-01-01T00:00:02Z'),
      );
      c.kube.seed(
        event('e4', { kind: 'Deployment', name: 'api' }, 'Warning', 'Other', 'not ours', '2026-01-01T00:00:04Z'),
      );
      c.kube.seed(
        event('e5', { kind: 'Pod', name: 'web' }, 'Warning', 'Other', 'a pod named web', '2026-01-01T00:00:05Z'),
      );
      const all = (await c.run('events', { kind: 'Deployment', name: 'web' })) as any;
      assert.deepEqual(
        all.events.map((e: any) => e.reason),
        ['FailedCreate', 'BackOff', 'ScalingReplicaSet'],
      );
      assert.equal(all.warnings, 2);
      const warnings = (await c.run('events', { kind: 'Deployment', name: 'web', type: 'Warning', limit: 1 })) as any;
      assert.deepEqual(
        warnings.events.map((e: any) => e.reason),
        ['FailedCreate'],
      );
      const q = c.kube.requests.filter((r) => r.path === '/api/v1/namespaces/default/events').at(-1);
      assert.equal(
        q?.query.fieldSelector,
        'involvedObject.kind=Deployment,involvedObject.name=web,involvedObject.namespace=default,type=Warning',
      );
    });
  });

  describe('get', () => {
    it('reads any kind, masks Secret values, and tells a missing object apart', async () => {
      c.kube.seed(deployment('web', 3));
      const out = (await c.run('get', { kind: 'Deployment', name: 'web' })) as any;
      assert.equal(out.object.spec.replicas, 3);
      c.kube.seed({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds', namespace: NS },
        type: 'Opaque',
        data: { password: Buffer.from('hunter2').toString('base64') },
      });
      const secret = (await c.run('get', { kind: 'Secret', name: 'creds' })) as any;
      assert.deepEqual(secret.object.data, { password: '***' });
      assert.ok(!JSON.stringify(secret).includes(Buffer.from('hunter2').toString('base64')));
      assert.deepEqual(await c.run('get', { kind: 'Deployment', name: 'gone', ignoreNotFound: true }), {
        exists: false,
        object: null,
      });
      assert.equal((await c.failure('get', { kind: 'Deployment', name: 'gone' })).type, 'not_found');
      const unknown = await c.failure('get', { kind: 'Widget', name: 'w' });
      assert.equal(unknown.type, 'validation_error');
      assert.match(unknown.message, /add apiVersion/);
    });
  });

  describe('plain JSON objects', () => {
    it('fields the typed models do not know, and strategic-merge directives, reach the API server and come back', async () => {
      const two = deployment('two', 1) as any;
      two.spec.template.spec.containers.push({ name: 'side', image: 'registry.local/side:1.0' });
      two.spec.futureField = { enabled: true };
      c.kube.seed(two);
      const got = (await c.run('get', { kind: 'Deployment', name: 'two' })) as any;
      assert.deepEqual(got.object.spec.futureField, { enabled: true }, 'a field newer than the models is kept');
      assert.equal(typeof got.object.metadata.creationTimestamp, 'string', 'timestamps stay as the server wrote them');
      const out = (await c.run('patch', {
        kind: 'Deployment',
        name: 'two',
        patch: { spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } } },
      })) as any;
      assert.deepEqual(
        out.object.spec.template.spec.containers.map((x: any) => x.name),
        ['app'],
        '$patch: delete removed the container',
      );
      const sent = writes().at(-1)!;
      assert.deepEqual(
        JSON.parse(String(sent.body)),
        { spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } } },
        'the patch went out exactly as given',
      );
      const applied = (await c.run('apply', {
        manifest: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'cm' },
          data: { a: '1' },
          binaryData: { b: 'AA==' },
        },
      })) as any;
      assert.deepEqual(applied.object.binaryData, { b: 'AA==' });
    });

    it('a kind or API the server does not have is a validation_error, never "absent"', async () => {
      const cases: Array<[string, Record<string, unknown>]> = [
        ['get', { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', ignoreNotFound: true }],
        ['get', { apiVersion: 'apps/v1', kind: 'Widget', name: 'w' }],
        ['wait', { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', condition: 'Deleted', timeoutSeconds: 2 }],
        ['patch', { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', type: 'merge', patch: { spec: {} } }],
        ['apply', { manifest: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } } }],
        ['restore', { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', previous: null }],
        ['delete', { apiVersion: 'apps/v1', kind: 'Widget', name: 'w', ignoreNotFound: true }],
      ];
      for (const [action, input] of cases) {
        const err = await c.failure(action, input);
        assert.deepEqual(
          [err.type, err.retryable],
          ['validation_error', false],
          `${action} ${JSON.stringify(input)}: ${err.message}`,
        );
        assert.match(err.message, /the API server has no kind Widget in (example\.com|apps)\/v1/);
      }
      assert.ok(
        !c.kube.requests.some((r) => r.path.includes('widgets')),
        'no object request was sent for a kind that does not exist',
      );
    });

    it('cluster-scoped kinds have no namespace in targets and compensations: an applied Namespace is undone by its compensation', async () => {
      const out = (await c.run('apply', {
        manifest: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'a' } } },
      })) as any;
      assert.equal(out.created, true);
      assert.deepEqual(out.target, { apiVersion: 'v1', kind: 'Namespace', name: 'shop' });
      assert.ok(!('namespace' in out.target));
      assert.equal(writes().at(-1)!.path, '/api/v1/namespaces/shop');
      assert.equal((c.kube.get('v1', 'Namespace', undefined, 'shop') as any).metadata.labels.team, 'a');
      const comp = c.adapter.actions.apply.compensate!({} as any, out)!;
      assert.deepEqual(comp, {
        action: 'restore',
        with: { apiVersion: 'v1', kind: 'Namespace', name: 'shop', previous: null },
      });
      assert.deepEqual(
        c.registry.checkRuntime('k8s', 'restore', structuredClone(comp.with)),
        [],
        'the compensation validates',
      );
      assert.deepEqual(await c.run('restore', comp.with), { action: 'deleted' });
      assert.equal(c.kube.get('v1', 'Namespace', undefined, 'shop'), undefined);
      // Recorded and re-created, also without a namespace.
      c.kube.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tmp', labels: { keep: 'me' } } } as KObj);
      const got = (await c.run('get', { kind: 'Namespace', name: 'tmp', namespace: 'ignored' })) as any;
      assert.equal(got.object.metadata.name, 'tmp');
      const deleted = (await c.run('delete', { kind: 'Namespace', name: 'tmp', record: true })) as any;
      const back = c.adapter.actions.delete.compensate!({ kind: 'Namespace', name: 'tmp', record: true }, deleted)!;
      assert.deepEqual(c.registry.checkRuntime('k8s', 'restore', structuredClone(back.with)), []);
      assert.deepEqual(await c.run('restore', back.with), { action: 'created' });
      assert.equal((c.kube.get('v1', 'Namespace', undefined, 'tmp') as any).metadata.labels.keep, 'me');
    });
  });

  describe('Secrets', () => {
    it("a Secret's values appear nowhere in outputs or logs, and writes to a Secret record nothing and have no compensation", async () => {
      const value = Buffer.from('hunter2-do-not-leak').toString('base64');
      const lastApplied = JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds' },
        data: { password: value },
      });
      c.kube.seed({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds', namespace: NS, annotations: { [LAST_APPLIED]: lastApplied, owner: 'team-a' } },
        type: 'Opaque',
        data: { password: value },
      } as KObj);
      const log: LogLine[] = [];
      const outs: Record<string, any> = {};
      outs.get = await c.run('get', { kind: 'Secret', name: 'creds' }, { log });
      outs.getMaybe = await c.run('get', { kind: 'Secret', name: 'creds', ignoreNotFound: true }, { log });
      outs.wait = await c.run(
        'wait',
        { kind: 'Secret', name: 'creds', path: 'data.password', equals: value, timeoutSeconds: 2 },
        { log },
      );
      const applySecret = (name: string, content: Record<string, unknown>) => ({
        manifest: { apiVersion: 'v1', kind: 'Secret', metadata: { name }, ...content },
      });
      const overwrite = { ...applySecret('creds', { data: { password: value, more: value } }), force: true };
      outs.dryApply = await c.dry('apply', overwrite, { log });
      outs.apply = await c.run('apply', overwrite, { log });
      outs.patch = await c.run(
        'patch',
        { kind: 'Secret', name: 'creds', type: 'merge', patch: { stringData: { extra: 'hunter2-do-not-leak' } } },
        { log },
      );
      const fresh = applySecret('fresh', { stringData: { token: 'hunter2-do-not-leak' } });
      outs.created = await c.run('apply', fresh, { log });
      outs.delete = await c.run('delete', { kind: 'Secret', name: 'creds', record: true }, { log });
      outs.restore = await c.run(
        'restore',
        { apiVersion: 'v1', kind: 'Secret', name: 'fresh', previous: null },
        { log },
      );
      for (const [name, out] of Object.entries(outs)) {
        const text = JSON.stringify(out);
        assert.ok(!text.includes(value) && !text.includes('hunter2'), `${name} leaks the Secret: ${text}`);
      }
      assert.ok(
        !JSON.stringify(log).includes(value) && !JSON.stringify(log).includes('hunter2'),
        `nor does the log: ${JSON.stringify(log.filter((l) => l.message.includes(value) || l.message.includes('hunter2')))}`,
      );
      assert.deepEqual(outs.get.object.data, { password: '***' });
      assert.equal(outs.get.object.metadata.annotations[LAST_APPLIED], '***');
      assert.equal(outs.get.object.metadata.annotations.owner, 'team-a', 'other annotations stay');
      assert.deepEqual(outs.apply.object.data, { password: '***', more: '***' });
      assert.equal(outs.wait.observed, 'data.password = (value hidden)');
      for (const [action, out] of [
        ['apply', outs.apply],
        ['patch', outs.patch],
        ['apply', outs.created],
        ['delete', outs.delete],
      ] as const) {
        assert.deepEqual([out.previous, out.recorded], [null, false], `${action} records nothing`);
        assert.equal(
          c.adapter.actions[action].compensate!({ kind: 'Secret', name: 'creds', record: true } as any, out),
          undefined,
          `${action} of a Secret has no compensation`,
        );
      }
      assert.equal(outs.created.created, true);
      assert.ok(
        log.filter((l) => l.level === 'warn' && /Secret's contents are never recorded/.test(l.message)).length >= 4,
      );
      // The writes themselves happened.
      assert.equal(c.kube.get('v1', 'Secret', NS, 'creds'), undefined);
      assert.deepEqual(outs.restore, { action: 'deleted' });
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
      assert.match(
        err.message,
        /may not patch deployments in API group apps; grant it in deploy\/base\/rbac\/rbac\.yaml/,
      );
      assert.deepEqual([err.details.verb, err.details.resource], ['patch', 'deployments']);
    });
  });

  describe('scale', () => {
    it('sets replicas through the scale subresource and compensates to previousReplicas', async () => {
      c.kube.seed(deployment('web', 3));
      const out = (await c.run('scale', { kind: 'Deployment', name: 'web', replicas: 0 })) as any;
      assert.deepEqual(out, { previousReplicas: 3, replicas: 0, namespace: NS });
      assert.equal(deploy().spec.replicas, 0);
      assert.equal(writes().at(-1)!.path, '/apis/apps/v1/namespaces/default/deployments/web/scale');
      const spec = c.adapter.actions.scale;
      // The input named no namespace: the compensation scales back where the object is, and validates.
      const comp = spec.compensate!({ kind: 'Deployment', name: 'web', replicas: 0 }, out)!;
      assert.deepEqual(comp, {
        action: 'scale',
        with: { kind: 'Deployment', namespace: NS, name: 'web', replicas: 3 },
      });
      assert.deepEqual(c.registry.checkRuntime('k8s', 'scale', structuredClone(comp.with)), []);
      c.kube.seed({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'db', namespace: NS },
        spec: {
          replicas: 1,
          serviceName: 'db',
          selector: { matchLabels: { app: 'db' } },
          template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'db' }] } },
        },
      });
      assert.deepEqual(await c.run('scale', { kind: 'StatefulSet', name: 'db', replicas: 2 }), {
        previousReplicas: 1,
        replicas: 2,
        namespace: NS,
      });
    });

    it('a dry run changes nothing', async () => {
      c.kube.seed(deployment('web', 3));
      const rv = c.kube.resourceVersion();
      assert.deepEqual(await c.dry('scale', { kind: 'Deployment', name: 'web', replicas: 1 }), {
        previousReplicas: 3,
        replicas: 1,
        namespace: NS,
      });
      assert.equal(deploy().spec.replicas, 3);
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal(writes().at(-1)!.dryRun, true);
    });

    it('maps 404, 409, 422, 429, 5xx and an unreachable server to the taxonomy with the right retry policy', async () => {
      assert.equal((await c.failure('scale', { kind: 'Deployment', name: 'nope', replicas: 1 })).type, 'not_found');
      c.kube.seed(deployment('web', 3));
      for (const code of [409, 422, 429, 500, 503]) {
        const [type, retryable] = STATUS_ERRORS[code];
        c.kube.failNext({ method: 'PATCH', subresource: 'scale' }, { code });
        const err = await c.failure('scale', { kind: 'Deployment', name: 'web', replicas: 1 });
        assert.deepEqual(
          [err.type, err.retryable, err.details.code],
          [type, retryable, code],
          `${code}: ${err.message}`,
        );
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
      assert.deepEqual(a, { previousReplicas: 3, replicas: 1, namespace: NS });
      assert.deepEqual(b, { previousReplicas: 1, replicas: 2, namespace: NS }, 'the second read what the first wrote');
      const seq = c.kube.requests.filter((r) => r.subresource === 'scale').map((r) => r.method);
      assert.deepEqual(seq, ['GET', 'PATCH', 'GET', 'PATCH']);
    });
  });

  describe('wait', () => {
    /** A wait input for Deployment web. */
    const web = (until: Record<string, unknown>) => ({ kind: 'Deployment', name: 'web', ...until });

    it('waits for Available through a watch while the controller rolls out, without polling', async () => {
      c.kube.controller.enable({ mode: 'complete', delayMs: 300 });
      c.kube.seed(deployment('web', 2));
      const out = (await c.run('wait', web({ condition: 'Available', timeoutSeconds: 10 }))) as any;
      assert.equal(out.met, true);
      assert.match(out.observed, /Available=True/);
      const gets = c.kube.requests.filter((r) => r.method === 'GET' && r.name === 'web');
      assert.ok(gets.length <= 2, `${gets.length} GETs: a watch, not a polling loop`);
      assert.ok(c.kube.requests.some((r) => r.query.watch === 'true' && r.query.fieldSelector === 'metadata.name=web'));
    });

    it('RolloutComplete follows a restart to the end, and a rollout past its deadline fails at once', async () => {
      c.kube.controller.enable({ mode: 'complete', delayMs: 200 });
      c.kube.seed(deployment('web', 2));
      await c.run('wait', web({ condition: 'RolloutComplete', timeoutSeconds: 10 }));
      await c.run('restart', { kind: 'Deployment', name: 'web' });
      const out = (await c.run('wait', web({ condition: 'RolloutComplete', timeoutSeconds: 10 }))) as any;
      assert.match(out.observed, /updated 2, available 2/);
      c.kube.controller.setMode('fail', { kind: 'Deployment', namespace: NS, name: 'web' });
      await c.run('restart', { kind: 'Deployment', name: 'web' });
      const started = Date.now();
      const err = await c.failure('wait', web({ condition: 'RolloutComplete', timeoutSeconds: 30 }));
      assert.equal(err.type, 'timeout');
      assert.match(err.message, /exceeded the progress deadline/);
      assert.ok(Date.now() - started < 5000);
    });

    it('times out naming the last observed state; path/equals and Deleted conditions; a dry run looks once', async () => {
      c.kube.controller.enable({ mode: 'stuck', delayMs: 50 });
      c.kube.seed(deployment('web', 2));
      const err = await c.failure('wait', web({ condition: 'Available', timeoutSeconds: 1 }));
      assert.equal(err.type, 'timeout');
      assert.match(err.message, /did not become Available=True within 1s; last observed: /);
      const dry = (await c.dry('wait', web({ condition: 'Available' }))) as any;
      assert.equal(dry.met, false);
      setTimeout(
        () => c.kube.setStatus('apps/v1', 'Deployment', NS, 'web', (s: any) => ({ ...s, readyReplicas: 2 })),
        200,
      );
      const byPath = (await c.run('wait', web({ path: 'status.readyReplicas', equals: 2, timeoutSeconds: 5 }))) as any;
      assert.equal(byPath.observed, 'status.readyReplicas = 2');
      setTimeout(() => c.kube.remove('apps/v1', 'Deployment', NS, 'web'), 200);
      assert.equal(
        ((await c.run('wait', web({ condition: 'Deleted', timeoutSeconds: 5 }))) as any).observed,
        'deleted',
      );
    });

    it('a watch the API server refuses fails at once with forbidden naming watch, instead of polling until the timeout', async () => {
      c.kube.seed(configMap('cm', { a: '1' }));
      c.kube.deny('watch', 'configmaps');
      const started = Date.now();
      const err = await c.failure('wait', {
        kind: 'ConfigMap',
        name: 'cm',
        path: 'data.a',
        equals: '2',
        timeoutSeconds: 20,
      });
      assert.deepEqual([err.type, err.retryable], ['forbidden', false], err.message);
      assert.match(err.message, /^WATCH ConfigMap default\/cm: .*cannot watch resource "configmaps"/);
      assert.match(err.message, /may not watch configmaps; grant it in deploy\/base\/rbac\/rbac\.yaml/);
      assert.equal(err.details.verb, 'watch');
      assert.ok(Date.now() - started < 3000, 'no retry loop until the timeout');
      assert.equal(c.kube.requests.filter((r) => r.query.watch === 'true').length, 1, 'one watch, refused');
    });

    it('a 410 Gone and a server-side close are a resync, not a failure', async () => {
      c.kube.seed(configMap('cm', { a: '1' }));
      c.kube.seed(configMap('other', { a: '1' }));
      const log: LogLine[] = [];
      const waiting = c.run(
        'wait',
        { kind: 'ConfigMap', name: 'cm', path: 'data.a', equals: '2', timeoutSeconds: 20 },
        { log },
      );
      await waitFor(() => c.kube.requests.some((r) => r.query.watch === 'true'), 'the first watch');
      c.kube.closeStreams();
      await waitFor(
        () => c.kube.requests.filter((r) => r.query.watch === 'true').length >= 2,
        'a second watch after the server closed the first',
      );
      // Changes the watch is behind on, then compaction: the watch from the old resourceVersion expires with 410.
      c.kube.seed(configMap('other', { a: '2' }));
      c.kube.compact();
      c.kube.closeStreams();
      await waitFor(() => c.kube.requests.filter((r) => r.query.watch === 'true').length >= 3, 'a third watch');
      c.kube.seed(configMap('cm', { a: '2' }));
      const out = (await waiting) as any;
      assert.equal(out.observed, 'data.a = "2"');
      assert.ok(log.some((l) => /resync/.test(l.message)));
    });

    it('a status condition is not met while it describes an older generation (kubectl wait)', async () => {
      c.kube.seed(deployment('web', 0));
      const d = deploy();
      c.kube.setStatus('apps/v1', 'Deployment', NS, 'web', {
        observedGeneration: d.metadata.generation,
        replicas: 0,
        conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
      });
      await c.run('scale', { kind: 'Deployment', name: 'web', replicas: 3 });
      assert.ok(
        deploy().metadata.generation > deploy().status.observedGeneration,
        'the controller has not seen the new spec',
      );
      const err = await c.failure('wait', web({ condition: 'Available', timeoutSeconds: 1 }));
      assert.equal(err.type, 'timeout', 'the stale Available=True does not count');
      assert.match(err.message, /not observed yet/);
      const dry = (await c.dry('wait', web({ condition: 'Available' }))) as any;
      assert.equal(dry.met, false);
      // A condition's own observedGeneration wins over the status's.
      c.kube.setStatus('apps/v1', 'Deployment', NS, 'web', (s: any) => ({
        ...s,
        conditions: [
          {
            type: 'Available',
            status: 'True',
            reason: 'MinimumReplicasAvailable',
            observedGeneration: deploy().metadata.generation,
          },
        ],
      }));
      const ok = (await c.run('wait', web({ condition: 'available', timeoutSeconds: 2 }))) as any;
      assert.equal(
        ok.met,
        true,
        'met once the condition is about the current generation (types compare case-insensitively, as kubectl)',
      );
    });

    it('RolloutComplete follows kubectl rollout status: a partitioned StatefulSet, OnDelete refused, a kind without rollout refused', async () => {
      const sts = (name: string, updateStrategy: Record<string, unknown>) =>
        ({
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          metadata: { name, namespace: NS },
          spec: {
            replicas: 3,
            serviceName: name,
            updateStrategy,
            selector: { matchLabels: { app: name } },
            template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'db', image: 'db' }] } },
          },
        }) as KObj;
      c.kube.seed(sts('db', { type: 'RollingUpdate', rollingUpdate: { partition: 2 } }));
      const gen = (c.kube.get('apps/v1', 'StatefulSet', NS, 'db') as any).metadata.generation;
      const status = (updated: number) => ({
        observedGeneration: gen,
        replicas: 3,
        readyReplicas: 3,
        currentReplicas: 3 - updated,
        updatedReplicas: updated,
        currentRevision: 'db-1',
        updateRevision: 'db-2',
      });
      c.kube.setStatus('apps/v1', 'StatefulSet', NS, 'db', status(0));
      assert.equal(
        ((await c.dry('wait', { kind: 'StatefulSet', name: 'db', condition: 'RolloutComplete' })) as any).met,
        false,
        'no pod past the partition updated yet',
      );
      c.kube.setStatus('apps/v1', 'StatefulSet', NS, 'db', status(1));
      const done = (await c.run('wait', {
        kind: 'StatefulSet',
        name: 'db',
        condition: 'RolloutComplete',
        timeoutSeconds: 2,
      })) as any;
      assert.match(
        done.observed,
        /updated 1 \(partition 2\)/,
        'replicas - partition pods updated: complete, though the revisions differ',
      );
      c.kube.seed(sts('legacy', { type: 'OnDelete' }));
      for (const [kind, name] of [
        ['StatefulSet', 'legacy'],
        ['Pod', 'web-1'],
        ['ConfigMap', 'cm'],
      ]) {
        const started = Date.now();
        const err = await c.failure('wait', { kind, name, condition: 'RolloutComplete', timeoutSeconds: 30 });
        assert.deepEqual([err.type, err.retryable], ['validation_error', false], `${kind}: ${err.message}`);
        assert.match(
          err.message,
          kind === 'StatefulSet'
            ? /rollout status is only available for RollingUpdate strategy type/
            : /has no rollout/,
        );
        assert.ok(Date.now() - started < 2000);
      }
    });

    it('stops at once when the step is cancelled', async () => {
      c.kube.seed(deployment('web', 2));
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('cancelled by test')), 200);
      const started = Date.now();
      const err = await c.failure(
        'wait',
        { kind: 'Deployment', name: 'web', condition: 'Available', timeoutSeconds: 30 },
        { signal: controller.signal },
      );
      assert.equal(err.type, 'cancelled');
      assert.ok(Date.now() - started < 2000);
    });
  });

  describe('apply', () => {
    const cm = (data: Record<string, string>) => ({
      manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data },
    });

    it('creates with server-side apply, records the absence, and its compensation deletes what it created', async () => {
      const out = (await c.run('apply', cm({ mode: 'new' }))) as any;
      assert.equal(out.created, true);
      assert.equal(out.previous, null);
      const req = writes().at(-1)!;
      assert.deepEqual([req.contentType, req.fieldManager], ['application/apply-patch+yaml', 'runtime-agent']);
      const comp = c.adapter.actions.apply.compensate!(cm({ mode: 'new' }), out)!;
      assert.deepEqual(comp, {
        action: 'restore',
        with: { apiVersion: 'v1', kind: 'ConfigMap', namespace: NS, name: 'settings', previous: null },
      });
      assert.deepEqual(await c.run('restore', comp.with), { action: 'deleted' });
      assert.equal(c.kube.get('v1', 'ConfigMap', NS, 'settings'), undefined);
    });

    it('updates, records the object as it was, and its compensation puts it back', async () => {
      c.kube.seed(configMap('settings', { mode: 'old' }, { labels: { keep: 'me' } }));
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
      await core.createNamespacedConfigMap({
        namespace: NS,
        fieldManager: 'kubectl-create',
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { mode: 'old' } },
      });
      const rv = c.kube.resourceVersion();
      const out = (await c.dry('apply', { ...cm({ mode: 'new' }), force: true })) as any;
      assert.equal(out.object.data.mode, 'new', 'what the object would become');
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal((c.kube.get('v1', 'ConfigMap', NS, 'settings') as any).data.mode, 'old');
      const err = await c.failure('apply', cm({ mode: 'mine' }));
      assert.deepEqual(
        [err.type, err.retryable],
        ['conflict', false],
        'a field-ownership conflict does not go away by retrying',
      );
      assert.match(err.message, /Apply failed with 1 conflict: conflict with "kubectl-create"/);
      assert.match(err.message, /set force: true to take them over/);
      assert.equal((c.kube.get('v1', 'ConfigMap', NS, 'settings') as any).data.mode, 'old');
    });
  });

  describe('patch', () => {
    it('patches with each patch type and records the previous object for its compensation', async () => {
      c.kube.seed(deployment('web', 2));
      await c.run('patch', {
        kind: 'Deployment',
        name: 'web',
        type: 'merge',
        patch: { metadata: { labels: { tier: 'front' } } },
      });
      assert.equal(deploy().metadata.labels.tier, 'front');
      assert.equal(writes().at(-1)!.contentType, 'application/merge-patch+json');
      await c.run('patch', {
        kind: 'Deployment',
        name: 'web',
        patch: { spec: { template: { spec: { containers: [{ name: 'app', image: 'registry.local/app:2.0' }] } } } },
      });
      assert.equal(deploy().spec.template.spec.containers[0].image, 'registry.local/app:2.0');
      assert.equal(writes().at(-1)!.contentType, 'application/strategic-merge-patch+json');
      const out = (await c.run('patch', {
        kind: 'Deployment',
        name: 'web',
        type: 'json',
        patch: [{ op: 'replace', path: '/spec/replicas', value: 5 }],
      })) as any;
      assert.equal(deploy().spec.replicas, 5);
      assert.equal(writes().at(-1)!.contentType, 'application/json-patch+json');
      assert.equal(out.previous.spec.replicas, 2);
      const comp = c.adapter.actions.patch.compensate!({} as any, out)!;
      await c.run('restore', comp.with);
      assert.equal(deploy().spec.replicas, 2);
      assert.equal(
        deploy().spec.template.spec.containers[0].image,
        'registry.local/app:2.0',
        'restore puts back the object as the patch found it',
      );
    });

    it('a dry run changes nothing, a mismatched patch is a validation error, a missing object not_found', async () => {
      c.kube.seed(deployment('web', 2));
      const rv = c.kube.resourceVersion();
      const out = (await c.dry('patch', {
        kind: 'Deployment',
        name: 'web',
        type: 'json',
        patch: [{ op: 'replace', path: '/spec/replicas', value: 7 }],
      })) as any;
      assert.equal(out.object.spec.replicas, 7);
      assert.equal(c.kube.resourceVersion(), rv);
      assert.equal(writes().at(-1)!.dryRun, true);
      assert.equal(
        (await c.failure('patch', { kind: 'Deployment', name: 'web', type: 'json', patch: { spec: {} } })).type,
        'validation_error',
      );
      assert.equal(
        (await c.failure('patch', { kind: 'Deployment', name: 'nope', patch: { spec: {} } })).type,
        'not_found',
      );
      const invalid = await c.failure('patch', {
        kind: 'Deployment',
        name: 'web',
        type: 'merge',
        patch: { spec: { replicas: -1 } },
      });
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
      assert.deepEqual(await c.run('delete', { kind: 'Deployment', name: 'web', ignoreNotFound: true }), {
        deleted: false,
        previous: null,
        recorded: false,
        target: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: NS, name: 'web' },
      });
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

  describe('restore', () => {
    it('a re-created object leaves behind what tied it to its old incarnation or what the cluster allocated for it', () => {
      const owner = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'u1', controller: true }];
      const p = recreatable({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p', ownerReferences: owner, labels: { a: 'b' } },
        spec: { nodeName: 'node-1', containers: [] },
      });
      assert.deepEqual(p, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p', labels: { a: 'b' } },
        spec: { containers: [] },
      });
      const uidLabels = {
        'controller-uid': 'u2',
        'batch.kubernetes.io/controller-uid': 'u2',
        'job-name': 'j',
        'batch.kubernetes.io/job-name': 'j',
      };
      const job = recreatable({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'j', labels: { ...uidLabels } },
        spec: {
          selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u2' } },
          template: { metadata: { labels: { ...uidLabels } }, spec: {} },
        },
      });
      assert.deepEqual(job.spec, {
        template: { metadata: { labels: { 'job-name': 'j', 'batch.kubernetes.io/job-name': 'j' } }, spec: {} },
      });
      assert.deepEqual(job.metadata!.labels, { 'job-name': 'j', 'batch.kubernetes.io/job-name': 'j' });
      const manual = recreatable({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'm' },
        spec: { manualSelector: true, selector: { matchLabels: { x: 'y' } } },
      });
      assert.deepEqual(manual.spec!.selector, { matchLabels: { x: 'y' } }, 'a selector the user chose stays');
      const svc = recreatable({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 's' },
        spec: {
          type: 'LoadBalancer',
          clusterIP: '10.0.0.7',
          clusterIPs: ['10.0.0.7'],
          healthCheckNodePort: 31000,
          externalTrafficPolicy: 'Local',
          ports: [{ port: 80, nodePort: 30080 }],
        },
      });
      assert.deepEqual(svc.spec, { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] });
      const headless = recreatable({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'h' },
        spec: { clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 5432 }] },
      });
      assert.equal(headless.spec!.clusterIP, 'None', 'a headless Service stays headless');
      const pvc = recreatable({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'data' },
        spec: { volumeName: 'pv-1', resources: { requests: { storage: '1Gi' } } },
      });
      assert.deepEqual(pvc.spec, { resources: { requests: { storage: '1Gi' } } });
      const knative = recreatable({
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Service',
        metadata: { name: 'k' },
        spec: { clusterIP: 'keep-me' },
      });
      assert.equal(knative.spec!.clusterIP, 'keep-me', 'only the built-in kinds are touched');
    });

    it('waits for an object that is still being deleted, then re-creates it as recorded', async () => {
      c.kube.seed(configMap('held', { a: '1' }, { finalizers: ['example.com/hold'] }));
      const out = (await c.run('delete', { kind: 'ConfigMap', name: 'held', record: true })) as any;
      assert.ok((c.kube.get('v1', 'ConfigMap', NS, 'held') as any).metadata.deletionTimestamp, 'a finalizer holds it');
      const comp = c.adapter.actions.delete.compensate!({ kind: 'ConfigMap', name: 'held', record: true }, out)!;
      const dry = (await c.dry('restore', comp.with)) as any;
      assert.deepEqual(dry, { action: 'created' }, 'a dry run does not wait');
      const log: LogLine[] = [];
      let settled = false;
      const restoring = c.run('restore', comp.with, { log }).finally(() => (settled = true));
      await waitFor(
        () => c.kube.requests.some((r) => r.query.watch === 'true' && r.path.includes('configmaps')),
        'restore to watch the object go',
      );
      assert.equal(settled, false, 'it waits');
      assert.ok(
        log.some((l) => /is being deleted .*finalizers: example\.com\/hold.*waiting until it is gone/.test(l.message)),
      );
      const core = c.kube.kubeConfig().makeApiClient(CoreV1Api);
      await core.patchNamespacedConfigMap({
        namespace: NS,
        name: 'held',
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      });
      assert.deepEqual(await restoring, { action: 'created' });
      const back = c.kube.get('v1', 'ConfigMap', NS, 'held') as any;
      assert.deepEqual([back.data, back.metadata.deletionTimestamp], [{ a: '1' }, undefined]);
    });

    it('a waiting restore stops when its step is cancelled', async () => {
      c.kube.seed(configMap('held', { a: '1' }, { finalizers: ['example.com/hold'] }));
      const out = (await c.run('delete', { kind: 'ConfigMap', name: 'held', record: true })) as any;
      const comp = c.adapter.actions.delete.compensate!({ kind: 'ConfigMap', name: 'held', record: true }, out)!;
      const controller = new AbortController();
      const failing = c.failure('restore', comp.with, { signal: controller.signal });
      await waitFor(() => c.kube.requests.some((r) => r.query.watch === 'true'), 'restore to wait');
      controller.abort(new Error('step timed out'));
      assert.equal((await failing).type, 'cancelled');
    });

    it('re-creates a bare Pod without its node once its graceful deletion is over', async () => {
      c.kube.seed({
        ...pod('bare', { app: 'bare' }, ['app'], false),
        spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'registry.local/app:1.0' }] },
      } as KObj);
      const out = (await c.run('delete', { kind: 'Pod', name: 'bare', record: true })) as any;
      assert.equal(out.previous.spec.nodeName, 'node-1', 'the record is the pod as it was');
      const comp = c.adapter.actions.delete.compensate!({ kind: 'Pod', name: 'bare', record: true }, out)!;
      assert.deepEqual(await c.run('restore', comp.with), { action: 'created' });
      const created = c.kube.requests
        .filter((r) => r.method === 'POST' && r.path === '/api/v1/namespaces/default/pods')
        .at(-1)!;
      assert.equal(JSON.parse(String(created.body)).spec.nodeName, undefined, 'the scheduler places it anew');
    });

    it('delete with record refuses a Pod its controller owns (the controller re-creates it), and deletes nothing', async () => {
      c.kube.seed({
        ...pod('web-abc', { app: 'web' }, ['app'], false),
        metadata: {
          name: 'web-abc',
          namespace: NS,
          labels: { app: 'web' },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: 'web-7d4b9c',
              uid: '0b1c5a1e-0000-4000-8000-000000000001',
              controller: true,
            },
          ],
        },
      } as KObj);
      const err = await c.failure('delete', { kind: 'Pod', name: 'web-abc', record: true });
      assert.deepEqual([err.type, err.retryable], ['validation_error', false]);
      assert.match(err.message, /managed by ReplicaSet web-7d4b9c, which re-creates it/);
      assert.ok(c.kube.get('v1', 'Pod', NS, 'web-abc'));
      assert.ok(!c.kube.requests.some((r) => r.method === 'DELETE'));
    });
  });

  describe('forbidden', () => {
    it('a 403 that is not an RBAC denial (admission, a terminating namespace) keeps its own message, without the RBAC hint', async () => {
      c.kube.seed(deployment('web', 2));
      for (const message of [
        'admission webhook "policy.example.com" denied the request: images must come from registry.local',
        'deployments.apps "web" is forbidden: unable to create new content in namespace default because it is being terminated',
      ]) {
        c.kube.failNext({ method: 'PATCH' }, { code: 403, message });
        const err = await c.failure('patch', {
          kind: 'Deployment',
          name: 'web',
          type: 'merge',
          patch: { metadata: { labels: { a: 'b' } } },
        });
        assert.deepEqual([err.type, err.retryable], ['forbidden', false]);
        assert.ok(err.message.endsWith(message), err.message);
        assert.ok(!/rbac/i.test(err.message), 'no RBAC hint');
        assert.equal(err.details.verb, undefined);
      }
    });
  });

  describe("every action maps the API server's failures", () => {
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
    const expected = [401, 403, 404, 422, 429, 500, 503].map((code) => [code, ...STATUS_ERRORS[code]] as const);
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
          assert.deepEqual(
            [err.type, err.retryable],
            [type, retryable],
            `${action} ${code}: ${err.type} ${err.message}`,
          );
          assert.ok(!/at .*\.ts:\d+/.test(err.message), 'no stack in the message');
        }
      });
    }
  });
});

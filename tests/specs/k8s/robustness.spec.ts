/**
 * The k8s adapter when things go wrong between it and the API server: an answer lost after the
 * write landed (the retry must not record the changed object), a request that hangs (cancel must
 * abort it on the wire), a health check that would hang, a server that is not the API server
 * (a proxy's 503 page, a 401 without body, a certificate the agent does not trust), and a
 * kubeconfig that does not parse (its content must not leak).
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepContext } from '../../../adapters/contract.js';
import { KubeConnection } from '../../../adapters/k8s/connection.js';
import { createK8sAdapter } from '../../../adapters/k8s/index.js';
import { RESTARTED_AT } from '../../../adapters/k8s/restart.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { stepContext } from '../support/step-context.js';
import { waitFor } from '../support/wait.js';
import { configMap, deployment, NS, pod, startProxy, useCluster, type LogLine, type KubeProxy } from './k8s-support.js';

const NO_SA = '/nonexistent-service-account';
const NO_KUBECONFIG = '/nonexistent-kubeconfig';

const ctx = (opts: { signal?: AbortSignal; attempt?: number } = {}): StepContext =>
  stepContext({ ...opts, executionId: 'x', step: 's' }).ctx;

describe('k8s adapter robustness', function () {
  this.timeout(20_000);

  describe('a retried write whose first answer was lost', () => {
    const c = useCluster({ proxy: true });
    const attempt = (n: number, log?: LogLine[]) => ({ attempt: n, executionId: 'exec-1', step: 'change', log });
    const patches = (resource: string) =>
      c.kube.requests.filter((r) => r.method === 'PATCH' && r.resource === resource);

    it('patch: attempt 2 records the object as attempt 1 found it, so the compensation restores the original', async () => {
      c.kube.seed(configMap('settings', { mode: 'old' }));
      const input = { kind: 'ConfigMap', name: 'settings', type: 'merge', patch: { data: { mode: 'new' } } };
      c.proxy!.loseAnswer((m) => m === 'PATCH');
      const lost = await c.failure('patch', input, attempt(1));
      assert.deepEqual(
        [lost.type, lost.retryable, lost.details.code],
        ['adapter_error', true, 503],
        'a proxy 503 page maps by its status code',
      );
      assert.equal((c.kube.get('v1', 'ConfigMap', NS, 'settings') as any).data.mode, 'new', 'the write landed');
      const log: LogLine[] = [];
      const out = (await c.run('patch', input, attempt(2, log))) as any;
      assert.deepEqual(out.previous.data, { mode: 'old' }, 'not the already-changed object');
      assert.ok(log.some((l) => /using what attempt 1 recorded/.test(l.message)));
      const comp = c.adapter.actions.patch.compensate!(input as any, out)!;
      await c.run('restore', comp.with);
      assert.equal((c.kube.get('v1', 'ConfigMap', NS, 'settings') as any).data.mode, 'old');
      // The step succeeded: what it remembered is gone, and another attempt 2 of it records afresh.
      const again = (await c.run('patch', { ...input, patch: { data: { mode: 'third' } } }, attempt(2))) as any;
      assert.deepEqual(again.previous.data, { mode: 'old' });
      const other = (await c.run(
        'patch',
        { ...input, patch: { data: { mode: 'fourth' } } },
        { attempt: 2, executionId: 'exec-2', step: 'change' },
      )) as any;
      assert.deepEqual(other.previous.data, { mode: 'third' }, "another execution never sees this one's record");
    });

    it('apply: attempt 2 still knows it created the object, so the compensation deletes it', async () => {
      const input = {
        manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fresh' }, data: { a: '1' } },
      };
      c.proxy!.loseAnswer((m) => m === 'PATCH');
      await c.failure('apply', input, attempt(1));
      assert.ok(c.kube.get('v1', 'ConfigMap', NS, 'fresh'), 'the apply landed');
      const out = (await c.run('apply', input, attempt(2))) as any;
      assert.deepEqual([out.created, out.previous], [true, null]);
      assert.deepEqual(await c.run('restore', c.adapter.actions.apply.compensate!(input as any, out)!.with), {
        action: 'deleted',
      });
    });

    it('scale: attempt 2 reports and compensates to the replica count attempt 1 found', async () => {
      c.kube.seed(deployment('web', 3));
      c.proxy!.loseAnswer((m, p) => m === 'PATCH' && p.includes('/scale'));
      await c.failure('scale', { kind: 'Deployment', name: 'web', replicas: 0 }, attempt(1));
      assert.equal((c.kube.get('apps/v1', 'Deployment', NS, 'web') as any).spec.replicas, 0, 'the scale landed');
      const out = (await c.run('scale', { kind: 'Deployment', name: 'web', replicas: 0 }, attempt(2))) as any;
      assert.deepEqual(out, { previousReplicas: 3, replicas: 0, namespace: NS });
    });

    it('restart: attempt 2 finds the stamp attempt 1 wrote and does not restart again', async () => {
      c.kube.seed(deployment('web', 2, { annotations: { [RESTARTED_AT]: '2025-01-01T00:00:00Z' } }));
      c.proxy!.loseAnswer((m) => m === 'PATCH');
      await c.failure('restart', { kind: 'Deployment', name: 'web' }, attempt(1));
      const stamp = (c.kube.get('apps/v1', 'Deployment', NS, 'web') as any).spec.template.metadata.annotations[
        RESTARTED_AT
      ];
      const generation = (c.kube.get('apps/v1', 'Deployment', NS, 'web') as any).metadata.generation;
      const out = (await c.run('restart', { kind: 'Deployment', name: 'web' }, attempt(2))) as any;
      assert.deepEqual(out, {
        previousRestartedAt: '2025-01-01T00:00:00Z',
        restartedAt: stamp,
        previousGeneration: generation - 1,
        generation,
      });
      assert.equal(patches('deployments').length, 1, 'one rollout, not two');
      // A retry whose first patch never reached the server restarts for real.
      c.kube.failNext({ method: 'PATCH' }, { code: 503 });
      await c.failure(
        'restart',
        { kind: 'Deployment', name: 'web' },
        { attempt: 1, executionId: 'exec-2', step: 'restart' },
      );
      const second = (await c.run(
        'restart',
        { kind: 'Deployment', name: 'web' },
        { attempt: 2, executionId: 'exec-2', step: 'restart' },
      )) as any;
      assert.equal(second.previousRestartedAt, stamp);
      assert.notEqual(second.restartedAt, stamp);
    });

    it('delete with record: attempt 2 finds the object gone, succeeds, and keeps the copy for the compensation', async () => {
      c.kube.seed(configMap('old', { a: '1' }));
      c.proxy!.loseAnswer((m) => m === 'DELETE');
      await c.failure('delete', { kind: 'ConfigMap', name: 'old', record: true }, attempt(1));
      assert.equal(c.kube.get('v1', 'ConfigMap', NS, 'old'), undefined, 'the delete landed');
      const out = (await c.run('delete', { kind: 'ConfigMap', name: 'old', record: true }, attempt(2))) as any;
      assert.deepEqual([out.deleted, out.recorded, out.previous.data], [true, true, { a: '1' }]);
      await c.run(
        'restore',
        c.adapter.actions.delete.compensate!({ kind: 'ConfigMap', name: 'old', record: true }, out)!.with,
      );
      assert.deepEqual((c.kube.get('v1', 'ConfigMap', NS, 'old') as any).data, { a: '1' });
    });
  });

  describe('cancel', () => {
    const c = useCluster({ proxy: true });

    it('aborts a write in flight on the wire, so the lock is not released while it could still land', async () => {
      c.kube.seed(configMap('cm', { a: '1' }));
      c.proxy!.hang((m) => m === 'PATCH');
      const controller = new AbortController();
      const failing = c.failure(
        'patch',
        { kind: 'ConfigMap', name: 'cm', type: 'merge', patch: { data: { a: '2' } } },
        { signal: controller.signal },
      );
      await waitFor(() => c.proxy!.held === 1, 'the patch to be in flight');
      controller.abort(new Error('cancelled by test'));
      const err = await failing;
      assert.equal(err.type, 'cancelled');
      await waitFor(() => c.proxy!.abandoned === 1, 'the client to close the request');
      c.proxy!.hang(undefined);
      const out = (await c.run('patch', {
        kind: 'ConfigMap',
        name: 'cm',
        type: 'merge',
        patch: { data: { a: '3' } },
      })) as any;
      assert.equal(out.object.data.a, '3', 'the next writer got the lock');
    });

    it('aborts a scale, a watch before its response headers, and log reads', async () => {
      c.kube.seed(deployment('web', 2));
      c.kube.seed(pod('web-1', { app: 'web' }, ['app'], false));
      c.kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'x' }]);
      const cases: Array<[string, Record<string, unknown>, (m: string, p: string) => boolean]> = [
        ['scale', { kind: 'Deployment', name: 'web', replicas: 5 }, (m, p) => m === 'PATCH' && p.includes('/scale')],
        [
          'wait',
          { kind: 'Deployment', name: 'web', condition: 'Available', timeoutSeconds: 60 },
          (_m, p) => p.includes('watch=true'),
        ],
        ['logs', { name: 'web-1' }, (_m, p) => p.includes('/log')],
      ];
      for (const [action, input, match] of cases) {
        const before = c.proxy!.held;
        c.proxy!.hang(match);
        const controller = new AbortController();
        const failing = c.failure(action, input, { signal: controller.signal });
        await waitFor(() => c.proxy!.held === before + 1, `${action} to be in flight`);
        controller.abort(new Error('cancelled by test'));
        assert.equal((await failing).type, 'cancelled', action);
        await waitFor(() => c.proxy!.abandoned === before + 1, `${action}: the client to close the request`);
        c.proxy!.hang(undefined);
      }
      assert.equal((c.kube.get('apps/v1', 'Deployment', NS, 'web') as any).spec.replicas, 2);
    });

    it('no action leaves a listener on a signal shared by several steps', async () => {
      c.kube.seed(deployment('web', 2));
      c.kube.seed(pod('web-1', { app: 'web' }, ['app'], false));
      c.kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'x' }]);
      c.kube.seed(configMap('cm', { a: '1' }));
      const shared = new AbortController().signal;
      const runs: Array<[string, Record<string, unknown>]> = [
        ['get', { kind: 'Deployment', name: 'web' }],
        ['get', { kind: 'Deployment', name: 'nope', ignoreNotFound: true }],
        ['logs', { name: 'web-1' }],
        ['events', { kind: 'Deployment', name: 'web' }],
        ['restart', { kind: 'Deployment', name: 'web' }],
        ['scale', { kind: 'Deployment', name: 'web', replicas: 3 }],
        [
          'apply',
          { manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied' }, data: { b: '1' } } },
        ],
        [
          'patch',
          { kind: 'ConfigMap', name: 'cm', type: 'json', patch: [{ op: 'replace', path: '/data/a', value: '2' }] },
        ],
        ['wait', { kind: 'ConfigMap', name: 'cm', path: 'data.a', equals: '2', timeoutSeconds: 5 }],
        ['wait', { kind: 'ConfigMap', name: 'cm', path: 'data.a', equals: '3', timeoutSeconds: 1 }],
        ['delete', { kind: 'ConfigMap', name: 'applied', record: true }],
        ['restore', { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', previous: null }],
        ['get', { kind: 'Deployment', name: 'gone' }],
      ];
      for (const [action, input] of runs) {
        await c.run(action, input, { signal: shared }).catch(() => {});
        assert.equal(
          getEventListeners(shared, 'abort').length,
          0,
          `${action} ${JSON.stringify(input)} left a listener`,
        );
      }
    });
  });

  describe('health', () => {
    let kube: FakeKube;
    let proxy: KubeProxy;
    beforeEach(async () => {
      kube = await startFakeKube();
      proxy = await startProxy(kube.url);
    });
    afterEach(async () => {
      await proxy.close();
      await kube.close();
    });

    it('answers from its last result at once and refreshes in the background, so liveness never waits on the API server', async () => {
      const conn = new KubeConnection({ serviceAccountDir: NO_SA, kubeconfig: NO_KUBECONFIG }, { healthTtlMs: 0 });
      conn.init({ server: proxy.url, token: kube.token });
      assert.equal((await conn.health()).ready, true);
      proxy.hang(() => true);
      const started = Date.now();
      const cached = await conn.health();
      assert.equal(cached.ready, true, 'the last answer');
      assert.ok(Date.now() - started < 500, `answered in ${Date.now() - started} ms while the API server hangs`);
      const stale = await waitFor(async () => {
        const h = await conn.health();
        return h.ready ? undefined : h;
      }, 'the background refresh to see the hang');
      assert.match(stale.message!, /does not answer within 2s/);
    });

    it('the very first check waits at most 2 s', async () => {
      proxy.hang(() => true);
      const conn = new KubeConnection({ serviceAccountDir: NO_SA, kubeconfig: NO_KUBECONFIG });
      conn.init({ server: proxy.url, token: kube.token });
      const started = Date.now();
      const h = await conn.health();
      assert.equal(h.ready, false);
      assert.ok(Date.now() - started < 3000);
    });
  });

  describe('servers that answer unlike the API server', () => {
    let server: Server;
    let mode: 'html-503' | 'no-body-401' = 'html-503';
    let url: string;
    const discovery = JSON.stringify({
      kind: 'APIResourceList',
      groupVersion: 'v1',
      resources: [{ name: 'configmaps', namespaced: true, kind: 'ConfigMap', verbs: ['get', 'patch'] }],
    });
    const cm = JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', namespace: 'default', resourceVersion: '1' },
      data: { a: '1' },
    });
    before(async () => {
      server = createServer((req, res) => {
        if (req.url === '/api/v1') return res.writeHead(200, { 'content-type': 'application/json' }).end(discovery);
        if (mode === 'no-body-401') return res.writeHead(401).end();
        if (req.method === 'GET') return res.writeHead(200, { 'content-type': 'application/json' }).end(cm);
        res.writeHead(503, { 'content-type': 'text/html' }).end('<html><body>503 Service Unavailable</body></html>');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => {
      server.close();
      server.closeAllConnections();
    });

    it('a proxy 503 page maps by its status code for every patch type; a 401 without a body still says what to check', async () => {
      const adapter = createK8sAdapter({ serviceAccountDir: NO_SA, kubeconfig: NO_KUBECONFIG });
      await adapter.init!({ server: url, token: 't' });
      mode = 'html-503';
      for (const type of ['json', 'merge', 'strategic']) {
        const err = await adapter.actions.patch
          .run(ctx(), { kind: 'ConfigMap', name: 'c', type, patch: type === 'json' ? [] : {} })
          .then(
            () => assert.fail('expected a failure'),
            (e) => e,
          );
        assert.deepEqual(
          [err.type, err.retryable, err.details.code],
          ['adapter_error', true, 503],
          `${type}: ${err.message}`,
        );
        assert.match(err.message, /the API server answered 503: <html>/);
      }
      mode = 'no-body-401';
      const err = await adapter.actions.get.run(ctx(), { kind: 'ConfigMap', name: 'c' }).then(
        () => assert.fail('expected a failure'),
        (e) => e,
      );
      assert.deepEqual([err.type, err.retryable], ['unauthorized', false]);
      assert.match(
        err.message,
        /rejected the agent's credentials \(401 Unauthorized, no details given\); check the service-account token/,
      );
    });

    it('a certificate the agent does not trust is a non-retryable adapter_error saying which CA to give', async () => {
      const kube = await startFakeKube({ tls: true });
      try {
        const adapter = createK8sAdapter({ serviceAccountDir: NO_SA, kubeconfig: NO_KUBECONFIG });
        await adapter.init!({ server: kube.url, token: kube.token });
        const err = await adapter.actions.get.run(ctx(), { kind: 'ConfigMap', name: 'c' }).then(
          () => assert.fail('expected a failure'),
          (e) => e,
        );
        assert.deepEqual([err.type, err.retryable], ['adapter_error', false], err.message);
        assert.match(
          err.message,
          /TLS verification failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)/,
        );
        assert.match(err.message, /give it the cluster's CA/);
      } finally {
        await kube.close();
      }
    });
  });

  describe('a kubeconfig that does not parse', () => {
    it('is reported by error name and position, never by its content', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ra-kc-'));
      try {
        const file = join(dir, 'kubeconfig');
        writeFileSync(
          file,
          'apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: SUPER-SECRET-TOKEN-abc123\n    foo: : bar\n',
        );
        const adapter = createK8sAdapter({ serviceAccountDir: NO_SA, kubeconfig: file });
        const health = await adapter.health!();
        assert.equal(health.ready, false);
        assert.match(health.message!, /YAMLException at line 7, column \d+ \(the file's content is not shown\)/);
        assert.ok(!JSON.stringify(health).includes('SUPER-SECRET'), JSON.stringify(health));
        const err = await adapter.actions.get.run(ctx(), { kind: 'ConfigMap', name: 'c' }).then(
          () => assert.fail('expected a failure'),
          (e) => e,
        );
        assert.equal(err.type, 'adapter_error');
        assert.ok(!err.message.includes('SUPER-SECRET'), err.message);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('a token file is read again as it rotates, and error messages never repeat a bearer token', async () => {
    const { startFakeKube } = await import('../support/fake-kube/index.js');
    const { createK8sAdapter } = await import('../../../adapters/k8s/index.js');
    const { scrubCredentials } = await import('../../../adapters/k8s/errors.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    assert.equal(
      scrubCredentials('Bearer abc.def-123\n is not a legal HTTP header value'),
      'Bearer ***\n is not a legal HTTP header value',
    );
    const kube = await startFakeKube({ token: 'the-real-token' });
    const dir = mkdtempSync(join(tmpdir(), 'ra-token-'));
    try {
      kube.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data: {} });
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, 'an-old-token\n');
      const adapter = createK8sAdapter({
        serviceAccountDir: join(dir, 'none'),
        server: kube.url,
        tokenFile,
        tokenRereadMs: 50,
      });
      const get = adapter.actions.get!;
      const { ctx } = stepContext({ executionId: 'e', step: 's' });
      await assert.rejects(
        get.run(ctx, { kind: 'ConfigMap', name: 'c' }),
        (e: any) => e.type === 'unauthorized' && !String(e.message).includes('an-old-token'),
      );
      writeFileSync(tokenFile, 'the-real-token\n');
      await waitFor(
        async () =>
          (await get.run(ctx, { kind: 'ConfigMap', name: 'c' }).then(
            () => true,
            () => false,
          )) || undefined,
        'the rotated token is used',
      );
    } finally {
      await kube.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

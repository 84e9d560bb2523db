/**
 * The fake kube-apiserver's pods/proxy and services/proxy subresources, checked through the real
 * @kubernetes/client-node, plain fetch with the bearer token, and kubectl: requests reach a real loopback HTTP
 * server the test starts, and the errors are the apiserver's Status answers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { type FakeKube, type KObj, startFakeKube } from '../support/fake-kube/index.js';
import { closedPort, type Echo, type EchoServer, startEchoServer } from './fake-kube-backend.js';

const NS = 'default';
const run = promisify(execFile);

/** client-node's connect* calls parse a JSON answer into an object, and hand anything else back as text. */
const echoOf = (v: unknown): Echo => (typeof v === 'string' ? JSON.parse(v) : v) as Echo;
const echoFrom = async (r: Response): Promise<Echo> => (await r.json()) as Echo;

function pod(name: string, labels: Record<string, string>, opts: { ip?: string; ready?: boolean } = {}): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: {
      containers: [
        { name: 'worker', image: 'registry.local/worker:1', ports: [{ name: 'control', containerPort: 8080 }] },
      ],
    },
    status: {
      phase: 'Running',
      ...(opts.ip === undefined ? {} : { podIP: opts.ip }),
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
    },
  };
}

function service(
  name: string,
  ports: Array<Record<string, unknown>>,
  selector: Record<string, string> | undefined,
): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: { ...(selector ? { selector } : {}), ports },
  };
}

describe('fake kube-apiserver: pods/proxy and services/proxy', function () {
  this.timeout(15_000);
  let kube: FakeKube;
  let core: k8s.CoreV1Api;
  let a: EchoServer;
  let b: EchoServer;

  /** A request with the bearer token, as a client-node user would send one with a body. */
  const call = (p: string, init: RequestInit = {}) =>
    fetch(`${kube.url}${p}`, {
      redirect: 'manual',
      ...init,
      headers: { Authorization: `Bearer ${kube.token}`, ...(init.headers ?? {}) },
    });
  const status = async (r: Response) => ({ code: r.status, body: (await r.json()) as Record<string, any> });

  beforeEach(async () => {
    kube = await startFakeKube();
    core = kube.kubeConfig().makeApiClient(k8s.CoreV1Api);
    a = await startEchoServer('a');
    b = await startEchoServer('b');
  });
  afterEach(async () => {
    await kube.close();
    await a.close();
    await b.close();
  });

  it('forwards method, path, query, body and headers to the pod, and its status, headers and body back', async () => {
    kube.seed(pod('w-0', { app: 'w' }, { ip: '10.244.0.7' }));
    kube.forwardPod(NS, 'w-0', (port) => (port === 8080 ? { host: '127.0.0.1', port: a.port } : undefined));

    const post = await call('/api/v1/namespaces/default/pods/w-0:8080/proxy/api/commands?dry=1&status=202', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'r1' },
      body: JSON.stringify({ command: 'pause' }),
    });
    assert.equal(post.status, 202);
    assert.equal(post.headers.get('x-worker'), 'a');
    const echo = await echoFrom(post);
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/api/commands?dry=1&status=202');
    assert.equal(echo.body, '{"command":"pause"}');
    assert.equal(echo.headers['x-request-id'], 'r1');
    assert.equal(echo.headers.authorization, undefined, 'the bearer token stays with the apiserver');
    assert.equal(echo.headers['x-forwarded-uri'], '/api/v1/namespaces/default/pods/w-0:8080/proxy/api/commands');

    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const r = await call('/api/v1/namespaces/default/pods/w-0/proxy/api/x/', {
        method,
        body: method === 'DELETE' ? undefined : 'b',
      });
      assert.equal(r.status, 200);
      assert.equal(
        (await echoFrom(r)).url,
        '/api/x/',
        `${method}: no port means the first container port; trailing slash kept`,
      );
    }
    const missing = await call('/api/v1/namespaces/default/pods/w-0:8080/proxy/api/nothing?status=404');
    assert.equal(missing.status, 404, "the backend's own status is passed through");
    assert.equal((await echoFrom(missing)).who, 'a');

    const redirect = await call('/api/v1/namespaces/default/pods/w-0:8080/proxy?x=1');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/api/v1/namespaces/default/pods/w-0:8080/proxy/?x=1');
    const moved = await call('/api/v1/namespaces/default/pods/w-0:8080/proxy/moved');
    assert.equal(moved.headers.get('location'), '/api/v1/namespaces/default/pods/w-0:8080/proxy/api/elsewhere');

    const posts = kube.requests.filter((r) => r.subresource === 'proxy');
    assert.deepEqual(
      posts.slice(0, 4).map((r) => [r.method, r.verb, r.resource, r.name]),
      [
        ['POST', 'create', 'pods', 'w-0:8080'],
        ['PUT', 'update', 'pods', 'w-0'],
        ['PATCH', 'patch', 'pods', 'w-0'],
        ['DELETE', 'delete', 'pods', 'w-0'],
      ],
    );
    assert.equal(posts[0]!.body, '{"command":"pause"}');
    assert.equal(posts[0]!.code, 202);
  });

  it('serves client-node CoreV1Api connect*NamespacedPodProxyWithPath and connect*NamespacedServiceProxyWithPath', async () => {
    kube.seed(pod('w-0', { app: 'w' }, { ip: '10.244.0.7' }));
    kube.seed(service('w', [{ name: 'control', port: 80, targetPort: 'control' }], { app: 'w' }));
    kube.forwardPod(NS, 'w-0', () => ({ host: '127.0.0.1', port: a.port }));
    const got = await core.connectGetNamespacedPodProxyWithPath({
      name: 'w-0:8080',
      namespace: NS,
      path: 'api/status',
    });
    assert.equal(echoOf(got).url, '/api/status', 'the encoded slash of the path parameter is decoded');
    const posted = await core.connectPostNamespacedPodProxyWithPath({
      name: 'w-0:8080',
      namespace: NS,
      path: 'api/commands',
    });
    assert.equal(echoOf(posted).method, 'POST');
    const viaService = await core.connectGetNamespacedServiceProxyWithPath({
      name: 'w:control',
      namespace: NS,
      path: 'api/status',
    });
    assert.equal(echoOf(viaService).who, 'a');
    const deleted = await core.connectDeleteNamespacedServiceProxyWithPath({
      name: 'w:80',
      namespace: NS,
      path: 'api/flows/f1',
    });
    assert.equal(echoOf(deleted).method, 'DELETE');
    // the path-less variant sends `path` as a query parameter, which the apiserver ignores: 301 to .../proxy/
    assert.equal((await call('/api/v1/namespaces/default/pods/w-0/proxy?path=api%2Fstatus')).status, 301);
  });

  it('answers unknown pods 404, pods without an IP 400, and unreachable ports 503 as the apiserver does', async () => {
    assert.deepEqual(await status(await call('/api/v1/namespaces/default/pods/ghost:8080/proxy/api/status')), {
      code: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'pods "ghost" not found',
        reason: 'NotFound',
        details: { name: 'ghost', kind: 'pods' },
        code: 404,
      },
    });
    kube.seed(pod('pending', { app: 'w' }));
    const noIp = await status(await call('/api/v1/namespaces/default/pods/pending:8080/proxy/api/status'));
    assert.deepEqual([noIp.code, noIp.body.reason, noIp.body.message], [400, 'BadRequest', 'address not allowed']);
    const bad = await status(await call('/api/v1/namespaces/default/pods/ftp:w:1:2/proxy/'));
    assert.deepEqual([bad.code, bad.body.message], [400, 'invalid pod request "ftp:w:1:2"']);

    kube.seed(pod('w-0', { app: 'w' }, { ip: '10.244.0.7' }));
    const nothing = await status(await call('/api/v1/namespaces/default/pods/w-0:9090/proxy/api/status'));
    assert.deepEqual(
      [nothing.code, nothing.body.reason, nothing.body.message],
      [
        503,
        'ServiceUnavailable',
        'error trying to reach service: dial tcp 10.244.0.7:9090: connect: connection refused',
      ],
    );
    const dead = await closedPort();
    kube.forwardPod(NS, 'w-0', () => ({ host: '127.0.0.1', port: dead }));
    const refused = await status(
      await call('/api/v1/namespaces/default/pods/w-0:8080/proxy/api/status', { method: 'POST', body: 'x' }),
    );
    assert.equal(refused.code, 503);
    assert.equal(
      refused.body.message,
      'error trying to reach service: dial tcp 10.244.0.7:8080: connect: connection refused',
    );
    const viaClient = await core
      .connectGetNamespacedPodProxyWithPath({ name: 'w-0:8080', namespace: NS, path: 'api/status' })
      .then(
        () => assert.fail('expected an ApiException'),
        (e: k8s.ApiException<string>) => e,
      );
    assert.equal(viaClient.code, 503);
    assert.match(String(viaClient.body), /error trying to reach service/);
  });

  it('balances a service over its ready pods by the targetPort, and answers 503/404 without endpoints', async () => {
    kube.seed(
      service(
        'w',
        [
          { name: 'control', port: 80, targetPort: 'control' },
          { name: 'metrics', port: 9100, targetPort: 9100 },
        ],
        { app: 'w' },
      ),
    );
    let r = await status(await call('/api/v1/namespaces/default/services/w:control/proxy/api/status'));
    assert.deepEqual(
      [r.code, r.body.reason, r.body.message],
      [503, 'ServiceUnavailable', 'no endpoints available for service "w"'],
    );

    kube.seed(pod('w-0', { app: 'w' }, { ip: '10.244.0.7' }));
    kube.seed(pod('w-1', { app: 'w' }, { ip: '10.244.0.8' }));
    kube.seed(pod('w-2', { app: 'w' }, { ip: '10.244.0.9', ready: false }));
    kube.podBackend((p, port) => {
      if (port !== 8080) return undefined;
      const name = p.metadata?.name;
      return name === 'w-0'
        ? { host: '127.0.0.1', port: a.port }
        : name === 'w-1'
          ? { host: '127.0.0.1', port: b.port }
          : undefined;
    });
    const who: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await call('/api/v1/namespaces/default/services/w:80/proxy/api/status');
      assert.equal(res.status, 200);
      who.push((await echoFrom(res)).who);
    }
    assert.deepEqual(who.sort(), ['a', 'a', 'b', 'b'], 'round robin over the two ready pods, never the unready one');
    assert.ok(a.received.every((e) => e.url === '/api/status'));

    const metrics = await status(await call('/api/v1/namespaces/default/services/w:metrics/proxy/metrics'));
    assert.equal(metrics.code, 503);
    assert.match(
      metrics.body.message,
      /^error trying to reach service: dial tcp 10\.244\.0\.[78]:9100: connect: connection refused$/,
    );

    r = await status(await call('/api/v1/namespaces/default/services/w/proxy/'));
    assert.deepEqual([r.code, r.body.message], [503, 'no endpoints available for service "w"'], 'no unnamed port');
    r = await status(await call('/api/v1/namespaces/default/services/w:81/proxy/'));
    assert.deepEqual([r.code, r.body.message], [503, 'no service port 81 found for service "w"']);
    r = await status(await call('/api/v1/namespaces/default/services/nope:80/proxy/'));
    assert.deepEqual([r.code, r.body.message], [404, 'services "nope" not found']);
    r = await status(await call('/api/v1/namespaces/default/services/nope:http/proxy/'));
    assert.deepEqual([r.code, r.body.message], [404, 'endpoints "nope" not found']);

    kube.setPodState(NS, { selector: 'app=w' }, 'not-ready');
    r = await status(await call('/api/v1/namespaces/default/services/http:w:control/proxy/api/status'));
    assert.deepEqual([r.code, r.body.message], [503, 'no endpoints available for service "http:w:control"']);
  });

  it('forbids the proxy subresource per verb with the RBAC message, checked before the pod is looked up', async () => {
    kube.seed(pod('w-0', { app: 'w' }, { ip: '10.244.0.7' }));
    kube.forwardPod(NS, 'w-0', () => ({ host: '127.0.0.1', port: a.port }));
    kube.deny('create', 'pods/proxy');
    const denied = await status(
      await call('/api/v1/namespaces/default/pods/w-0:8080/proxy/api/commands', { method: 'POST', body: '{}' }),
    );
    assert.equal(denied.code, 403);
    assert.equal(
      denied.body.message,
      `pods "w-0:8080" is forbidden: User "${kube.username}" cannot create resource "pods/proxy" in API group "" in the namespace "default"`,
    );
    assert.equal(a.received.length, 0);
    assert.equal(
      (await call('/api/v1/namespaces/default/pods/w-0:8080/proxy/api/status')).status,
      200,
      'get is still allowed',
    );
    kube.deny('get', 'services/proxy');
    assert.equal((await call('/api/v1/namespaces/default/services/w:80/proxy/')).status, 403);
    const unauth = await fetch(`${kube.url}/api/v1/namespaces/default/pods/w-0:8080/proxy/api/status`);
    assert.equal(unauth.status, 401);
  });

  it('lists the proxy subresources in discovery and is reachable with kubectl get --raw', async function () {
    const resources = ((await (await call('/api/v1')).json()) as { resources: unknown }).resources as Array<{
      name: string;
      verbs: string[];
    }>;
    assert.deepEqual(resources.find((r) => r.name === 'pods/proxy')?.verbs, [
      'create',
      'delete',
      'get',
      'patch',
      'update',
    ]);
    assert.ok(resources.some((r) => r.name === 'services/proxy'));
    assert.ok(resources.some((r) => r.name === 'pods/portforward'));

    const kubectl = await run('kubectl', ['version', '--client']).then(
      () => true,
      () => false,
    );
    if (!kubectl) this.skip();
    // kubectl sends credentials over TLS only
    const secure = await startFakeKube({ tls: true });
    secure.seed(pod('w-0', { app: 'w' }, { ip: '10.244.0.7' }));
    secure.forwardPod(NS, 'w-0', () => ({ host: '127.0.0.1', port: a.port }));
    const dir = mkdtempSync(path.join(tmpdir(), 'fake-kube-proxy-'));
    try {
      const env = { ...process.env, KUBECONFIG: secure.writeKubeconfigFile(dir) };
      const { stdout } = await run(
        'kubectl',
        ['get', '--raw', '/api/v1/namespaces/default/pods/w-0:8080/proxy/api/status'],
        { env },
      );
      assert.equal(JSON.parse(stdout).url, '/api/status');
      const failed = await run('kubectl', ['get', '--raw', '/api/v1/namespaces/default/services/none:80/proxy/'], {
        env,
      }).then(
        () => assert.fail('kubectl should fail'),
        (e: { stderr: string }) => e.stderr,
      );
      assert.match(failed, /services "none" not found/);
    } finally {
      await secure.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

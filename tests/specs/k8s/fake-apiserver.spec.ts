/**
 * The fake kube-apiserver (tests/specs/support/fake-kube) checked through the real
 * @kubernetes/client-node over real HTTP(S) on 127.0.0.1: every expectation here is the
 * documented behaviour of the real apiserver, so an adapter tested against the fake meets the
 * same answers a cluster would give.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { startFakeKube, type FakeKube, type KObj, type LogLine } from '../support/fake-kube/index.js';
import { waitFor } from '../support/wait.js';
import { fakeKubeClients } from './k8s-support.js';

const NS = 'default';

function deployment(
  name: string,
  opts: { replicas?: number; image?: string; labels?: Record<string, string> } = {},
): k8s.V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { app: name, ...(opts.labels ?? {}) } },
    spec: {
      replicas: opts.replicas ?? 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: opts.image ?? 'registry.local/app:1.0',
              ports: [{ containerPort: 8080 }],
              env: [
                { name: 'MODE', value: 'prod' },
                { name: 'LEVEL', value: 'info' },
              ],
            },
            { name: 'sidecar', image: 'registry.local/proxy:2.1' },
          ],
        },
      },
    },
  };
}

function pod(name: string, labels: Record<string, string>, extra: Partial<KObj> = {}): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: { containers: [{ name: 'app', image: 'registry.local/app:1.0' }] },
    status: { phase: 'Running' },
    ...extra,
  };
}

interface Failure {
  code: number;
  status: {
    kind: string;
    apiVersion: string;
    status: string;
    message: string;
    reason: string;
    code: number;
    details?: {
      name?: string;
      group?: string;
      kind?: string;
      causes?: Array<{ reason: string; message: string; field?: string }>;
      retryAfterSeconds?: number;
    };
  };
  headers: Record<string, string>;
}

/** The ApiException a call must reject with, its Status body parsed (client-node 1.x keeps it as the raw text). */
async function apiFailure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof k8s.ApiException, `expected an ApiException, got ${String(e)}`);
    const ex = e as k8s.ApiException<unknown>;
    return {
      code: ex.code,
      status: typeof ex.body === 'string' && ex.body ? JSON.parse(ex.body) : ex.body,
      headers: ex.headers as Record<string, string>,
    };
  }
  assert.fail('expected the call to fail');
}

/** An autoscaling/v1 Scale of `name` in NS: the body of a PUT to a scale subresource. */
const scaleOf = (name: string, replicas: number) => ({
  apiVersion: 'autoscaling/v1',
  kind: 'Scale',
  metadata: { name, namespace: NS },
  spec: { replicas },
});

/** client-node deserializes into model classes; compare their JSON. */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

const names = (list: { items: Array<{ metadata?: { name?: string } }> }) =>
  list.items.map((i) => i.metadata?.name).sort();

describe('fake kube-apiserver through @kubernetes/client-node', function () {
  this.timeout(10_000);
  let kube: FakeKube;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;

  beforeEach(async () => {
    ({ kube, kc, core, apps } = await fakeKubeClients());
  });
  afterEach(async () => {
    await kube.close();
  });

  it('serves discovery that KubernetesObjectApi resolves kinds through, for core and apps objects', async () => {
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const created = await objects.create(deployment('web') as k8s.KubernetesObject);
    assert.equal(created.metadata?.name, 'web');
    assert.ok(
      kube.requests.some((r) => r.path === '/apis/apps/v1' && r.method === 'GET'),
      'resolved Deployment through /apis/apps/v1',
    );
    kube.seed(pod('web-1', { app: 'web' }));
    const read = (await objects.read({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', namespace: NS },
    })) as k8s.V1Pod;
    assert.equal(read.status?.phase, 'Running');
    const listed = (await objects.list('apps/v1', 'Deployment', NS)) as k8s.V1DeploymentList;
    assert.deepEqual(names(listed), ['web']);
    const resources = (await (
      await fetch(`${kube.url}/apis/apps/v1`, { headers: { authorization: `Bearer ${kube.token}` } })
    ).json()) as { resources: Array<{ name: string; kind: string; group?: string }> };
    assert.deepEqual(
      resources.resources.find((r) => r.name === 'deployments/scale'),
      {
        name: 'deployments/scale',
        singularName: '',
        namespaced: true,
        group: 'autoscaling',
        version: 'v1',
        kind: 'Scale',
        verbs: ['get', 'patch', 'update'],
      },
    );
    assert.equal(
      resources.resources.some((r) => r.name === 'daemonsets/scale'),
      false,
    );
    const version = await kc.makeApiClient(k8s.VersionApi).getCode();
    assert.equal(version.major, '1');
  });

  it('lists pods by equality, set-based and existence label selectors, per namespace and across namespaces', async () => {
    kube.seed(pod('a', { app: 'web', tier: 'front' }));
    kube.seed(pod('b', { app: 'web', tier: 'back' }));
    kube.seed(pod('c', { app: 'db' }));
    kube.seed(
      pod(
        'd',
        { app: 'web', tier: 'front' },
        { metadata: { name: 'd', namespace: 'other', labels: { app: 'web', tier: 'front' } } },
      ),
    );
    const sel = async (labelSelector: string) => names(await core.listNamespacedPod({ namespace: NS, labelSelector }));
    assert.deepEqual(await sel('app=web'), ['a', 'b']);
    assert.deepEqual(await sel('app==web,tier=front'), ['a']);
    assert.deepEqual(await sel('tier!=front'), ['b', 'c'], '!= also matches pods without the label');
    assert.deepEqual(await sel('tier in (front, back)'), ['a', 'b']);
    assert.deepEqual(await sel('app notin (web)'), ['c']);
    assert.deepEqual(await sel('tier'), ['a', 'b']);
    assert.deepEqual(await sel('!tier'), ['c']);
    assert.deepEqual(names(await core.listPodForAllNamespaces({ labelSelector: 'app=web,tier=front' })), ['a', 'd']);
    const list = await core.listNamespacedPod({ namespace: NS });
    assert.equal(list.metadata?.resourceVersion, kube.resourceVersion());
    assert.equal(kube.requests.at(-1)?.path, '/api/v1/namespaces/default/pods');
    const page1 = await core.listNamespacedPod({ namespace: NS, limit: 2 });
    assert.deepEqual(names(page1), ['a', 'b']);
    assert.equal(page1.metadata?.remainingItemCount, 1);
    const page2 = await core.listNamespacedPod({ namespace: NS, limit: 2, _continue: page1.metadata!._continue! });
    assert.deepEqual(names(page2), ['c']);
    assert.equal(page2.metadata?._continue, undefined);
    const bad = await apiFailure(core.listNamespacedPod({ namespace: NS, labelSelector: 'tier in (front' }));
    assert.equal(bad.code, 400);
    assert.equal(bad.status.reason, 'BadRequest');
  });

  it('filters pods by field selectors and rejects unsupported field labels with 400', async () => {
    kube.seed(pod('run', { app: 'x' }, { status: { phase: 'Running' } }));
    kube.seed(pod('pend', { app: 'x' }, { status: { phase: 'Pending' } }));
    assert.deepEqual(names(await core.listNamespacedPod({ namespace: NS, fieldSelector: 'status.phase=Running' })), [
      'run',
    ]);
    assert.deepEqual(names(await core.listNamespacedPod({ namespace: NS, fieldSelector: 'status.phase!=Running' })), [
      'pend',
    ]);
    assert.deepEqual(names(await core.listNamespacedPod({ namespace: NS, fieldSelector: 'metadata.name=pend' })), [
      'pend',
    ]);
    const bad = await apiFailure(core.listNamespacedPod({ namespace: NS, fieldSelector: 'spec.image=x' }));
    assert.equal(bad.code, 400);
    assert.equal(bad.status.message, 'field label not supported: spec.image');
  });

  it('serves pod logs with container, tailLines, sinceSeconds, timestamps and previous as the kubelet does', async () => {
    kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', namespace: NS },
      spec: {
        containers: [
          { name: 'app', image: 'a' },
          { name: 'sidecar', image: 'b' },
        ],
      },
      status: {
        phase: 'Running',
        containerStatuses: [
          { name: 'app', state: { running: {} } },
          { name: 'sidecar', state: { running: {} } },
        ],
      },
    });
    const now = Date.now();
    kube.setPodLogs(NS, 'web-1', 'app', [
      { text: 'old line', time: now - 3_600_000 },
      { text: 'line 2', time: now - 1000 },
      { text: 'line 3', time: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)) },
    ]);
    /** The current log of web-1's app container; its previous instance crashed. */
    const appLog = (lines: LogLine[]) =>
      kube.setPodLogs(NS, 'web-1', 'app', lines, { previous: [{ text: 'crashed: boom' }] });
    appLog([
      { text: 'a', time: now - 2000 },
      { text: 'b', time: now - 1000 },
      { text: 'c', time: now },
    ]);

    const noContainer = await apiFailure(core.readNamespacedPodLog({ name: 'web-1', namespace: NS }));
    assert.equal(noContainer.code, 400);
    assert.equal(
      noContainer.status.message,
      'a container name must be specified for pod web-1, choose one of: [app sidecar]',
    );

    assert.equal(await core.readNamespacedPodLog({ name: 'web-1', namespace: NS, container: 'app' }), 'a\nb\nc\n');
    assert.equal(
      await core.readNamespacedPodLog({ name: 'web-1', namespace: NS, container: 'app', tailLines: 2 }),
      'b\nc\n',
    );
    appLog([
      { text: 'old', time: now - 3_600_000 },
      { text: 'recent', time: now - 5_000 },
    ]);
    assert.equal(
      await core.readNamespacedPodLog({ name: 'web-1', namespace: NS, container: 'app', sinceSeconds: 60 }),
      'recent\n',
    );
    kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'stamped', time: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)) }]);
    assert.equal(
      await core.readNamespacedPodLog({ name: 'web-1', namespace: NS, container: 'app', timestamps: true }),
      '2024-01-02T03:04:05.678000000Z stamped\n',
    );

    const noPrevious = await apiFailure(
      core.readNamespacedPodLog({ name: 'web-1', namespace: NS, container: 'sidecar', previous: true }),
    );
    assert.equal(noPrevious.code, 400);
    assert.equal(noPrevious.status.message, 'previous terminated container "sidecar" in pod "web-1" not found');
    appLog([{ text: 'now' }]);
    assert.equal(
      await core.readNamespacedPodLog({ name: 'web-1', namespace: NS, container: 'app', previous: true }),
      'crashed: boom\n',
    );

    const wrong = await apiFailure(core.readNamespacedPodLog({ name: 'web-1', namespace: NS, container: 'nope' }));
    assert.equal(wrong.status.message, 'container nope is not valid for pod web-1');
    const missing = await apiFailure(core.readNamespacedPodLog({ name: 'gone', namespace: NS, container: 'app' }));
    assert.equal(missing.code, 404);
    assert.equal(missing.status.message, 'pods "gone" not found');
    const q = kube.requests.find((r) => r.query.tailLines === '2');
    assert.equal(q?.path, '/api/v1/namespaces/default/pods/web-1/log');
  });

  it('streams followed logs through client-node Log until the pod goes away', async () => {
    kube.seed(pod('tail', { app: 't' }));
    kube.setPodLogs(NS, 'tail', 'app', [{ text: 'first' }]);
    let got = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        got += chunk.toString();
        cb();
      },
    });
    const ctl = await new k8s.Log(kc).log(NS, 'tail', 'app', sink, { follow: true });
    await waitFor(() => got === 'first\n', 'the existing line');
    kube.appendPodLogs(NS, 'tail', 'app', [{ text: 'second' }]);
    await waitFor(() => got === 'first\nsecond\n', 'the appended line');
    ctl.abort();
  });

  it('selects events by involvedObject fields, type and reason (comma = AND, != negates)', async () => {
    const ev = (name: string, kind: string, obj: string, type: string, reason: string, uid = `uid-${obj}`) =>
      kube.seed({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: NS },
        involvedObject: { kind, name: obj, namespace: NS, uid },
        type,
        reason,
        message: `${reason} ${obj}`,
      });
    ev('e1', 'Deployment', 'web', 'Normal', 'ScalingReplicaSet');
    ev('e2', 'Pod', 'web-1', 'Warning', 'BackOff');
    ev('e3', 'Pod', 'web-1', 'Normal', 'Pulled');
    ev('e4', 'Pod', 'db-1', 'Warning', 'BackOff');
    const sel = async (fieldSelector: string) =>
      names(await core.listNamespacedEvent({ namespace: NS, fieldSelector }));
    assert.deepEqual(await sel('involvedObject.kind=Pod,involvedObject.name=web-1'), ['e2', 'e3']);
    assert.deepEqual(await sel('involvedObject.name=web-1,type!=Normal'), ['e2']);
    assert.deepEqual(await sel('reason==BackOff'), ['e2', 'e4']);
    assert.deepEqual(await sel('involvedObject.uid=uid-web,involvedObject.namespace=default'), ['e1']);
    assert.deepEqual(await sel('type=Warning,involvedObject.kind=Deployment'), []);
  });

  it('applies merge, JSON and strategic merge patches by their Content-Type', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    const change = {
      spec: {
        template: {
          spec: {
            containers: [{ name: 'app', image: 'registry.local/app:2.0', env: [{ name: 'LEVEL', value: 'debug' }] }],
          },
        },
      },
    };

    // strategic merge: containers merge by name, env by name
    const smp = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: change },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    const c1 = smp.spec!.template.spec!.containers;
    assert.deepEqual(
      c1.map((c) => [c.name, c.image]),
      [
        ['app', 'registry.local/app:2.0'],
        ['sidecar', 'registry.local/proxy:2.1'],
      ],
    );
    assert.deepEqual(plain(c1[0]!.env), [
      { name: 'MODE', value: 'prod' },
      { name: 'LEVEL', value: 'debug' },
    ]);
    assert.deepEqual(plain(c1[0]!.ports), [{ containerPort: 8080, protocol: 'TCP' }]);

    // merge patch: the same body replaces the whole containers list
    const mp = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: change },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    assert.deepEqual(
      mp.spec!.template.spec!.containers.map((c) => c.name),
      ['app'],
    );
    assert.deepEqual(plain(mp.spec!.template.spec!.containers[0]!.env), [{ name: 'LEVEL', value: 'debug' }]);
    const mpNull = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { metadata: { labels: { app: null, tier: 'x' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    assert.deepEqual(plain(mpNull.metadata?.labels), { tier: 'x' });

    // JSON patch is what client-node sends without a Content-Type override
    const jp = await apps.patchNamespacedDeployment({
      name: 'web',
      namespace: NS,
      body: [
        { op: 'test', path: '/spec/replicas', value: 2 },
        { op: 'replace', path: '/spec/replicas', value: 4 },
        { op: 'add', path: '/metadata/annotations', value: { 'example.com/by': 'test' } },
      ],
    });
    assert.equal(jp.spec?.replicas, 4);
    assert.deepEqual(
      kube.requests.filter((r) => r.method === 'PATCH').map((r) => r.contentType),
      [
        'application/strategic-merge-patch+json',
        'application/merge-patch+json',
        'application/merge-patch+json',
        'application/json-patch+json',
      ],
    );
    const failedTest = await apiFailure(
      apps.patchNamespacedDeployment({
        name: 'web',
        namespace: NS,
        body: [{ op: 'test', path: '/spec/replicas', value: 9 }],
      }),
    );
    assert.equal(failedTest.code, 422);
    assert.equal(failedTest.status.details?.causes?.[0]?.message, 'testing value /spec/replicas failed: test failed');
    const unsupported = await apiFailure(
      apps.patchNamespacedDeployment(
        { name: 'web', namespace: NS, body: {} },
        k8s.setHeaderOptions('Content-Type', 'application/json'),
      ),
    );
    assert.equal(unsupported.code, 415);
    assert.equal(unsupported.status.reason, 'UnsupportedMediaType');
  });

  it('bumps generation on spec (and, for Deployments, annotation) changes only, resourceVersion on every real write', async () => {
    const created = await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    assert.equal(created.metadata?.generation, 1);
    assert.deepEqual(plain(created.status), {}, 'status is reset on create');
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    const labelled = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { metadata: { labels: { team: 'a' } } } },
      merge,
    );
    assert.equal(labelled.metadata?.generation, 1);
    assert.notEqual(labelled.metadata?.resourceVersion, created.metadata?.resourceVersion);
    const annotated = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { metadata: { annotations: { note: 'x' } } } },
      merge,
    );
    assert.equal(annotated.metadata?.generation, 2);
    const scaled = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { spec: { replicas: 3 } } },
      merge,
    );
    assert.equal(scaled.metadata?.generation, 3);
    const noop = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { spec: { replicas: 3 } } },
      merge,
    );
    assert.equal(
      noop.metadata?.resourceVersion,
      scaled.metadata?.resourceVersion,
      'a write that changes nothing keeps the resourceVersion',
    );
    const statusIgnored = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { status: { readyReplicas: 3 } } },
      merge,
    );
    assert.equal(statusIgnored.status?.readyReplicas, undefined, 'status only changes through /status');
  });

  it('server-side apply: creates, needs fieldManager, reports and forces conflicts, drops fields the manager stopped applying', async () => {
    const ssa = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
    const intent = deployment('api', { replicas: 2, labels: { owner: 'agent' } });
    const created = await apps.patchNamespacedDeployment(
      { name: 'api', namespace: NS, body: intent, fieldManager: 'runtime-agent' },
      ssa,
    );
    assert.equal(created.metadata?.uid !== undefined, true);
    assert.equal(kube.requests.at(-1)?.code, 201);

    const noManager = await apiFailure(
      apps.patchNamespacedDeployment({ name: 'api', namespace: NS, body: intent }, ssa),
    );
    assert.equal(noManager.code, 422);
    assert.equal(
      noManager.status.message,
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );

    const other = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api', namespace: NS },
      spec: { replicas: 5 },
    };
    const conflict = await apiFailure(
      apps.patchNamespacedDeployment({ name: 'api', namespace: NS, body: other, fieldManager: 'hpa' }, ssa),
    );
    assert.equal(conflict.code, 409);
    assert.equal(conflict.status.reason, 'Conflict');
    assert.equal(
      conflict.status.message,
      'Apply failed with 1 conflict: conflict with "runtime-agent": .spec.replicas',
    );
    assert.deepEqual(conflict.status.details?.causes, [
      { reason: 'FieldManagerConflict', message: 'conflict with "runtime-agent"', field: '.spec.replicas' },
    ]);
    const forced = await apps.patchNamespacedDeployment(
      { name: 'api', namespace: NS, body: other, fieldManager: 'hpa', force: true },
      ssa,
    );
    assert.equal(forced.spec?.replicas, 5);

    // the agent re-applies without the label and without replicas (now owned by hpa): label removed, replicas kept
    const next = deployment('api', { labels: {} });
    delete next.spec!.replicas;
    const reapplied = await apps.patchNamespacedDeployment(
      { name: 'api', namespace: NS, body: next, fieldManager: 'runtime-agent' },
      ssa,
    );
    assert.deepEqual(plain(reapplied.metadata?.labels), { app: 'api' });
    assert.equal(reapplied.spec?.replicas, 5);

    // fields set by a non-apply write belong to its manager (the fieldManager, or the User-Agent's product)
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: deployment('legacy'),
      fieldManager: 'kubectl-create',
    });
    const legacy = await apiFailure(
      apps.patchNamespacedDeployment(
        { name: 'legacy', namespace: NS, body: deployment('legacy', { replicas: 4 }), fieldManager: 'runtime-agent' },
        ssa,
      ),
    );
    assert.equal(
      legacy.status.message,
      'Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.replicas',
    );
    const sameValues = await apps.patchNamespacedDeployment(
      { name: 'legacy', namespace: NS, body: deployment('legacy'), fieldManager: 'runtime-agent' },
      ssa,
    );
    assert.equal(
      sameValues.metadata?.resourceVersion,
      kube.get('apps/v1', 'Deployment', NS, 'legacy')?.metadata?.resourceVersion,
    );

    // the body of an apply is YAML (client-node sends JSON, which is YAML too)
    const yaml = [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: api',
      '  annotations:',
      '    note: from-yaml',
      '',
    ].join('\n');
    const res = await fetch(`${kube.url}/apis/apps/v1/namespaces/default/deployments/api?fieldManager=yaml-tool`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${kube.token}`, 'content-type': 'application/apply-patch+yaml' },
      body: yaml,
    });
    assert.equal(res.status, 200);
    assert.equal(kube.get('apps/v1', 'Deployment', NS, 'api')?.metadata?.annotations?.note, 'from-yaml');
  });

  it('dryRun=All validates and answers but changes nothing; other dryRun values are rejected', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    const before = kube.get('apps/v1', 'Deployment', NS, 'web')!;
    const rv = kube.resourceVersion();
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    const preview = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { spec: { replicas: 7 } }, dryRun: 'All' },
      merge,
    );
    assert.equal(preview.spec?.replicas, 7);
    assert.equal(preview.metadata?.generation, 2);
    const created = await apps.createNamespacedDeployment({ namespace: NS, body: deployment('ghost'), dryRun: 'All' });
    assert.equal(created.metadata?.name, 'ghost');
    await core.deleteNamespacedPod({ name: 'x', namespace: NS, dryRun: 'All' }).then(
      () => assert.fail('deleting a missing pod fails even in dry run'),
      (e: k8s.ApiException<unknown>) => assert.equal(e.code, 404),
    );
    await apps.deleteNamespacedDeployment({ name: 'web', namespace: NS, dryRun: 'All' });
    await apps.replaceNamespacedDeploymentScale({ name: 'web', namespace: NS, body: scaleOf('web', 9), dryRun: 'All' });
    const invalid = await apiFailure(
      apps.patchNamespacedDeployment(
        { name: 'web', namespace: NS, body: { spec: { replicas: -1 } }, dryRun: 'All' },
        merge,
      ),
    );
    assert.equal(invalid.code, 422, 'a dry run still validates');

    assert.deepEqual(kube.get('apps/v1', 'Deployment', NS, 'web'), before);
    assert.equal(kube.get('apps/v1', 'Deployment', NS, 'ghost'), undefined);
    assert.equal(kube.resourceVersion(), rv, 'no write happened');
    assert.deepEqual(
      kube.requests.filter((r) => r.method !== 'GET' && r.dryRun).map((r) => [r.method, r.query.dryRun]),
      [
        ['PATCH', 'All'],
        ['POST', 'All'],
        ['DELETE', 'All'],
        ['DELETE', 'All'],
        ['PUT', 'All'],
        ['PATCH', 'All'],
      ],
    );
    const bogus = await apiFailure(
      apps.patchNamespacedDeployment({ name: 'web', namespace: NS, body: {}, dryRun: 'Server' }, merge),
    );
    assert.equal(bogus.code, 422);
    assert.equal(
      bogus.status.message,
      'PatchOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Server"}: supported values: "All"',
    );
  });

  it('answers a replace carrying a stale resourceVersion with 409 Conflict', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    const stale = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
    await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    stale.spec!.replicas = 9;
    const conflict = await apiFailure(apps.replaceNamespacedDeployment({ name: 'web', namespace: NS, body: stale }));
    assert.equal(conflict.code, 409);
    assert.deepEqual(conflict.status, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'web', group: 'apps', kind: 'deployments' },
      code: 409,
    });
    const fresh = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
    fresh.spec!.replicas = 9;
    const replaced = await apps.replaceNamespacedDeployment({ name: 'web', namespace: NS, body: fresh });
    assert.equal(replaced.spec?.replicas, 9);
    const exists = await apiFailure(apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') }));
    assert.equal(exists.status.reason, 'AlreadyExists');
    assert.equal(exists.status.message, 'deployments.apps "web" already exists');
  });

  it('forbids with the RBAC message of the apiserver, for resources and subresources', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    kube.deny('patch', 'deployments');
    kube.deny(['update', 'patch'], 'deployments/scale');
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    const denied = await apiFailure(
      apps.patchNamespacedDeployment({ name: 'web', namespace: NS, body: { spec: { replicas: 1 } } }, merge),
    );
    assert.equal(denied.code, 403);
    assert.equal(
      denied.status.message,
      'deployments.apps "web" is forbidden: User "system:serviceaccount:default:runtime-agent" cannot patch resource "deployments" in API group "apps" in the namespace "default"',
    );
    assert.deepEqual(denied.status.details, { name: 'web', group: 'apps', kind: 'deployments' });
    const scale = await apiFailure(
      apps.patchNamespacedDeploymentScale({ name: 'web', namespace: NS, body: { spec: { replicas: 1 } } }, merge),
    );
    assert.equal(
      scale.status.message,
      'deployments.apps "web" is forbidden: User "system:serviceaccount:default:runtime-agent" cannot patch resource "deployments/scale" in API group "apps" in the namespace "default"',
    );
    assert.equal(
      (await apps.readNamespacedDeployment({ name: 'web', namespace: NS })).spec?.replicas,
      2,
      'get is still allowed',
    );
    kube.deny('list', 'pods');
    const list = await apiFailure(core.listPodForAllNamespaces());
    assert.equal(
      list.status.message,
      'pods is forbidden: User "system:serviceaccount:default:runtime-agent" cannot list resource "pods" in API group "" at the cluster scope',
    );
    const review = await kc.makeApiClient(k8s.AuthorizationV1Api).createSelfSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { verb: 'patch', group: 'apps', resource: 'deployments', namespace: NS } },
      },
    });
    assert.equal(review.status?.allowed, false);
    kube.allowAll();
    assert.equal(
      (await apps.patchNamespacedDeployment({ name: 'web', namespace: NS, body: { spec: { replicas: 1 } } }, merge))
        .spec?.replicas,
      1,
    );
  });

  it('maps NotFound and Invalid Status bodies into ApiException', async () => {
    const missing = await apiFailure(apps.readNamespacedDeployment({ name: 'nope', namespace: NS }));
    assert.equal(missing.code, 404);
    assert.deepEqual(missing.status, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'deployments.apps "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', group: 'apps', kind: 'deployments' },
      code: 404,
    });
    const negative = await apiFailure(
      apps.createNamespacedDeployment({ namespace: NS, body: deployment('web', { replicas: -1 }) }),
    );
    assert.equal(negative.code, 422);
    assert.equal(negative.status.reason, 'Invalid');
    assert.equal(
      negative.status.message,
      'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    );
    assert.deepEqual(negative.status.details, {
      name: 'web',
      group: 'apps',
      kind: 'Deployment',
      causes: [
        {
          reason: 'FieldValueInvalid',
          message: 'Invalid value: -1: must be greater than or equal to 0',
          field: 'spec.replicas',
        },
      ],
    });
    const badName = await apiFailure(apps.createNamespacedDeployment({ namespace: NS, body: deployment('Web_1') }));
    assert.equal(badName.status.details?.causes?.[0]?.field, 'metadata.name');
    const noName = deployment('x');
    delete noName.metadata!.name;
    const unnamed = await apiFailure(apps.createNamespacedDeployment({ namespace: NS, body: noName }));
    assert.equal(
      unnamed.status.message,
      'Deployment.apps "" is invalid: metadata.name: Required value: name or generateName is required',
    );
    const wrongKind = await apiFailure(
      apps.createNamespacedDeployment({ namespace: NS, body: { ...deployment('w'), apiVersion: 'apps/v1beta1' } }),
    );
    assert.equal(wrongKind.code, 400);
    assert.equal(
      wrongKind.status.message,
      'the API version in the data (apps/v1beta1) does not match the expected API version (apps/v1)',
    );
    const unknown = await fetch(`${kube.url}/apis/apps/v1/namespaces/default/widgets`, {
      headers: { authorization: `Bearer ${kube.token}` },
    });
    assert.equal(unknown.status, 404);
    assert.equal(
      ((await unknown.json()) as { message: string }).message,
      'the server could not find the requested resource',
    );
  });

  it('deletes as the apiserver answers: a Status for deployments, the object for pods, dependents garbage-collected', async () => {
    const d = await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    kube.seed({
      ...pod('web-1', { app: 'web' }),
      metadata: {
        name: 'web-1',
        namespace: NS,
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: d.metadata!.uid! }],
      },
    });
    kube.seed(pod('lonely', { app: 'x' }));
    const status = await apps.deleteNamespacedDeployment({
      name: 'web',
      namespace: NS,
      propagationPolicy: 'Background',
    });
    assert.equal(status.status, 'Success');
    assert.deepEqual(plain(status.details), { name: 'web', group: 'apps', kind: 'deployments', uid: d.metadata!.uid });
    assert.equal(kube.get('v1', 'Pod', NS, 'web-1'), undefined, 'the owned pod is collected');
    const deletedPod = await core.deleteNamespacedPod({ name: 'lonely', namespace: NS });
    assert.equal(deletedPod.kind, 'Pod');
    assert.equal(deletedPod.metadata?.name, 'lonely');
    const bad = await apiFailure(apps.deleteNamespacedDeployment({ name: 'web', namespace: NS }));
    assert.equal(bad.code, 404);
  });

  it('serves the scale subresource as autoscaling/v1 Scale for deployments and statefulsets, not daemonsets', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    const scale = await apps.readNamespacedDeploymentScale({ name: 'web', namespace: NS });
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.apiVersion, 'autoscaling/v1');
    assert.equal(scale.spec?.replicas, 2);
    assert.equal(scale.status?.selector, 'app=web');
    const put = await apps.replaceNamespacedDeploymentScale({ name: 'web', namespace: NS, body: scaleOf('web', 5) });
    assert.equal(put.spec?.replicas, 5);
    const after = kube.get('apps/v1', 'Deployment', NS, 'web')!;
    assert.equal(after.spec.replicas, 5);
    assert.equal(after.metadata?.generation, 2);
    const patched = await apps.patchNamespacedDeploymentScale(
      { name: 'web', namespace: NS, body: { spec: { replicas: 1 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    assert.equal(patched.spec?.replicas, 1);
    const jsonPatched = await apps.patchNamespacedDeploymentScale({
      name: 'web',
      namespace: NS,
      body: [{ op: 'replace', path: '/spec/replicas', value: 3 }],
    });
    assert.equal(jsonPatched.spec?.replicas, 3);
    const negative = await apiFailure(
      apps.patchNamespacedDeploymentScale(
        { name: 'web', namespace: NS, body: { spec: { replicas: -2 } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
    );
    assert.equal(
      negative.status.message,
      'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -2: must be greater than or equal to 0',
    );
    const stale = await apiFailure(
      apps.replaceNamespacedDeploymentScale({ name: 'web', namespace: NS, body: { ...scale, spec: { replicas: 4 } } }),
    );
    assert.equal(stale.code, 409);

    kube.seed({ ...deployment('db'), kind: 'StatefulSet', spec: { ...deployment('db').spec, serviceName: 'db' } });
    assert.equal((await apps.readNamespacedStatefulSetScale({ name: 'db', namespace: NS })).status?.selector, 'app=db');
    kube.seed({
      ...deployment('agent'),
      kind: 'DaemonSet',
      spec: { selector: { matchLabels: { app: 'agent' } }, template: deployment('agent').spec!.template },
    });
    const ds = await fetch(`${kube.url}/apis/apps/v1/namespaces/default/daemonsets/agent/scale`, {
      headers: { authorization: `Bearer ${kube.token}` },
    });
    assert.equal(ds.status, 404);
  });

  it('streams watch events in order, filtered by field selector, resuming after a resourceVersion', async () => {
    kube.seed(deployment('other') as KObj);
    const list = await apps.listNamespacedDeployment({ namespace: NS });
    const events: Array<[string, string, string]> = [];
    let ended = false;
    const watch = new k8s.Watch(kc);
    const ctl = await watch.watch(
      '/apis/apps/v1/namespaces/default/deployments',
      { resourceVersion: list.metadata!.resourceVersion, fieldSelector: 'metadata.name=web' },
      (type, obj: k8s.V1Deployment) => events.push([type, obj.metadata!.name!, obj.metadata!.resourceVersion!]),
      () => (ended = true),
    );
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    await apps.patchNamespacedDeployment({ name: 'other', namespace: NS, body: { spec: { replicas: 9 } } }, merge);
    await apps.patchNamespacedDeployment({ name: 'web', namespace: NS, body: { spec: { replicas: 3 } } }, merge);
    kube.setStatus('apps/v1', 'Deployment', NS, 'web', { replicas: 3, readyReplicas: 3 });
    await apps.deleteNamespacedDeployment({ name: 'web', namespace: NS });
    await waitFor(() => events.length >= 4, 'four events for web');
    assert.deepEqual(
      events.map((e) => e[0]),
      ['ADDED', 'MODIFIED', 'MODIFIED', 'DELETED'],
    );
    const rvs = events.map((e) => Number(e[2]));
    assert.deepEqual(
      [...rvs].sort((a, b) => a - b),
      rvs,
      'resourceVersions increase',
    );
    assert.ok(events.every((e) => e[1] === 'web'));

    // resuming from the second event replays what came after it
    const replay: string[] = [];
    const ctl2 = await watch.watch(
      '/apis/apps/v1/namespaces/default/deployments',
      { resourceVersion: events[1]![2], fieldSelector: 'metadata.name=web' },
      (type) => replay.push(type),
      () => {},
    );
    await waitFor(() => replay.length >= 2, 'replayed events');
    assert.deepEqual(replay, ['MODIFIED', 'DELETED']);
    ctl.abort();
    ctl2.abort();
    assert.equal(ended, true);
  });

  it('frames a raw watch=1 stream as newline-delimited JSON events; list items carry no kind', async () => {
    kube.seed(pod('p1', { app: 'x' }));
    const list = (await (
      await fetch(`${kube.url}/api/v1/namespaces/default/pods`, { headers: { authorization: `Bearer ${kube.token}` } })
    ).json()) as { kind: string; items: KObj[] };
    assert.equal(list.kind, 'PodList');
    assert.equal(list.items[0]!.kind, undefined, 'typed list items omit kind/apiVersion');
    const ctl = new AbortController();
    const res = await fetch(`${kube.url}/api/v1/namespaces/default/pods?watch=1`, {
      headers: { authorization: `Bearer ${kube.token}` },
      signal: ctl.signal,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    const reader = res.body!.getReader();
    let text = '';
    kube.seed(pod('p2', { app: 'x' }));
    while (text.split('\n').length < 3) text += new TextDecoder().decode((await reader.read()).value);
    ctl.abort();
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; object: KObj });
    assert.deepEqual(
      lines.map((l) => [l.type, l.object.kind, l.object.metadata?.name]),
      [
        ['ADDED', 'Pod', 'p1'],
        ['ADDED', 'Pod', 'p2'],
      ],
      'no resourceVersion: synthetic ADDED for the current state, then changes',
    );
  });

  it('ends a watch at timeoutSeconds and sends BOOKMARKs when allowed', async () => {
    await kube.close();
    kube = await startFakeKube({ bookmarkIntervalMs: 20 });
    kc = kube.kubeConfig();
    const types: string[] = [];
    let done = false;
    await new k8s.Watch(kc).watch(
      '/api/v1/namespaces/default/pods',
      { allowWatchBookmarks: true, timeoutSeconds: 1 },
      (t) => types.push(t),
      () => (done = true),
    );
    await waitFor(() => types.includes('BOOKMARK'), 'a bookmark');
    await waitFor(() => done, 'the server to end the watch', 3000);
  });

  it('answers a watch from a compacted resourceVersion with an ERROR event carrying 410 Expired, and informers recover by relisting', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web') });
    const old = kube.resourceVersion();
    await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    kube.compact();
    const got: Array<{ type: string; obj: { code?: number; reason?: string; message?: string } }> = [];
    let ended = false;
    await new k8s.Watch(kc).watch(
      '/apis/apps/v1/namespaces/default/deployments',
      { resourceVersion: old },
      (type, obj) => got.push({ type, obj }),
      () => (ended = true),
    );
    await waitFor(() => ended, 'the server to close the watch after the error');
    assert.equal(got.length, 1);
    assert.equal(got[0]!.type, 'ERROR');
    assert.equal(got[0]!.obj.code, 410);
    assert.equal(got[0]!.obj.reason, 'Expired');
    assert.match(got[0]!.obj.message!, new RegExp(`^too old resource version: ${old} \\(\\d+\\)$`));

    const informer = k8s.makeInformer(kc, '/apis/apps/v1/namespaces/default/deployments', () =>
      apps.listNamespacedDeployment({ namespace: NS }),
    );
    const seen: number[] = [];
    informer.on('add', (d) => seen.push(d.spec!.replicas!));
    informer.on('update', (d) => seen.push(d.spec!.replicas!));
    await informer.start();
    await waitFor(() => seen.includes(3), 'the informer to list web');
    const informerWatch = await waitFor(
      () => kube.requests.find((r) => r.query.watch === 'true' && r.code === undefined),
      'the informer to watch',
    );
    const informerRV = informerWatch.query.resourceVersion;
    kube.seed(pod('unrelated', { app: 'x' })); // moves the cluster's resourceVersion past the informer's
    kube.compact();
    const mark = kube.requests.length;
    kube.closeStreams(); // the informer re-watches from its resourceVersion, gets 410, and relists
    await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { spec: { replicas: 6 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await waitFor(() => seen.includes(6), 'the informer to see the change');
    await informer.stop();
    const after = kube.requests.slice(mark).filter((r) => r.path === '/apis/apps/v1/namespaces/default/deployments');
    assert.ok(
      after.some((r) => r.query.watch === 'true' && r.query.resourceVersion === informerRV),
      'it re-watched from its resourceVersion',
    );
    assert.ok(
      after.some((r) => r.query.watch === undefined),
      'and relisted after the 410',
    );
  });

  it('answers 401 Unauthorized to a wrong token, and 429 with Retry-After when told to', async () => {
    const wrong = new k8s.KubeConfig();
    wrong.loadFromOptions({
      clusters: [{ name: 'c', server: kube.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'not-the-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const denied = await apiFailure(wrong.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: NS }));
    assert.equal(denied.code, 401);
    const raw = await fetch(`${kube.url}/api/v1/namespaces/default/pods`, {
      headers: { authorization: 'Bearer nope' },
    });
    assert.deepEqual(await raw.json(), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });

    kube.failNext({ verb: 'list', resource: 'pods' }, { code: 429, retryAfterSeconds: 2 });
    const throttled = await apiFailure(core.listNamespacedPod({ namespace: NS }));
    assert.equal(throttled.code, 429);
    assert.equal(throttled.headers['retry-after'], '2');
    assert.equal(throttled.status.reason, 'TooManyRequests');
    assert.equal(throttled.status.details?.retryAfterSeconds, 2);
    assert.deepEqual((await core.listNamespacedPod({ namespace: NS })).items, [], 'only the next request fails');
    kube.failNext({ method: 'GET', path: /\/deployments\/web$/ }, { code: 503 });
    const unavailable = await apiFailure(apps.readNamespacedDeployment({ name: 'web', namespace: NS }));
    assert.equal(unavailable.status.reason, 'ServiceUnavailable');
  });

  it('reports the service account from selfsubjectreviews, and 404 where the API is absent', async () => {
    const auth = kc.makeApiClient(k8s.AuthenticationV1Api);
    const review = await auth.createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    assert.equal(review.status?.userInfo?.username, 'system:serviceaccount:default:runtime-agent');
    assert.ok(review.status?.userInfo?.groups?.includes('system:serviceaccounts:default'));
    await kube.close();
    kube = await startFakeKube({ selfSubjectReview: false, namespace: 'ops' });
    const old = kube.kubeConfig().makeApiClient(k8s.AuthenticationV1Api);
    const absent = await apiFailure(
      old.createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } }),
    );
    assert.equal(absent.code, 404);
  });

  it('works over HTTPS with its CA: kubeconfig object, kubeconfig file, and in-cluster service-account files', async () => {
    await kube.close();
    kube = await startFakeKube({ tls: true, namespace: 'apps-ns' });
    assert.ok(kube.url.startsWith('https://127.0.0.1:'));
    assert.match(kube.caPem!, /BEGIN CERTIFICATE/);
    kube.seed({ ...pod('p', { app: 'x' }), metadata: { name: 'p', namespace: 'apps-ns', labels: { app: 'x' } } });
    assert.deepEqual(
      names(await kube.kubeConfig().makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'apps-ns' })),
      ['p'],
    );

    const untrusted = new k8s.KubeConfig();
    untrusted.loadFromOptions({
      clusters: [{ name: 'c', server: kube.url, skipTLSVerify: false }],
      users: [{ name: 'u', token: kube.token }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    await assert.rejects(
      untrusted.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'apps-ns' }),
      'the server certificate is not trusted without the CA',
    );

    const dir = mkdtempSync(path.join(tmpdir(), 'fake-kube-spec-'));
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    try {
      const fromFile = new k8s.KubeConfig();
      fromFile.loadFromFile(kube.writeKubeconfigFile(dir));
      assert.equal(fromFile.getContextObject(fromFile.getCurrentContext())?.namespace, 'apps-ns');
      assert.deepEqual(names(await fromFile.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'apps-ns' })), [
        'p',
      ]);

      const sa = kube.writeServiceAccountDir(dir);
      Object.assign(process.env, sa.env);
      const inCluster = new k8s.KubeConfig();
      inCluster.loadFromCluster(sa.pathPrefix);
      assert.equal(inCluster.getCurrentCluster()?.server, kube.url);
      assert.equal(inCluster.getContextObject(inCluster.getCurrentContext())?.namespace, 'apps-ns');
      const who = await inCluster
        .makeApiClient(k8s.AuthenticationV1Api)
        .createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
      assert.equal(who.status?.userInfo?.username, 'system:serviceaccount:apps-ns:runtime-agent');
      assert.equal(kube.requests.at(-1)?.code, 201);
    } finally {
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('simulates rollouts: status catches up after a spec change, or stays stuck', async () => {
    kube.controller.enable({ delayMs: 30, pods: true });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web', { replicas: 2 }) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('slow', { replicas: 1 }) });
    const done = (name: string) => async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace: NS });
      const s = d.status;
      return s?.observedGeneration === d.metadata?.generation &&
        s?.updatedReplicas === d.spec?.replicas &&
        s?.availableReplicas === d.spec?.replicas
        ? d
        : undefined;
    };
    const web = await waitFor(done('web'), 'web to roll out');
    assert.deepEqual(
      web.status?.conditions?.map((c) => [c.type, c.status, c.reason]),
      [
        ['Available', 'True', 'MinimumReplicasAvailable'],
        ['Progressing', 'True', 'NewReplicaSetAvailable'],
      ],
    );
    assert.equal((await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web' })).items.length, 2);

    kube.controller.setMode('stuck', { kind: 'Deployment', namespace: NS, name: 'slow' });
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    const slow = await apps.patchNamespacedDeployment(
      {
        name: 'slow',
        namespace: NS,
        body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'registry.local/app:9' }] } } } },
      },
      merge,
    );
    const webNext = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: NS, body: { spec: { template: { metadata: { annotations: { rev: '2' } } } } } },
      merge,
    );
    assert.equal(webNext.metadata?.generation, 2);
    await waitFor(done('web'), 'web to roll out again');
    const stuck = await apps.readNamespacedDeployment({ name: 'slow', namespace: NS });
    assert.equal(stuck.status?.observedGeneration, slow.metadata?.generation, 'the controller observed the change');
    assert.equal(stuck.status?.updatedReplicas, undefined, 'but no replica was updated');
    assert.equal(stuck.status?.conditions?.find((c) => c.type === 'Progressing')?.reason, 'ReplicaSetUpdated');
    await apps.deleteNamespacedDeployment({ name: 'web', namespace: NS });
    await waitFor(
      () =>
        kube.list('Pod').every((p) => !p.metadata?.name?.startsWith('web-')) &&
        kube.list('ReplicaSet').every((r) => !r.metadata?.name?.startsWith('web-')),
      'web pods and replicasets collected',
    );
  });
});

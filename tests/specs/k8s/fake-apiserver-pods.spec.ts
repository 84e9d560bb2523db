/**
 * The fake kube-apiserver's pod states on demand (kube.setPodState, ControllerOptions.podState), Deployment
 * status following pod readiness, rollout restart and scaling with the controller, and metrics.k8s.io —
 * checked through the real @kubernetes/client-node (reads, label-selector watches, Metrics).
 */
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import type { FakeKube, KObj } from '../support/fake-kube/index.js';
import { waitFor } from '../support/wait.js';
import { fakeKubeClients } from './k8s-support.js';

const NS = 'default';
const MANAGED = { 'app.kubernetes.io/managed-by': 'runtime-agent' };
const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function worker(name: string, opts: { replicas?: number; image?: string } = {}): k8s.V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { app: name, ...MANAGED } },
    spec: {
      replicas: opts.replicas ?? 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...MANAGED } },
        spec: {
          containers: [
            { name: 'worker', image: opts.image ?? 'registry.local/worker:1', ports: [{ containerPort: 8080 }] },
          ],
        },
      },
    },
  };
}

type Events<T> = Array<{ type: string; obj: T }>;

describe('fake kube-apiserver: pod states, deployment status, metrics.k8s.io', function () {
  this.timeout(15_000);
  let kube: FakeKube;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  const aborts: AbortController[] = [];

  /** A client-node watch of `path` filtered by the managed-by label; events collected in order. */
  async function watchManaged<T>(path: string): Promise<Events<T>> {
    const events: Events<T> = [];
    const ctl = await new k8s.Watch(kc).watch(
      path,
      { labelSelector: 'app.kubernetes.io/managed-by=runtime-agent' },
      (type, obj: T) => events.push({ type, obj }),
      () => {},
    );
    aborts.push(ctl);
    return events;
  }

  const podsOf = async (app: string) =>
    (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` })).items;
  const deploymentWhere = (name: string, ok: (d: k8s.V1Deployment) => boolean, what: string) =>
    waitFor(async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace: NS });
      return ok(d) ? d : undefined;
    }, what);
  const cond = (d: k8s.V1Deployment, type: string) => d.status?.conditions?.find((c) => c.type === type);
  const available = (d: k8s.V1Deployment) => cond(d, 'Available')?.status === 'True';

  beforeEach(async () => {
    ({ kube, kc, core, apps } = await fakeKubeClients());
  });
  afterEach(async () => {
    for (const a of aborts.splice(0)) a.abort();
    await kube.close();
  });

  it('puts a pod into each state as the kubelet reports it, visible to get and to a label-selector watch', async () => {
    kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'w-0', namespace: NS, labels: { app: 'w', ...MANAGED }, uid: 'u-1' },
      spec: { containers: [{ name: 'worker', image: 'registry.local/worker:1' }] },
    });
    kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'other', namespace: NS },
      spec: { containers: [{ name: 'c', image: 'x' }] },
    });
    const events = await watchManaged<k8s.V1Pod>('/api/v1/namespaces/default/pods');
    await waitFor(() => events.length === 1, 'the ADDED event');

    const read = async () => (await core.readNamespacedPod({ name: 'w-0', namespace: NS })).status!;
    const waiting = (s: k8s.V1PodStatus) => s.containerStatuses?.[0]?.state?.waiting;
    const readyCond = (s: k8s.V1PodStatus) => s.conditions?.find((c) => c.type === 'Ready');

    kube.setPodState(NS, 'w-0', 'running');
    let s = await read();
    assert.deepEqual([s.phase, readyCond(s)?.status, s.containerStatuses?.[0]?.ready], ['Running', 'True', true]);
    assert.ok(s.podIP, 'a running pod has an IP');

    kube.setPodState(NS, 'w-0', 'not-ready');
    s = await read();
    assert.deepEqual(
      [s.phase, readyCond(s)?.status, readyCond(s)?.reason, readyCond(s)?.message],
      ['Running', 'False', 'ContainersNotReady', 'containers with unready status: [worker]'],
    );

    kube.setPodState(NS, 'w-0', 'crash-loop');
    kube.setPodState(NS, 'w-0', 'crash-loop', { exitCode: 137, reason: 'OOMKilled' });
    s = await read();
    const cs = s.containerStatuses![0]!;
    assert.equal(cs.restartCount, 2, 'each crash-loop call is one more restart');
    assert.equal(waiting(s)?.reason, 'CrashLoopBackOff');
    assert.equal(waiting(s)?.message, 'back-off 20s restarting failed container=worker pod=w-0_default(u-1)');
    assert.deepEqual([cs.lastState?.terminated?.exitCode, cs.lastState?.terminated?.reason], [137, 'OOMKilled']);
    assert.equal(s.phase, 'Running');

    kube.setPodState(NS, 'w-0', 'image-pull-backoff');
    assert.deepEqual(
      [waiting(await read())?.reason, waiting(await read())?.message],
      ['ImagePullBackOff', 'Back-off pulling image "registry.local/worker:1"'],
    );
    kube.setPodState(NS, 'w-0', 'err-image-pull');
    assert.equal(
      waiting(await read())?.message,
      'rpc error: code = NotFound desc = failed to pull and unpack image "registry.local/worker:1": failed to resolve reference "registry.local/worker:1": registry.local/worker:1: not found',
    );
    kube.setPodState(NS, 'w-0', 'invalid-image-name');
    assert.equal(waiting(await read())?.reason, 'InvalidImageName');
    kube.setPodState(NS, 'w-0', 'running');
    s = await read();
    assert.deepEqual([readyCond(s)?.status, s.containerStatuses?.[0]?.restartCount], ['True', 2], 'restarts are kept');

    await waitFor(() => events.length === 9, 'one MODIFIED per state change');
    assert.deepEqual(
      events.map((e) => e.type),
      ['ADDED', ...Array(8).fill('MODIFIED')],
    );
    assert.ok(
      events.every((e) => e.obj.metadata?.name === 'w-0'),
      'the unlabelled pod is not watched',
    );
    assert.deepEqual(
      events
        .slice(1)
        .map(
          (e) =>
            e.obj.status?.containerStatuses?.[0]?.state?.waiting?.reason ??
            (e.obj.status?.containerStatuses?.[0]?.ready ? 'ready' : 'unready'),
        ),
      [
        'ready',
        'unready',
        'CrashLoopBackOff',
        'CrashLoopBackOff',
        'ImagePullBackOff',
        'ErrImagePull',
        'InvalidImageName',
        'ready',
      ],
    );
    const rvs = events.map((e) => Number(e.obj.metadata?.resourceVersion));
    assert.deepEqual(
      [...rvs].sort((x, y) => x - y),
      rvs,
      'every change is a new resourceVersion',
    );
  });

  it("derives a Deployment's and its ReplicaSet's status from pod readiness, seen by a managed-by watch", async () => {
    kube.controller.enable({ delayMs: 20, pods: true });
    const events = await watchManaged<k8s.V1Deployment>('/apis/apps/v1/namespaces/default/deployments');
    await apps.createNamespacedDeployment({ namespace: NS, body: worker('w', { replicas: 4 }) });
    await deploymentWhere('w', (d) => d.status?.readyReplicas === 4 && available(d), 'w available');

    const [first] = await podsOf('w');
    kube.setPodState(NS, first!.metadata!.name!, 'not-ready');
    let d = await deploymentWhere('w', (x) => x.status?.readyReplicas === 3, 'one pod unready');
    assert.equal(cond(d, 'Available')?.status, 'True', 'maxUnavailable 25% of 4 tolerates one');
    assert.equal(d.status?.unavailableReplicas, 1);

    kube.setPodState(NS, { deployment: 'w' }, 'crash-loop');
    d = await deploymentWhere('w', (x) => x.status?.readyReplicas === undefined, 'no pod ready');
    assert.deepEqual(
      [cond(d, 'Available')?.status, cond(d, 'Available')?.reason, d.status?.unavailableReplicas, d.status?.replicas],
      ['False', 'MinimumReplicasUnavailable', 4, 4],
    );
    assert.equal(cond(d, 'Progressing')?.reason, 'NewReplicaSetAvailable', 'a finished rollout stays finished');
    const rs = (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=w' })).items[0]!;
    assert.deepEqual(
      [rs.status?.replicas, rs.status?.readyReplicas, rs.status?.availableReplicas],
      [4, undefined, undefined],
    );

    kube.setPodState(NS, { selector: 'app=w' }, 'running');
    await deploymentWhere('w', (x) => x.status?.readyReplicas === 4 && available(x), 'w available again');
    await waitFor(
      () =>
        events.some((e) => e.type === 'MODIFIED' && e.obj.status?.readyReplicas === 4 && events.indexOf(e) > 3) &&
        events.length >= 5,
      'watch events',
    );
    const availability = events.map((e) => cond(e.obj, 'Available')?.status).filter(Boolean);
    assert.deepEqual(
      availability.filter((v, i) => v !== availability[i - 1]).slice(-3),
      ['True', 'False', 'True'],
      'the watch saw availability go and come back',
    );
  });

  it('creates pods of a failing image in that state (ImagePullBackOff by predicate, InvalidImageName by itself)', async () => {
    kube.controller.enable({
      delayMs: 20,
      pods: true,
      podState: (image) => (image.endsWith(':missing') ? 'image-pull-backoff' : undefined),
    });
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: worker('gone', { replicas: 1, image: 'registry.local/worker:missing' }),
    });
    const pod = await waitFor(async () => (await podsOf('gone'))[0], 'the pod of gone');
    const cs = pod.status?.containerStatuses?.[0];
    assert.deepEqual(
      [pod.status?.phase, cs?.state?.waiting?.reason, cs?.ready, cs?.restartCount],
      ['Pending', 'ImagePullBackOff', false, 0],
    );
    const d = await deploymentWhere('gone', (x) => x.status?.updatedReplicas === 1, 'gone rolled its pod');
    assert.deepEqual(
      [
        cond(d, 'Available')?.status,
        cond(d, 'Progressing')?.status,
        cond(d, 'Progressing')?.reason,
        d.status?.unavailableReplicas,
      ],
      ['False', 'True', 'ReplicaSetUpdated', 1],
    );

    await apps.createNamespacedDeployment({
      namespace: NS,
      body: worker('bad', { replicas: 1, image: 'Registry.local/Worker:1' }),
    });
    const bad = await waitFor(async () => (await podsOf('bad'))[0], 'the pod of bad');
    assert.equal(bad.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'InvalidImageName');
    assert.match(
      bad.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '',
      /^Failed to apply default image tag "Registry.local\/Worker:1"/,
    );
  });

  it('keeps the old pods while a new template does not become ready, then retires them', async () => {
    kube.controller.enable({
      delayMs: 20,
      pods: true,
      podState: (image) => (image.endsWith(':2') ? 'crash-loop' : undefined),
    });
    await apps.createNamespacedDeployment({ namespace: NS, body: worker('w', { replicas: 1 }) });
    await deploymentWhere('w', available, 'w available');
    const [old] = await podsOf('w');
    await apps.patchNamespacedDeployment(
      {
        name: 'w',
        namespace: NS,
        body: { spec: { template: { spec: { containers: [{ name: 'worker', image: 'registry.local/worker:2' }] } } } },
      },
      merge,
    );
    const d = await deploymentWhere('w', (x) => x.status?.updatedReplicas === 1, 'the new pod');
    const pods = await podsOf('w');
    assert.equal(pods.length, 2, 'old and new pod side by side');
    assert.ok(pods.some((p) => p.metadata?.name === old!.metadata?.name && p.status?.containerStatuses?.[0]?.ready));
    assert.deepEqual(
      [d.status?.replicas, d.status?.readyReplicas, cond(d, 'Progressing')?.reason],
      [2, 1, 'ReplicaSetUpdated'],
    );
    const fresh = pods.find((p) => p.metadata?.name !== old!.metadata?.name)!;
    kube.setPodState(NS, fresh.metadata!.name!, 'running');
    await waitFor(async () => (await podsOf('w')).length === 1, 'the old pod retired');
    await deploymentWhere(
      'w',
      (x) => cond(x, 'Progressing')?.reason === 'NewReplicaSetAvailable' && x.status?.replicas === 1,
      'rollout done',
    );
  });

  it('rollout restart (the restartedAt annotation) makes new pods; scaling to 0 removes them all', async () => {
    kube.controller.enable({ delayMs: 20, pods: true });
    await apps.createNamespacedDeployment({ namespace: NS, body: worker('w', { replicas: 2 }) });
    await deploymentWhere('w', (d) => d.status?.readyReplicas === 2, 'w ready');
    const before = (await podsOf('w')).map((p) => p.metadata!.name!).sort();
    assert.equal(before.length, 2);
    const restartedAt = new Date().toISOString();
    await apps.patchNamespacedDeployment(
      {
        name: 'w',
        namespace: NS,
        body: {
          spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': restartedAt } } } },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    const after = await waitFor(async () => {
      const names = (await podsOf('w')).map((p) => p.metadata!.name!);
      return names.length === 2 && names.every((n) => !before.includes(n)) ? names : undefined;
    }, 'two new pods');
    const fresh = await core.readNamespacedPod({ name: after[0]!, namespace: NS });
    assert.equal(fresh.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'], restartedAt);

    await apps.replaceNamespacedDeploymentScale({
      name: 'w',
      namespace: NS,
      body: {
        apiVersion: 'autoscaling/v1',
        kind: 'Scale',
        metadata: { name: 'w', namespace: NS },
        spec: { replicas: 0 },
      },
    });
    await waitFor(async () => (await podsOf('w')).length === 0, 'no pods left');
    const d = await deploymentWhere(
      'w',
      (x) => x.status?.replicas === undefined && x.status?.observedGeneration === x.metadata?.generation,
      'w at 0',
    );
    assert.equal(available(d), true, 'zero of zero is available');
  });

  it('serves metrics.k8s.io PodMetrics and NodeMetrics, 404 without a sample, and can be absent', async () => {
    const raw = (p: string) => fetch(`${kube.url}${p}`, { headers: { Authorization: `Bearer ${kube.token}` } });
    for (const [name, app] of [
      ['w-0', 'w'],
      ['w-1', 'w'],
      ['db-0', 'db'],
    ] as const)
      kube.seed({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: NS, labels: { app } },
        spec: { containers: [{ name: 'worker', image: 'x' }] },
      } as KObj);
    kube.setPodMetrics(NS, 'w-0', { worker: { cpu: 0.25, memory: 64 * 1024 * 1024 } }, { window: '20.5s' });
    kube.setPodMetrics(NS, 'db-0', { worker: { cpu: '1234567n', memory: '1000' } });
    kube.setNodeMetrics('fake-node-0', { cpu: 2, memory: 4 * 1024 ** 3 });

    const one = (await (await raw('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/w-0')).json()) as Record<
      string,
      any
    >;
    assert.equal(one.kind, 'PodMetrics');
    assert.equal(one.apiVersion, 'metrics.k8s.io/v1beta1');
    assert.deepEqual([one.metadata.name, one.metadata.labels, one.window], ['w-0', { app: 'w' }, '20.5s']);
    assert.deepEqual(one.containers, [{ name: 'worker', usage: { cpu: '250m', memory: '64Mi' } }]);
    assert.ok(!Number.isNaN(Date.parse(one.timestamp)));

    const missing = await raw('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/w-1');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { message: string }).message, 'podmetrics.metrics.k8s.io "w-1" not found');

    const list = (await (
      await raw('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dw')
    ).json()) as Record<string, any>;
    assert.equal(list.kind, 'PodMetricsList');
    assert.deepEqual(
      list.items.map((i: any) => i.metadata.name),
      ['w-0'],
      'only sampled pods, filtered by label',
    );

    kube.podMetrics((p) => (p.metadata?.labels?.app === 'w' ? { worker: { cpu: 0.001, memory: 1024 } } : undefined));
    const metrics = new k8s.Metrics(kc);
    const all = await metrics.getPodMetrics(NS);
    assert.deepEqual(
      all.items.map((i) => [i.metadata.name, i.containers[0]!.usage.cpu, i.containers[0]!.usage.memory]),
      [
        ['db-0', '1234567n', '1000'],
        ['w-0', '250m', '64Mi'],
        ['w-1', '1m', '1Ki'],
      ],
    );
    const nodes = await metrics.getNodeMetrics();
    assert.deepEqual(
      nodes.items.map((n) => [n.metadata.name, n.usage.cpu, n.usage.memory]),
      [['fake-node-0', '2', '4Gi']],
    );

    const groups = async () =>
      ((await (await raw('/apis')).json()) as { groups: Array<{ name: string }> }).groups.map((g) => g.name);
    assert.ok((await groups()).includes('metrics.k8s.io'));
    kube.deny('list', 'pods', { group: 'metrics.k8s.io' });
    assert.equal((await raw('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods')).status, 403);
    assert.equal((await raw('/api/v1/namespaces/default/pods')).status, 200, 'core pods are another resource');
    kube.allowAll();

    kube.serveMetrics(false);
    assert.ok(!(await groups()).includes('metrics.k8s.io'));
    assert.equal((await raw('/apis/metrics.k8s.io/v1beta1')).status, 404);
    assert.equal((await raw('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/w-0')).status, 404);
    await assert.rejects(metrics.getPodMetrics(NS), (e: k8s.ApiException<unknown>) => e.code === 404);
  });
});

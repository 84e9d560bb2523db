/**
 * deploy/: the kustomize base and its overlays (sidecar, standalone), built with kubectl's kustomize. No
 * cluster runs here, so the built manifests are read, and the Role is enforced by the fake
 * kube-apiserver while the bundled k8s workflows run: the Role grants enough
 * for them, and nothing that no action uses.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ACTION_NEEDS, isUsed } from '../../../adapters/k8s/permissions.js';
import { loadConfig } from '../../../services/runtime-agent/src/config.js';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { startAgent, waitForStatus } from '../support/agent-process.js';
import { startFakeKube } from '../support/fake-kube/index.js';
import { deployment, event, NS, pod } from '../k8s/k8s-support.js';

const docs = (file: string) =>
  parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', file), 'utf8')).map((d) => d.toJSON());
/** kubectl's built-in kustomize (Debian's kubernetes-client in CI; KUBECTL names another one). */
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
/** What `kubectl kustomize deploy/<dir>` builds, as objects. */
function kustomize(dir: string): any[] {
  const r = spawnSync(KUBECTL, ['kustomize', join(REPO_ROOT, 'deploy', dir)], { encoding: 'utf8' });
  if (r.error) throw new Error(`${KUBECTL} kustomize: ${r.error.message} (install Debian's kubernetes-client)`);
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout).map((d) => d.toJSON());
}
const [role, binding] = docs('base/rbac/rbac.yaml');
const [serviceAccount] = docs('base/serviceaccount.yaml');
// Built in before() hooks: without kubectl, those tests fail and say so, and the rest still run.
let sidecarBuild: any[];
let sidecar: any;

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Every resource the fake serves that an action could touch, with its API group. */
const RESOURCES: Array<[string, string]> = [
  ['', 'pods'],
  ['', 'pods/log'],
  ['', 'events'],
  ['', 'configmaps'],
  ['', 'secrets'],
  ['', 'services'],
  ['apps', 'deployments'],
  ['apps', 'statefulsets'],
  ['apps', 'daemonsets'],
  ['apps', 'replicasets'],
  ['apps', 'deployments/scale'],
  ['apps', 'statefulsets/scale'],
  ['apps', 'replicasets/scale'],
];
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

function granted(verb: string, group: string, resource: string): boolean {
  return (role.rules as Rule[]).some(
    (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
  );
}

describe('deploy/ manifests', () => {
  before(() => {
    sidecarBuild = kustomize('overlays/sidecar');
    sidecar = sidecarBuild.find((o) => o.kind === 'Deployment');
  });

  it('bind a Role to the ServiceAccount the sidecar runs as', () => {
    assert.deepEqual([role.kind, binding.kind, serviceAccount.kind], ['Role', 'RoleBinding', 'ServiceAccount']);
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: role.metadata.name,
    });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: serviceAccount.metadata.name }]);
    assert.equal(sidecar.spec.template.spec.serviceAccountName, serviceAccount.metadata.name);
  });

  it('the Role grants only verbs some action uses, and every action is in the permission table', () => {
    for (const rule of role.rules as Rule[]) {
      for (const resource of rule.resources)
        for (const verb of rule.verbs) assert.ok(isUsed(verb, resource), `no action needs ${verb} ${resource}`);
    }
    assert.deepEqual(Object.keys(ACTION_NEEDS).sort(), [
      'apply',
      'delete',
      'events',
      'get',
      'logs',
      'patch',
      'restart',
      'restore',
      'scale',
      'wait',
    ]);
    const readme = readFileSync(join(REPO_ROOT, 'docs', 'kubernetes.md'), 'utf8');
    for (const action of Object.keys(ACTION_NEEDS))
      assert.match(readme, new RegExp(`\\| \`k8s\\.${action}\` \\|`), `README has an RBAC row for ${action}`);
  });

  it('re-creating a recorded pod needs create on pods, which the Role deliberately does not grant, and the README says so', () => {
    assert.equal(
      granted('create', '', 'pods'),
      false,
      'create on pods would let the agent run any pod as any service account',
    );
    assert.ok(
      ACTION_NEEDS.restore.some((n) => n.verb === 'create' && n.resource === '*'),
      'restore creates what is gone',
    );
    const readme = readFileSync(join(REPO_ROOT, 'docs', 'kubernetes.md'), 'utf8');
    const row = readme.split('\n').findLast((l) => l.startsWith('| `k8s.delete` |'))!; // the RBAC table's row
    assert.match(row, /`record: true` on pods.*`create pods`.*not granted by `deploy\/base\/rbac\/rbac\.yaml`/);
  });

  it('the sidecar: agent on the pod network with tokens, open probes, data on a volume, limits, non-root', () => {
    const pod = sidecar.spec.template.spec;
    const agent = pod.containers.find((c: any) => c.name === 'runtime-agent');
    assert.ok(pod.containers.length >= 2, 'next to an app container');
    const env = Object.fromEntries(agent.env.map((e: any) => [e.name, e.value]));
    assert.equal(env.HOST, '0.0.0.0');
    // The agent accepts this environment: a non-loopback HOST is allowed because tokens are configured.
    const config = loadConfig(env, []);
    assert.equal(config.tokensFile, '/etc/runtime-agent/tokens/tokens.yaml');
    // The kubelet probes over the pod IP the open endpoints, on the agent's port.
    assert.deepEqual(agent.livenessProbe.httpGet, { path: '/health', port: 'agent' });
    assert.deepEqual(agent.readinessProbe.httpGet, { path: '/ready', port: 'agent' });
    assert.equal(agent.ports.find((p: any) => p.name === 'agent').containerPort, Number(env.PORT));
    const data = agent.volumeMounts.find((m: any) => m.mountPath === env.DATA_DIR);
    assert.ok(pod.volumes.some((v: any) => v.name === data.name));
    assert.ok(agent.resources.requests.cpu && agent.resources.limits.memory);
    assert.equal(agent.securityContext.runAsNonRoot, true);
    assert.equal(
      typeof agent.securityContext.runAsUser,
      'number',
      'runAsNonRoot needs a numeric user for the image USER node',
    );
    // The pod's own grace period (Kubernetes' default 30 s unless the app sets one) outlasts the agent's drain.
    assert.ok((pod.terminationGracePeriodSeconds ?? 30) > Number(env.SHUTDOWN_GRACE_SECONDS));
    assert.equal(agent.securityContext.seccompProfile.type, 'RuntimeDefault', 'Pod Security "restricted"');
  });

  it('the sidecar: the tokens file comes from a Secret mounted read-only into the agent container only', () => {
    const pod = sidecar.spec.template.spec;
    const agent = pod.containers.find((c: any) => c.name === 'runtime-agent');
    const file = agent.env.find((e: any) => e.name === 'RUNTIME_AGENT_TOKENS_FILE').value;
    const mount = agent.volumeMounts.find((m: any) => file.startsWith(`${m.mountPath}/`));
    assert.ok(mount, 'the tokens file lies in a mounted volume');
    assert.equal(mount.readOnly, true);
    assert.equal(pod.volumes.find((v: any) => v.name === mount.name).secret.secretName, 'runtime-agent-tokens');
    for (const other of pod.containers.filter((c: any) => c.name !== 'runtime-agent')) {
      assert.ok(
        !(other.volumeMounts ?? []).some((m: any) => m.name === mount.name),
        `${other.name} does not see the tokens`,
      );
    }
  });

  it('the sidecar: only the agent container gets the service-account token, through a projected volume', () => {
    const pod = sidecar.spec.template.spec;
    const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
    assert.equal(pod.automountServiceAccountToken, false, 'no token in every container');
    const agent = pod.containers.find((c: any) => c.name === 'runtime-agent');
    const mount = agent.volumeMounts.find((m: any) => m.mountPath === SA_DIR);
    assert.ok(mount, 'the agent mounts it where the k8s adapter looks');
    assert.equal(mount.readOnly, true);
    for (const other of pod.containers.filter((c: any) => c.name !== 'runtime-agent')) {
      assert.ok(
        !(other.volumeMounts ?? []).some((m: any) => m.name === mount.name || m.mountPath === SA_DIR),
        `${other.name} has no token`,
      );
    }
    const sources = pod.volumes.find((v: any) => v.name === mount.name).projected.sources;
    assert.deepEqual(sources.find((x: any) => x.serviceAccountToken)?.serviceAccountToken.path, 'token');
    assert.deepEqual(sources.find((x: any) => x.configMap)?.configMap, {
      name: 'kube-root-ca.crt',
      items: [{ key: 'ca.crt', path: 'ca.crt' }],
    });
    assert.deepEqual(sources.find((x: any) => x.downwardAPI)?.downwardAPI.items, [
      { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
    ]);
    const readme = readFileSync(join(REPO_ROOT, 'docs', 'kubernetes.md'), 'utf8');
    assert.match(readme, /Do not point `restart` or `scale` at the Deployment the agent itself runs in/);
  });

  it('with the Role enforced by the API server, the bundled k8s workflows run, roll back, and anything else is forbidden', async function () {
    this.timeout(40_000);
    const kube = await startFakeKube();
    for (const [group, resource] of RESOURCES) {
      const denied = VERBS.filter((v) => !granted(v, group, resource));
      if (denied.length) kube.deny(denied, resource, { group });
    }
    const home = mkdtempSync(join(tmpdir(), 'ra-rbac-'));
    const agent = await startAgent({
      env: { HOME: home, K8S_SERVICE_ACCOUNT_DIR: join(home, 'none'), KUBECONFIG: kube.writeKubeconfigFile(home) },
    });
    const check: Server = createServer((_req, res) => ((res.statusCode = 503), res.end()));
    await new Promise<void>((r) => check.listen(0, '127.0.0.1', r));
    try {
      kube.controller.enable({ mode: 'complete', delayMs: 100 });
      kube.seed(deployment('web', 3));
      kube.seed(pod('web-1', { app: 'web' }));
      kube.setPodLogs(NS, 'web-1', 'app', [{ text: 'up' }], { previous: [{ text: 'crashed' }] });
      kube.seed(
        event('e1', { kind: 'Deployment', name: 'web' }, 'Warning', 'BackOff', 'back-off', '2026-01-01T00:00:00Z'),
      );
      const run = async (body: unknown) => {
        const r = await agent.request('POST', '/execute', body);
        assert.equal(r.status, 202, r.text);
        return waitForStatus(
          agent,
          r.body.execution_id,
          ['completed', 'failed', 'rolled_back', 'rollback_failed'],
          30_000,
        );
      };
      const restarted = await run({
        workflow_id: 'restart-unhealthy-1.0.0',
        parameters: { deployment: 'web', selector: 'app=web', waitSeconds: 20 },
      });
      assert.equal(restarted.status, 'completed', JSON.stringify(restarted.error));
      const checkUrl = `http://127.0.0.1:${(check.address() as AddressInfo).port}/`;
      const scaled = await run({ workflow_id: 'scale-and-restore-1.0.0', parameters: { deployment: 'web', checkUrl } });
      assert.equal(scaled.status, 'rolled_back', JSON.stringify(scaled.rollback));
      assert.equal((kube.get('apps/v1', 'Deployment', NS, 'web') as any).spec.replicas, 3);
      const beyond = await run({
        wpk_content: {
          apiVersion: 'wpk/v1',
          kind: 'Workflow',
          metadata: { name: 'beyond-the-role', version: '1.0.0' },
          spec: {
            handlers: [
              {
                name: 'cm',
                adapter: 'k8s',
                action: 'apply',
                with: { manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } } },
              },
            ],
          },
        },
      });
      assert.equal(beyond.error.type, 'forbidden');
    } finally {
      await agent.stop();
      agent.cleanup();
      await kube.close();
      check.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('deploy/ kustomize: base, sidecar and standalone overlays', () => {
  const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version;
  let standalone: any[];
  let managed: any[];
  before(() => {
    sidecarBuild ??= kustomize('overlays/sidecar');
    standalone = kustomize('overlays/standalone');
    managed = kustomize('overlays/standalone/managed-namespace');
  });
  const one = (objs: any[], kind: string, name?: string) => {
    const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    assert.equal(found.length, 1, `one ${kind} ${name ?? ''}`);
    return found[0];
  };
  const agentContainer = (d: any) => d.spec.template.spec.containers.find((c: any) => c.name === 'runtime-agent');
  const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);

  it('the base holds identity, RBAC, headless Service, NetworkPolicy, ServiceMonitor and the alert rules', () => {
    const base = kustomize('base');
    assert.deepEqual(base.map((o) => o.kind).sort(), [
      'NetworkPolicy',
      'PrometheusRule',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
    assert.deepEqual(one(base, 'PrometheusRule').spec, docs('prometheus/rules.yaml')[0].spec, 'the rules as written');
    const service = one(base, 'Service');
    assert.equal(service.spec.clusterIP, 'None', 'headless: one address per pod, never load-balanced');
    const monitor = one(base, 'ServiceMonitor');
    assert.ok(
      matches(monitor.spec.selector.matchLabels, service.metadata.labels),
      'the ServiceMonitor finds the Service',
    );
    assert.deepEqual(
      monitor.spec.endpoints.map((e: any) => [e.port, e.path]),
      [[service.spec.ports[0].name, '/metrics']],
    );
  });

  it("the sidecar overlay adds the agent to the app's Deployment and leaves the app's container as it was", () => {
    const [app] = docs('overlays/sidecar/app.yaml');
    const built = one(sidecarBuild, 'Deployment', app.metadata.name);
    const web = built.spec.template.spec.containers.find((c: any) => c.name === 'web');
    assert.deepEqual(web, app.spec.template.spec.containers[0]);
    assert.deepEqual(built.spec.selector, app.spec.selector, 'the selector is the app own');
    const labels = built.spec.template.metadata.labels;
    assert.equal(labels.app, 'web');
    assert.ok(matches(one(sidecarBuild, 'Service').spec.selector, labels), 'the Service selects the pods');
    // NetworkPolicies add up: the base's admits the agent's port only, the app's own admits the app's.
    const policies = sidecarBuild.filter((o) => o.kind === 'NetworkPolicy');
    const portsFor = (p: any) => p.spec.ingress.flatMap((r: any) => r.ports.map((x: any) => x.port));
    assert.ok(
      policies.every((p) => matches(p.spec.podSelector.matchLabels, labels)),
      'each selects the pods',
    );
    assert.deepEqual(portsFor(one(sidecarBuild, 'NetworkPolicy', 'runtime-agent')), [8080]);
    assert.ok(
      policies.some((p) => portsFor(p).includes(80)),
      "the app's port stays reachable",
    );
    // None of the agent's volumes can merge with one of the app's (a strategic merge joins them by name).
    const [appVolumes, agentVolumes] = [app.spec.template.spec.volumes ?? [], built.spec.template.spec.volumes];
    assert.equal(appVolumes.length, 0);
    for (const v of agentVolumes) assert.match(v.name, /^runtime-agent-/);
    // Pod-level settings the app may rely on stay the app's.
    assert.deepEqual(built.spec.template.spec.securityContext, app.spec.template.spec.securityContext);
    assert.equal(
      built.spec.template.spec.terminationGracePeriodSeconds,
      app.spec.template.spec.terminationGracePeriodSeconds,
    );
    const env = Object.fromEntries(
      agentContainer(built).env.map((e: any) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
    );
    assert.equal(env.POD_NAME, 'metadata.name');
    assert.equal(env.POD_NAMESPACE, 'metadata.namespace');
  });

  it('the standalone overlay: one agent on a PersistentVolumeClaim, Recreate, in its own namespace', () => {
    const d = one(standalone, 'Deployment', 'runtime-agent');
    assert.equal(d.spec.replicas, 1);
    assert.equal(d.spec.strategy.type, 'Recreate', 'one agent per store: the old pod lets go first');
    assert.equal(agentContainer(d).securityContext.seccompProfile.type, 'RuntimeDefault');
    const pvc = one(standalone, 'PersistentVolumeClaim');
    const mount = agentContainer(d).volumeMounts.find((m: any) => m.mountPath === '/data');
    const volume = d.spec.template.spec.volumes.find((v: any) => v.name === mount.name);
    assert.equal(volume.persistentVolumeClaim.claimName, pvc.metadata.name);
    assert.equal(one(standalone, 'Namespace').metadata.name, 'runtime-agent');
    for (const o of standalone.filter((x) => x.kind !== 'Namespace'))
      assert.equal(o.metadata.namespace, 'runtime-agent', `${o.kind} ${o.metadata.name}`);
    assert.ok(matches(one(standalone, 'Service').spec.selector, d.spec.template.metadata.labels));
    assert.deepEqual(loadConfig(envOf(agentContainer(d)), []).tokensFile, '/etc/runtime-agent/tokens/tokens.yaml');
  });

  it('managed-namespace grants the same Role in another namespace, bound to the standalone agent', () => {
    const r = one(managed, 'Role');
    assert.deepEqual(r.rules, role.rules);
    const b = one(managed, 'RoleBinding');
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'runtime-agent', namespace: 'runtime-agent' }]);
    // Its own names: a namespace with sidecars keeps the base's Role and RoleBinding runtime-agent.
    assert.deepEqual([r.metadata.name, b.metadata.name, b.roleRef.name], Array(3).fill('runtime-agent-standalone'));
    assert.ok(!r.metadata.namespace && !b.metadata.namespace, 'the namespace comes from kubectl apply -n');
  });

  it(`pins the agent image by tag (${version}), never latest`, () => {
    for (const built of [sidecarBuild, standalone]) {
      const image = agentContainer(one(built, 'Deployment')).image;
      assert.equal(image, `runtime-agent:${version}`);
    }
  });
});

function envOf(container: any): Record<string, string> {
  return Object.fromEntries(container.env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
}

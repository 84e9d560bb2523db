/**
 * The k8s adapter inside the running agent, against the fake kube-apiserver:
 * how the agent finds its cluster (kubeconfig, service account, /init, none),
 * the bundled k8s workflows, compensations through /execute and
 * /rollback/{id}, and a dry run of every mutating action that leaves the
 * cluster exactly as it was.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { runAgentUntilExit } from '../http/http-support.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { pkg, shellStep } from '../support/packages.js';
import { configMap, deployment, event, NS, pod } from './k8s-support.js';
import { RESTARTED_AT } from '../../../adapters/k8s/restart.js';

const ENDED = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

function k8sStep(name: string, action: string, input: Record<string, unknown>, more: Record<string, unknown> = {}) {
  return { name, adapter: 'k8s', action, with: input, ...more };
}

/** Starts a package whose one step gets Deployment web; resolves with the answer to POST /execute. */
function executeGetWeb(agent: AgentProcess) {
  return agent.request('POST', '/execute', {
    wpk_content: pkg('k8s-get', [k8sStep('get', 'get', { kind: 'Deployment', name: 'web' })]),
  });
}

/** /health says k8s is ready, configured from `source`, and a step getting Deployment web completes; returns /health. */
async function assertConnected(agent: AgentProcess, source: string) {
  const health = await agent.request('GET', '/health');
  assert.deepEqual(
    [health.body.adapters.k8s.ready, health.body.adapters.k8s.details.source],
    [true, source],
    JSON.stringify(health.body.adapters.k8s),
  );
  const r = await executeGetWeb(agent);
  assert.equal((await waitForStatus(agent, r.body.execution_id, ENDED)).status, 'completed');
  return health;
}

describe('k8s adapter in the agent', function () {
  this.timeout(30_000);
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'ra-home-'));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  describe('finding the cluster', () => {
    let kube: FakeKube;
    let agent: AgentProcess | undefined;
    afterEach(async () => {
      if (agent) {
        await agent.stop();
        agent.cleanup();
        agent = undefined;
      }
      await kube?.close();
    });

    it('without any configuration the adapter says so, a k8s package is refused before anything is queued, and the rest of the agent works', async () => {
      kube = await startFakeKube();
      agent = await startAgent({ env: { HOME: home, K8S_SERVICE_ACCOUNT_DIR: join(home, 'none') } });
      const health = await agent.request('GET', '/health');
      assert.equal(health.body.adapters.k8s.ready, false);
      assert.match(health.body.adapters.k8s.message, /not configured/);
      assert.equal(health.body.adapters.shell.ready, true);
      const wpk = pkg('k8s-get', [
        shellStep('first', ['true']),
        k8sStep('get', 'get', { kind: 'Deployment', name: 'web' }),
      ]);
      for (const dry_run of [false, true]) {
        const r = await agent.request('POST', '/execute', { wpk_content: wpk, dry_run });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.body.error_type, 'validation_error');
        assert.deepEqual(
          r.body.details.errors.map((e: { path: string }) => e.path),
          ['$.spec.handlers[1].adapter'],
        );
        assert.match(r.body.message, /adapter 'k8s' is not ready on this agent: no Kubernetes cluster is configured/);
      }
      assert.deepEqual((await agent.request('GET', '/executions')).body.executions, [], 'nothing was stored');
      const report = await agent.request('POST', '/validate', { wpk_content: wpk });
      assert.equal(report.body.valid, false);
      assert.match(report.body.errors[0].message, /k8s.*KUBECONFIG or K8S_SERVER/);
      const bundled = await agent.request('POST', '/validate', { workflow_id: 'restart-unhealthy-1.0.0' });
      assert.equal(bundled.body.valid, false, 'a bundled k8s package says so too');
      assert.equal((await agent.request('GET', '/ready')).status, 200);
    });

    it('a kubeconfig that does not parse stops the start in one line that says where, never showing its content', async () => {
      kube = await startFakeKube();
      const dir = mkdtempSync(join(home, 'bad-kc-'));
      const file = join(dir, 'kubeconfig');
      writeFileSync(
        file,
        `apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: ${kube.token}\n    foo: : bar\n`,
      );
      const exit = await runAgentUntilExit({
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: join(dir, 'data'),
        HOME: home,
        K8S_SERVICE_ACCOUNT_DIR: join(home, 'none'),
        KUBECONFIG: file,
      });
      assert.equal(exit.code, 2, exit.stderr);
      assert.equal(exit.stderr.trim().split('\n').length, 1, exit.stderr);
      assert.match(
        exit.stderr,
        /KUBECONFIG: .*kubeconfig is not valid YAML at line 7, column \d+ \(the content is not shown/,
      );
      assert.ok(!exit.stderr.includes(kube.token) && !exit.stdout.includes(kube.token));
    });

    it("KUBECONFIG with two files separated by ':' merges them as kubectl does: the cluster from one, the user from the other", async () => {
      kube = await startFakeKube();
      kube.seed(deployment('web', 1));
      const dir = mkdtempSync(join(home, 'two-kc-'));
      const whole = readFileSync(kube.writeKubeconfigFile(dir), 'utf8');
      // The first file has everything but the user, which the second file (also setting another current-context) adds.
      const users = whole.slice(whole.indexOf('users:\n'), whole.indexOf('contexts:\n'));
      writeFileSync(join(dir, 'first'), whole.replace(users, ''));
      writeFileSync(join(dir, 'second'), `${users}current-context: not-this-one\n`);
      agent = await startAgent({
        env: {
          HOME: home,
          K8S_SERVICE_ACCOUNT_DIR: join(home, 'none'),
          KUBECONFIG: `${join(dir, 'first')}:${join(dir, 'second')}`,
        },
      });
      await assertConnected(agent, 'kubeconfig');
    });

    it('POST /init with a server, token and CA connects, reports the identity, and never echoes the token', async () => {
      kube = await startFakeKube({ tls: true, token: 'init-token-0123456789' });
      agent = await startAgent({ env: { HOME: home, K8S_SERVICE_ACCOUNT_DIR: join(home, 'none') } });
      const bad = await agent.request('POST', '/init', { adapters: { k8s: { server: 'ftp://x', tokn: 'x' } } });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body.details.errors.map((e: any) => e.path).sort(), [
        '$.adapters.k8s.server',
        '$.adapters.k8s.token',
        '$.adapters.k8s.tokn',
      ]);
      const r = await agent.request('POST', '/init', {
        adapters: { k8s: { server: kube.url, token: kube.token, caData: kube.caPem } },
      });
      assert.equal(r.status, 200, r.text);
      const k8s = r.body.adapters.k8s;
      assert.equal(k8s.ready, true, JSON.stringify(k8s));
      assert.deepEqual(
        [k8s.details.source, k8s.details.server, k8s.details.identity.username],
        ['init', kube.url, kube.username],
      );
      assert.ok(k8s.actions.some((a: any) => a.id === 'scale' && a.mutates === true));
      assert.ok(!r.text.includes(kube.token));
      assert.ok(!agent.output().includes(kube.token), 'the token is not in the agent log');
      // An /init that does not name k8s leaves its configuration alone.
      const other = await agent.request('POST', '/init', { adapters: { shell: {} } });
      assert.equal(other.status, 200, other.text);
      assert.deepEqual([other.body.adapters.k8s.ready, other.body.adapters.k8s.details?.source], [true, 'init']);
      // A wrong token: the API server answers but rejects the agent, and /health says so.
      const wrong = await agent.request('POST', '/init', {
        adapters: { k8s: { server: kube.url, token: 'not-the-token', caData: kube.caPem } },
      });
      assert.equal(wrong.body.adapters.k8s.ready, false);
      assert.match(wrong.body.adapters.k8s.message, /^credentials rejected: .*rejected the agent's credentials/);
      // No CA for a self-signed server: TLS verification fails, and /health says which CA to give.
      const noCa = await agent.request('POST', '/init', { adapters: { k8s: { server: kube.url, token: kube.token } } });
      assert.equal(noCa.body.adapters.k8s.ready, false);
      assert.match(
        noCa.body.adapters.k8s.message,
        /TLS verification failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)/,
      );
      assert.match(noCa.body.adapters.k8s.message, /caData in POST \/init/);
    });

    it('K8S_SERVER with K8S_TOKEN_FILE connects (a trailing line break in the file is fine) and never shows the token', async () => {
      kube = await startFakeKube({ token: 'first-token-abcdef' });
      kube.seed(deployment('web', 1));
      const tokenFile = join(home, 'token');
      writeFileSync(tokenFile, 'first-token-abcdef\n');
      agent = await startAgent({
        env: {
          HOME: home,
          K8S_SERVICE_ACCOUNT_DIR: join(home, 'none'),
          K8S_SERVER: kube.url,
          K8S_TOKEN_FILE: tokenFile,
        },
      });
      const health = await assertConnected(agent, 'config');
      assert.ok(!health.text.includes('first-token-abcdef') && !agent.output().includes('first-token-abcdef'));
    });

    it('in a pod it uses the service account: token, CA and namespace file, and its namespace is the default', async () => {
      kube = await startFakeKube({ tls: true, namespace: 'team-a' });
      const sa = kube.writeServiceAccountDir(home);
      kube.seed({ ...deployment('web', 2), metadata: { name: 'web', namespace: 'team-a', labels: { app: 'web' } } });
      agent = await startAgent({
        env: {
          HOME: home,
          ...sa.env,
          K8S_SERVICE_ACCOUNT_DIR: join(sa.pathPrefix, 'var/run/secrets/kubernetes.io/serviceaccount'),
        },
      });
      const health = await agent.request('GET', '/health');
      assert.deepEqual(
        [
          health.body.adapters.k8s.ready,
          health.body.adapters.k8s.details.source,
          health.body.adapters.k8s.details.namespace,
        ],
        [true, 'in-cluster', 'team-a'],
      );
      const r = await executeGetWeb(agent);
      const rec = await waitForStatus(agent, r.body.execution_id, ENDED);
      assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
      assert.equal(rec.steps[0].outputs.object.metadata.namespace, 'team-a');
    });
  });

  describe('workflows against a cluster', () => {
    let kube: FakeKube;
    let agent: AgentProcess;
    let check: Server;
    let checkStatus = 200;
    let checkUrl: string;
    before(async () => {
      kube = await startFakeKube();
      const dir = mkdtempSync(join(home, 'kc-'));
      agent = await startAgent({
        env: { HOME: home, K8S_SERVICE_ACCOUNT_DIR: join(home, 'none'), KUBECONFIG: kube.writeKubeconfigFile(dir) },
      });
      check = createServer((_req, res) => {
        res.statusCode = checkStatus;
        res.end(checkStatus === 200 ? 'ok' : 'maintenance failed');
      });
      await new Promise<void>((r) => check.listen(0, '127.0.0.1', r));
      checkUrl = `http://127.0.0.1:${(check.address() as AddressInfo).port}/check`;
    });
    after(async () => {
      await agent.stop();
      agent.cleanup();
      await kube.close();
      check.close();
    });
    beforeEach(() => {
      for (const kind of ['Deployment', 'Pod', 'Event', 'ConfigMap', 'ReplicaSet'])
        for (const o of kube.list(kind)) kube.remove(o.apiVersion!, kind, o.metadata?.namespace, o.metadata!.name!);
      kube.controller.disable();
      kube.allowAll();
      kube.clearRequests();
      checkStatus = 200;
    });
    const run = async (body: Record<string, unknown>) => {
      const r = await agent.request('POST', '/execute', body);
      assert.equal(r.status, 202, r.text);
      return waitForStatus(agent, r.body.execution_id, ENDED, 20_000);
    };
    const web = () => kube.get('apps/v1', 'Deployment', NS, 'web') as any;

    it('restart-unhealthy collects warnings and crash logs, restarts, and waits for the rollout', async () => {
      kube.controller.enable({ mode: 'complete', delayMs: 200 });
      kube.seed(deployment('web', 2));
      kube.seed(pod('web-abc', { app: 'web' }));
      kube.setPodLogs(NS, 'web-abc', 'app', [{ text: 'starting' }], {
        previous: [{ text: 'panic: missing DATABASE_URL' }],
      });
      kube.seed(
        event(
          'w1',
          { kind: 'Deployment', name: 'web' },
          'Warning',
          'BackOff',
          'Back-off restarting failed container',
          '2026-01-01T00:00:00Z',
        ),
      );
      const rec = await run({
        workflow_id: 'restart-unhealthy-1.0.0',
        parameters: { deployment: 'web', selector: 'app=web', waitSeconds: 20 },
      });
      assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
      const byName = Object.fromEntries(rec.steps.map((s: any) => [s.name, s]));
      assert.equal(byName['warning-events'].outputs.warnings, 1);
      assert.equal(byName['crash-logs'].outputs.containers[0].text, 'panic: missing DATABASE_URL\n');
      assert.equal(web().spec.template.metadata.annotations[RESTARTED_AT], byName.restart.outputs.restartedAt);
      assert.equal(byName['wait-available'].outputs.met, true);
      const logs = await agent.request('GET', `/logs/${rec.execution_id}`);
      assert.ok(logs.body.logs.some((l: any) => l.message === '[web-abc/app] panic: missing DATABASE_URL'));
    });

    it('the bundled k8s workflows dry-run to completion and leave the cluster as it was', async () => {
      kube.seed(deployment('web', 3));
      const rv = kube.resourceVersion();
      for (const body of [
        { workflow_id: 'restart-unhealthy-1.0.0', parameters: { deployment: 'web', selector: 'app=web' } },
        { workflow_id: 'scale-and-restore-1.0.0', parameters: { deployment: 'web', checkUrl } },
      ]) {
        const rec = await run({ ...body, dry_run: true });
        assert.equal(rec.status, 'completed', `${body.workflow_id}: ${JSON.stringify(rec.error)}`);
      }
      assert.equal(kube.resourceVersion(), rv);
      assert.equal(web().spec.replicas, 3);
      assert.ok(
        kube.requests.filter((r) => !['GET'].includes(r.method)).every((r) => r.dryRun),
        'every write carried dryRun=All',
      );
    });

    it('scale-and-restore: a failed check rolls the replica count back through the default compensation', async () => {
      kube.seed(deployment('web', 3));
      checkStatus = 500;
      const rec = await run({ workflow_id: 'scale-and-restore-1.0.0', parameters: { deployment: 'web', checkUrl } });
      assert.equal(rec.status, 'rolled_back', JSON.stringify(rec.error));
      assert.equal(rec.error.step, 'check');
      assert.equal(web().spec.replicas, 3);
      const scales = kube.requests
        .filter((r) => r.method === 'PATCH' && r.subresource === 'scale' && r.name === 'web')
        .map((r) => (r.body as any)?.spec?.replicas ?? JSON.parse(String(r.body)).spec.replicas);
      assert.deepEqual(scales.slice(-2), [0, 3], 'scaled to 0, then restored to 3');
    });

    it('POST /rollback/{id} restores what apply, patch and delete changed, newest first', async () => {
      kube.seed(deployment('web', 2));
      kube.seed(configMap('old-settings', { a: '1' }));
      const rec = await run({
        wpk_content: pkg('change-things', [
          k8sStep('apply-config', 'apply', {
            manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { mode: 'new' } },
          }),
          k8sStep('bump', 'patch', {
            kind: 'Deployment',
            name: 'web',
            type: 'json',
            patch: [{ op: 'replace', path: '/spec/replicas', value: 4 }],
          }),
          k8sStep('drop-old', 'delete', { kind: 'ConfigMap', name: 'old-settings', record: true }),
        ]),
      });
      assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
      assert.equal(web().spec.replicas, 4);
      assert.equal(kube.get('v1', 'ConfigMap', NS, 'old-settings'), undefined);
      const r = await agent.request('POST', `/rollback/${rec.execution_id}`);
      assert.equal(r.status, 202, r.text);
      const after = await waitForStatus(agent, rec.execution_id, ['rolled_back', 'rollback_failed'], 20_000);
      assert.equal(after.status, 'rolled_back', JSON.stringify(after.rollback));
      assert.deepEqual(
        after.rollback.steps.map((s: any) => [s.compensates, s.outputs.action]),
        [
          ['drop-old', 'created'],
          ['bump', 'replaced'],
          ['apply-config', 'deleted'],
        ],
      );
      assert.equal(web().spec.replicas, 2);
      assert.deepEqual((kube.get('v1', 'ConfigMap', NS, 'old-settings') as any).data, { a: '1' });
      assert.equal(kube.get('v1', 'ConfigMap', NS, 'settings'), undefined);
    });

    it('a dry run of every mutating action changes nothing in the cluster', async () => {
      kube.seed(deployment('web', 2));
      kube.seed(pod('web-1', { app: 'web' }));
      kube.seed(configMap('settings', { a: '1' }));
      const rv = kube.resourceVersion();
      const before = JSON.stringify([kube.list('Deployment'), kube.list('Pod'), kube.list('ConfigMap')]);
      kube.clearRequests();
      const rec = await run({
        dry_run: true,
        wpk_content: pkg('everything-dry', [
          k8sStep('restart', 'restart', { kind: 'Deployment', name: 'web' }),
          k8sStep('scale', 'scale', { kind: 'Deployment', name: 'web', replicas: 5 }),
          k8sStep('apply', 'apply', {
            manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'new-one' }, data: { b: '2' } },
          }),
          k8sStep('patch', 'patch', {
            kind: 'ConfigMap',
            name: 'settings',
            type: 'merge',
            patch: { data: { a: 'changed' } },
          }),
          k8sStep('delete', 'delete', { kind: 'Pod', name: 'web-1', record: true }),
          k8sStep('restore', 'restore', { apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', previous: null }),
        ]),
      });
      assert.equal(rec.status, 'completed', JSON.stringify(rec.error));
      assert.ok(
        rec.steps.every((s: any) => s.outputs_source === 'dry_run'),
        'every action answered from its server-side dry run',
      );
      assert.equal(
        rec.steps.find((s: any) => s.name === 'patch').outputs.object.data.a,
        'changed',
        'the output is what the server says the object would become',
      );
      assert.equal(kube.resourceVersion(), rv);
      assert.equal(JSON.stringify([kube.list('Deployment'), kube.list('Pod'), kube.list('ConfigMap')]), before);
      const writes = kube.requests.filter((r) => r.method !== 'GET');
      assert.ok(writes.length >= 6);
      assert.ok(
        writes.every((r) => r.dryRun),
        JSON.stringify(writes.filter((r) => !r.dryRun).map((r) => `${r.method} ${r.path}`)),
      );
    });

    it('a forbidden step fails with the RBAC hint and is not retried', async () => {
      kube.seed(deployment('web', 2));
      kube.deny('patch', 'deployments/scale', { group: 'apps' });
      const rec = await run({
        wpk_content: pkg('denied', [
          k8sStep(
            'scale',
            'scale',
            { kind: 'Deployment', name: 'web', replicas: 1 },
            { retries: { count: 3, delayMs: 10 } },
          ),
        ]),
      });
      assert.equal(rec.status, 'failed');
      assert.equal(rec.error.type, 'forbidden');
      assert.match(
        rec.error.message,
        /may not patch deployments\/scale in API group apps; grant it in deploy\/base\/rbac\/rbac\.yaml/,
      );
      assert.equal(rec.steps[0].attempts, 1);
    });
  });
});

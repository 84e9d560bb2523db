/**
 * Readiness of the adapters: decided at once from the configuration, with no request and, for k8s,
 * without loading @kubernetes/client-node.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiAdapter } from '../../../adapters/api/index.js';
import { createFlowrunnerAdapter } from '../../../adapters/flowrunner/index.js';
import { KubeConnection, NO_CLUSTER_MESSAGE } from '../../../adapters/k8s/connection.js';
import { createShellAdapter } from '../../../adapters/shell/index.js';

const K8S_DIR = fileURLToPath(new URL('../../../adapters/k8s/', import.meta.url));

describe('adapter readiness', () => {
  let dir: string;
  const saved: Record<string, string | undefined> = {};
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ra-readiness-'));
    // Detection reads HOME (for ~/.kube/config) and the in-cluster variables: this machine's must not count.
    for (const k of ['HOME', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) saved[k] = process.env[k];
    process.env.HOME = dir;
    delete process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_PORT;
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const noServiceAccount = () => join(dir, 'no-service-account');

  it('k8s without any configuration is not ready and says how to configure a cluster', () => {
    const r = new KubeConnection({ serviceAccountDir: noServiceAccount() }).readiness();
    assert.deepEqual(r, { ready: false, configured: false, message: NO_CLUSTER_MESSAGE });
    assert.match(r.message!, /KUBECONFIG or K8S_SERVER \(with K8S_TOKEN_FILE\).*service account/);
  });

  it('k8s is ready with a kubeconfig, K8S_SERVER, a pod service account or /init, and names the source', () => {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, 'not read by readiness');
    const source = (c: KubeConnection) => c.readiness().details?.source;
    const sa = noServiceAccount();
    assert.equal(source(new KubeConnection({ serviceAccountDir: sa, kubeconfig })), 'kubeconfig');
    assert.equal(source(new KubeConnection({ serviceAccountDir: sa, server: 'https://k8s.test' })), 'config');
    mkdirSync(join(dir, '.kube'));
    writeFileSync(join(dir, '.kube', 'config'), '');
    assert.equal(source(new KubeConnection({ serviceAccountDir: sa })), 'kubeconfig', '~/.kube/config');
    rmSync(join(dir, '.kube'), { recursive: true });

    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'token');
    process.env.KUBERNETES_SERVICE_HOST = '10.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    assert.equal(source(new KubeConnection({ serviceAccountDir: sa })), 'in-cluster');
    delete process.env.KUBERNETES_SERVICE_HOST;

    const conn = new KubeConnection({ serviceAccountDir: sa });
    assert.equal(conn.readiness().ready, false);
    conn.init({ server: 'https://k8s.test', token: 't' });
    assert.deepEqual(conn.readiness(), { ready: true, details: { source: 'init' } });
    conn.init({});
    assert.equal(conn.readiness().ready, false, 'an empty /init goes back to detection');
  });

  it('k8s whose kubeconfig does not load is not ready once a step or health check has tried it', async () => {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, 'clusters: [unclosed');
    const conn = new KubeConnection({ serviceAccountDir: noServiceAccount(), kubeconfig });
    assert.equal(conn.readiness().ready, true, 'found: it is only read when used');
    await assert.rejects(conn.clients(), /not configured \(loading the configuration failed/);
    const r = conn.readiness();
    assert.equal(r.ready, false);
    assert.match(r.message!, /^not configured: loading the configuration failed: /);
  });

  it('k8s answers without loading @kubernetes/client-node, which no module of the adapter imports as a value', async () => {
    const valueImports = readdirSync(K8S_DIR)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) =>
        /^import (?!type )[^;]*from '@kubernetes\/client-node';/m.test(readFileSync(join(K8S_DIR, f), 'utf8')),
      );
    assert.deepEqual(valueImports, []);
    // A process of its own: this one has loaded client-node for other specs.
    const script = `
      import { createK8sAdapter } from ${JSON.stringify(join(K8S_DIR, 'index.ts'))};
      import { clientNodeIfLoaded } from ${JSON.stringify(join(K8S_DIR, 'client-node.ts'))};
      const adapter = createK8sAdapter({ serviceAccountDir: '/nonexistent', kubeconfig: ${JSON.stringify(join(dir, 'kubeconfig'))} });
      const readiness = adapter.readiness();
      process.stdout.write(JSON.stringify({ readiness, loaded: clientNodeIfLoaded() !== undefined }));`;
    writeFileSync(join(dir, 'kubeconfig'), '');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { timeout: 15_000, env: { PATH: process.env.PATH, HOME: dir } },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    assert.deepEqual(JSON.parse(out), { readiness: { ready: true, details: { source: 'kubeconfig' } }, loaded: false });
  });

  it('shell, api and flowrunner are ready; shell is not when its work root is missing', () => {
    assert.deepEqual(createApiAdapter().readiness(), { ready: true });
    assert.deepEqual(createFlowrunnerAdapter().readiness(), { ready: true });
    assert.equal(createShellAdapter().readiness().ready, true);
    const missing = createShellAdapter({ allowShell: false, workRoot: join(dir, 'missing') }).readiness();
    assert.equal(missing.ready, false);
    assert.match(missing.message!, /SHELL_WORK_ROOT/);
  });
});

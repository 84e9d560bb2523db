/**
 * deploy/flow-manager: the Role holds exactly the verbs the Flow Manager's commands use, docs/flow-manager.md
 * has a row for each command, and with the Role enforced by the fake API server (everything else denied)
 * every command works.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { FLOW_MANAGER_NEEDS, flowManagerRules } from '../../../adapters/k8s/workers/permissions.js';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { type Lab, startLab } from './lab.js';

const [role, binding] = parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy/flow-manager/rbac.yaml'), 'utf8')).map(
  (d) => d.toJSON(),
);
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
/** What the fake serves that the Flow Manager could touch, by group. */
const RESOURCES: Array<[string, string]> = [
  ['apps', 'deployments'],
  ['apps', 'replicasets'],
  ['apps', 'deployments/scale'],
  ['', 'pods'],
  ['', 'pods/proxy'],
  ['', 'pods/log'],
  ['', 'services'],
  ['', 'services/proxy'],
  ['', 'secrets'],
  ['', 'configmaps'],
  ['metrics.k8s.io', 'pods'],
];

function granted(verb: string, group: string, resource: string): boolean {
  return role.rules.some(
    (r: any) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
  );
}

describe('deploy/flow-manager: the Role', function () {
  this.timeout(90_000);

  it('grants exactly what the commands use, bound to the runtime-agent ServiceAccount, and the docs have every command', () => {
    const rules = new Map<string, Set<string>>();
    for (const r of role.rules)
      for (const g of r.apiGroups)
        for (const res of r.resources)
          rules.set(`${g}/${res}`, new Set([...(rules.get(`${g}/${res}`) ?? []), ...r.verbs]));
    const wanted = flowManagerRules();
    assert.deepEqual(
      [...rules].map(([k, v]) => [k, [...v].sort()]).sort(),
      [...wanted].map(([k, v]) => [k, [...v].sort()]).sort(),
    );
    assert.equal(binding.roleRef.name, role.metadata.name);
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'runtime-agent' }]);
    const doc = readFileSync(join(REPO_ROOT, 'docs/flow-manager.md'), 'utf8');
    for (const command of Object.keys(FLOW_MANAGER_NEEDS))
      assert.match(doc, new RegExp(`\\| \`?${command}\`? \\|`), `docs row for ${command}`);
  });

  describe('enforced by the API server', () => {
    let lab: Lab;
    before(async () => {
      lab = await startLab();
      for (const [group, resource] of RESOURCES) {
        const denied = VERBS.filter((v) => !granted(v, group, resource));
        if (denied.length) lab.kube.deny(denied, resource, { group });
      }
    });
    after(async () => {
      await lab?.close();
    });

    it('lets every command do its work, and nothing else', async () => {
      const admin = await lab.client('admin');
      const ok = async (name: string, payload: unknown) => {
        const a = await admin.command(name, payload);
        assert.equal(a.ok, true, `${name}: ${JSON.stringify(a.error)}`);
        return a;
      };
      await ok('create_container', { name: 'rbac' });
      await lab.startWorkers('rbac', 1);
      await ok('start_container', { container_id: 'rbac' });
      await ok('send_message', { container_id: 'rbac', message: { command: 'status' } });
      await ok('send_message', { container_id: 'rbac', message: { command: 'stop' } });
      const status = await ok('get_container_status', { container_id: 'rbac' });
      assert.equal(status.flow[0].metrics.app_status !== undefined, true);
      await ok('list_containers', {});
      await ok('restart_container', { container_id: 'rbac' });
      await ok('update_container', { container_id: 'rbac', environment: { A: 'b' } });
      await ok('stop_container', { container_id: 'rbac' });
      await ok('delete_container', { container_id: 'rbac' });
      // The watch ran with the same Role: its events came.
      await admin.waitForEvent('status_changed', (e) => e.container_id === 'rbac');
      // Nothing was refused along the way.
      assert.deepEqual(
        lab.kube.requests.filter((r) => r.code === 403).map((r) => `${r.method} ${r.path}`),
        [],
      );
    });
  });
});

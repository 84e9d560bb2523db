/**
 * What each Flow Manager command asks the API server to do, as RBAC rules in the workers' namespace: the
 * source of deploy/flow-manager/rbac.yaml and of the "RBAC per command" table of docs/flow-manager.md (a
 * test keeps the Role to exactly these, and runs the commands with it enforced).
 */
export interface FleetNeed {
  verb: 'get' | 'list' | 'watch' | 'create' | 'patch' | 'delete';
  /** `deployments`, `pods/proxy`, … */
  resource: string;
  /** The API group ('' for core). */
  group: '' | 'apps' | 'metrics.k8s.io';
  /** Only in this case. */
  when?: string;
}

const deployments = (verb: FleetNeed['verb'], when?: string): FleetNeed => ({
  verb,
  resource: 'deployments',
  group: 'apps',
  when,
});
const core = (verb: FleetNeed['verb'], resource: string, when?: string): FleetNeed => ({
  verb,
  resource,
  group: '',
  when,
});
const proxy = [
  core('get', 'secrets', 'the control token, once per worker'),
  core('get', 'pods/proxy', 'status, stats'),
  core('create', 'pods/proxy', 'start, stop, update'),
];

export const FLOW_MANAGER_NEEDS: Record<string, FleetNeed[]> = {
  create_container: [
    deployments('get'),
    core('get', 'services', 'what a half-done delete left behind'),
    core('delete', 'services', 'what a half-done delete left behind'),
    core('get', 'secrets', 'what a half-done delete left behind'),
    core('create', 'secrets'),
    deployments('create'),
    core('create', 'services'),
    core('delete', 'secrets', 'a later create failed'),
    deployments('delete', 'a later create failed'),
  ],
  start_container: [deployments('get'), deployments('patch'), core('list', 'pods')],
  stop_container: [deployments('get'), deployments('patch')],
  restart_container: [deployments('get'), deployments('patch'), core('list', 'pods')],
  update_container: [deployments('get'), deployments('patch'), core('list', 'pods')],
  delete_container: [
    deployments('get'),
    deployments('delete'),
    core('get', 'services'),
    core('delete', 'services'),
    core('get', 'secrets'),
    core('delete', 'secrets'),
  ],
  get_container_status: [
    deployments('get'),
    core('list', 'pods'),
    { verb: 'list', resource: 'pods', group: 'metrics.k8s.io', when: 'metrics-server is installed' },
    ...proxy.slice(0, 2),
  ],
  list_containers: [deployments('list'), core('list', 'pods')],
  send_message: [core('list', 'pods'), ...proxy],
  'the workers watch': [deployments('list'), deployments('watch'), core('list', 'pods'), core('watch', 'pods')],
  run_distributed: [
    deployments('list'),
    core('list', 'pods'),
    ...proxy,
    deployments('get'),
    deployments('patch'),
    core('create', 'secrets', 'the worker is new'),
    deployments('create', 'the worker is new'),
    core('create', 'services', 'the worker is new'),
  ],
};

/** The rules every command together needs: `group/resource` → verbs. */
export function flowManagerRules(): Map<string, Set<string>> {
  const rules = new Map<string, Set<string>>();
  for (const needs of Object.values(FLOW_MANAGER_NEEDS))
    for (const n of needs) {
      const key = `${n.group}/${n.resource}`;
      rules.set(key, (rules.get(key) ?? new Set()).add(n.verb));
    }
  return rules;
}

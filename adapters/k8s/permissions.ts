/**
 * What each action asks the API server to do, as RBAC verbs on resources:
 * the source of deploy/base/rbac/rbac.yaml and of the "RBAC per action" table of docs/kubernetes.md
 * (a test keeps the Role to these verbs). `*` is the target's own resource.
 */
export interface Need {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  /** A resource (`pods/log`), `*` for the target's resource, or `*\/scale` for its scale subresource. */
  resource: string;
  /** Only in this case. */
  when?: string;
}

export const ACTION_NEEDS: Record<string, Need[]> = {
  logs: [
    { verb: 'get', resource: 'pods', when: 'by name' },
    { verb: 'list', resource: 'pods', when: 'by selector' },
    { verb: 'get', resource: 'pods/log' },
  ],
  events: [{ verb: 'list', resource: 'events' }],
  get: [{ verb: 'get', resource: '*' }],
  restart: [
    { verb: 'get', resource: '*' },
    { verb: 'patch', resource: '*' },
  ],
  scale: [
    { verb: 'get', resource: '*/scale' },
    { verb: 'patch', resource: '*/scale' },
  ],
  wait: [
    { verb: 'get', resource: '*' },
    { verb: 'watch', resource: '*' },
  ],
  apply: [
    { verb: 'get', resource: '*' },
    { verb: 'patch', resource: '*' },
    { verb: 'create', resource: '*', when: 'the object does not exist yet' },
  ],
  patch: [
    { verb: 'get', resource: '*' },
    { verb: 'patch', resource: '*' },
  ],
  // With record on pods, the compensation (restore) re-creates the pod: `create pods`, which deploy/base/rbac/rbac.yaml does not grant.
  delete: [
    { verb: 'delete', resource: '*' },
    { verb: 'get', resource: '*', when: 'record: true' },
  ],
  restore: [
    { verb: 'get', resource: '*' },
    { verb: 'update', resource: '*', when: 'it exists' },
    { verb: 'create', resource: '*', when: 'it is gone' },
    { verb: 'delete', resource: '*', when: 'it did not exist before' },
    { verb: 'watch', resource: '*', when: 'it waits for an object being deleted' },
  ],
};

/** Whether some action uses `verb` on `resource` (`deployments`, `deployments/scale`, `pods/log`). */
export function isUsed(verb: string, resource: string): boolean {
  return Object.values(ACTION_NEEDS).some((needs) =>
    needs.some(
      (n) =>
        n.verb === verb &&
        (n.resource === resource ||
          (n.resource === '*' && !resource.includes('/')) ||
          (n.resource === '*/scale' && resource.endsWith('/scale'))),
    ),
  );
}

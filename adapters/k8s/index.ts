/**
 * Kubernetes, through @kubernetes/client-node: diagnose (logs, events, get),
 * act (restart, scale, apply, patch, delete), wait, and put things back
 * (restore). Every write goes out with dryRun=All in a dry run; every write
 * holds a per-object lock; writes that change an object record what it was,
 * so their default compensation can restore it.
 */
import type { Adapter } from '../contract.js';
import { applyAction } from './apply.js';
import { KubeConnection, type K8sSettings } from './connection.js';
import { deleteAction } from './delete.js';
import { eventsAction } from './events.js';
import { getAction } from './get.js';
import { ObjectLocks } from './locks.js';
import { logsAction } from './logs.js';
import { patchAction } from './patch.js';
import { restartAction } from './restart.js';
import { restoreAction } from './restore.js';
import { AttemptMemory, type K8sRuntime } from './runtime.js';
import { scaleAction } from './scale.js';
import { waitAction } from './wait.js';

export type { K8sSettings } from './connection.js';

export function createK8sAdapter(settings: K8sSettings = {}): Adapter {
  const rt: K8sRuntime = {
    conn: new KubeConnection(settings),
    locks: new ObjectLocks(),
    attempts: new AttemptMemory(),
  };
  const actions = [
    logsAction(rt),
    eventsAction(rt),
    getAction(rt),
    restartAction(rt),
    scaleAction(rt),
    waitAction(rt),
    applyAction(rt),
    patchAction(rt),
    deleteAction(rt),
    restoreAction(rt),
  ];
  return {
    name: 'k8s',
    description:
      'Kubernetes: logs, events, get, rollout restart, scale, wait, server-side apply, patch, delete and restore, with server-side dry run.',
    actions: Object.fromEntries(actions.map((a) => [a.id, a])),
    async init(config) {
      rt.conn.init(config);
    },
    health: () => rt.conn.health(),
  };
}

/**
 * Kubernetes, through @kubernetes/client-node: diagnose (logs, events, get),
 * act (restart, scale, apply, patch, delete), wait, and put things back
 * (restore). Every write goes out with dryRun=All in a dry run; every write
 * holds a per-object lock; writes that change an object record what it was,
 * so their default compensation can restore it.
 */
import type { Adapter } from '../contract.js';
import { K8sApi } from './api.js';
import { createApplyAction } from './apply.js';
import type { K8sSettings } from './cluster-source.js';
import { KubeConnection } from './connection.js';
import { createDeleteAction } from './delete.js';
import { createEventsAction } from './events.js';
import { createGetAction } from './get.js';
import { createLogsAction } from './logs.js';
import { createPatchAction } from './patch.js';
import { createRestartAction } from './restart.js';
import { createRestoreAction } from './restore.js';
import { createScaleAction } from './scale.js';
import { createWaitAction } from './wait.js';

export type { K8sSettings } from './cluster-source.js';

/** The adapter, and its API (its connection) for the Flow Manager's workers. */
export function createK8sAdapter(settings: K8sSettings = {}): Adapter & { k8s: K8sApi } {
  const k8s = new K8sApi(new KubeConnection(settings));
  const actions = [
    createLogsAction(k8s),
    createEventsAction(k8s),
    createGetAction(k8s),
    createRestartAction(k8s),
    createScaleAction(k8s),
    createWaitAction(k8s),
    createApplyAction(k8s),
    createPatchAction(k8s),
    createDeleteAction(k8s),
    createRestoreAction(k8s),
  ];
  return {
    name: 'k8s',
    description:
      'Kubernetes: logs, events, get, rollout restart, scale, wait, server-side apply, patch, delete and restore, with server-side dry run.',
    actions: Object.fromEntries(actions.map((a) => [a.id, a])),
    async init(config) {
      k8s.conn.init(config);
    },
    readiness: () => k8s.conn.readiness(),
    health: () => k8s.conn.health(),
    k8s,
  };
}

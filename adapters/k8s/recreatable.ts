import { type KObj, plain } from './runtime.js';

/** Labels the Job controller sets from the Job's uid; a re-created Job gets a new uid, so they must go. */
const JOB_UID_LABELS = ['controller-uid', 'batch.kubernetes.io/controller-uid'];

/**
 * A recorded object made fit to be created anew: without what ties it to the old incarnation or to
 * things the cluster allocated for it, which the API server would refuse or which would be wrong:
 * ownerReferences (the owner's uid), a Pod's node, a Job's generated selector and uid labels, a
 * Service's allocated cluster IPs and node ports, a claim's bound volume.
 */
export function recreatable(obj: KObj): KObj {
  const o = plain(obj);
  if (o.metadata) delete o.metadata.ownerReferences;
  const spec = o.spec;
  if (!spec || typeof spec !== 'object') return o;
  const core = o.apiVersion === 'v1';
  if (core && o.kind === 'Pod') delete spec.nodeName;
  if (core && o.kind === 'PersistentVolumeClaim') delete spec.volumeName;
  if (core && o.kind === 'Service') {
    // A headless Service (clusterIP: None) stays headless.
    if (spec.clusterIP !== 'None') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    if (Array.isArray(spec.ports)) for (const p of spec.ports) if (p && typeof p === 'object') delete p.nodePort;
    delete spec.healthCheckNodePort;
  }
  if (o.apiVersion?.startsWith('batch/') && o.kind === 'Job' && spec.manualSelector !== true) {
    delete spec.selector;
    for (const labels of [o.metadata?.labels, spec.template?.metadata?.labels]) {
      if (labels && typeof labels === 'object') for (const k of JOB_UID_LABELS) delete labels[k];
    }
  }
  return o;
}

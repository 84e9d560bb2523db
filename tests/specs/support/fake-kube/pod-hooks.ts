/**
 * kube.setPodState: the kubelet's side of a pod's life on demand. Finds the pods (by name, every pod of a
 * Deployment's ReplicaSets, or a label selector) and writes each one's new status (pod-states.ts) as the
 * kubelet would: a status update by manager `kubelet`, a new resourceVersion, a watch MODIFIED event.
 */
import { recordUpdate } from './apply.js';
import { clone, nowTimestamp, type KObj } from './json.js';
import { type PodState, type PodStateOptions, podStatusFor } from './pod-states.js';
import { registry } from './resources.js';
import { matchesLabels, parseLabelSelector } from './selectors.js';
import type { Store } from './store.js';

/** A pod's name, every pod of a Deployment, or the pods a label selector (`app=web,tier!=db`) matches. */
export type PodTarget = string | { deployment: string } | { selector: string };

function ownedBy(items: KObj[], owner: KObj): KObj[] {
  return items.filter((x) => x.metadata?.ownerReferences?.some((r) => r.uid === owner.metadata?.uid));
}

export function findPods(store: Store, ns: string, target: PodTarget): KObj[] {
  const podDef = registry.byKindName('Pod')!;
  if (typeof target === 'string') {
    const pod = store.get(podDef, ns, target)?.obj;
    if (!pod) throw new Error(`fake-kube: pod ${ns}/${target} not found`);
    return [pod];
  }
  const pods = store.list(podDef, ns).map((s) => s.obj);
  if ('selector' in target) {
    const reqs = parseLabelSelector(target.selector);
    return pods.filter((p) => matchesLabels(reqs, p.metadata?.labels));
  }
  const d = store.get(registry.byKindName('Deployment')!, ns, target.deployment)?.obj;
  if (!d) throw new Error(`fake-kube: deployment ${ns}/${target.deployment} not found`);
  const sets = ownedBy(
    store.list(registry.byKindName('ReplicaSet')!, ns).map((s) => s.obj),
    d,
  );
  return sets.flatMap((rs) => ownedBy(pods, rs));
}

export function setPodStates(
  store: Store,
  ns: string,
  target: PodTarget,
  state: PodState,
  opts: PodStateOptions = {},
): KObj[] {
  const podDef = registry.byKindName('Pod')!;
  return findPods(store, ns, target).map((pod) => {
    const stored = store.get(podDef, ns, pod.metadata!.name!)!;
    const next = clone(stored.obj);
    next.status = podStatusFor(stored.obj, state, opts);
    const owners = recordUpdate(stored.obj, next, stored.owners, 'kubelet', 'v1', nowTimestamp(), 'status');
    return store.put(podDef, next, owners);
  });
}

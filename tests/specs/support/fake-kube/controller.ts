/**
 * A stand-in for kube-controller-manager's workload controllers, off by default.
 *
 * When enabled, a Deployment/StatefulSet/DaemonSet whose metadata.generation moved (created, or a
 * spec change) is reconciled in two steps, each a status write that bumps resourceVersion and
 * emits a watch MODIFIED event:
 *  1. right away: status.observedGeneration = generation and an in-progress status (for a
 *     Deployment: updatedReplicas behind, Progressing=True reason ReplicaSetUpdated);
 *  2. after `delayMs`, by mode:
 *     - `complete`: replicas/updated/ready/available all at spec.replicas, conditions
 *       Available=True (MinimumReplicasAvailable) and Progressing=True (NewReplicaSetAvailable);
 *     - `stuck`: nothing more happens (the rollout never finishes);
 *     - `fail`: Progressing=False reason ProgressDeadlineExceeded.
 * With `pods: true`, completing also creates the ReplicaSet and Pods the real controllers would, with
 * ownerReferences and pod-template-hash / controller-revision-hash labels: Running and Ready, or in the state
 * `podState(image, pod)` names for a container's image (an unparseable image reference is InvalidImageName,
 * as the kubelet reports it). A Deployment's status and its ReplicaSets' then follow its pods' readiness
 * (deployment-status.ts), every time a pod changes; old ReplicaSets are scaled down once the new one's pods
 * are all ready (until then the old pods stay, as a rolling update leaves them).
 * Zero counts are left out of status, as the apiserver's omitempty encoding does.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { deploymentStatus, replicaSetStatus } from './deployment-status.js';
import { clone, deepEqual, nowTimestamp, type KObj } from './json.js';
import { isPodReady, type PodState, podStatusFor, validImageReference } from './pod-states.js';
import { registry, type ResourceDef } from './resources.js';
import type { Store, StoreEvent } from './store.js';

export type RolloutMode = 'complete' | 'stuck' | 'fail';

export interface ControllerOptions {
  /** Default false: nothing touches status unless the test does. */
  enabled?: boolean;
  mode?: RolloutMode;
  /** Time from a spec change to the rollout's outcome. Default 50 ms. */
  delayMs?: number;
  /** Also create ReplicaSets/Pods for the workloads. Default false. */
  pods?: boolean;
  /** Nodes a DaemonSet schedules onto. Default 1. */
  nodes?: number;
  /**
   * The state of each container of the pods the controller creates, by image (undefined: running and ready,
   * unless the image reference does not parse: InvalidImageName). E.g. `(image) => image.includes('nope') ?
   * 'image-pull-backoff' : undefined`.
   */
  podState?: (image: string, pod: KObj) => PodState | undefined;
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function safeEncode(bytes: Buffer, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += SAFE_ALPHABET[bytes[i]! % SAFE_ALPHABET.length];
  return s;
}

/** A pod-template-hash-like string (10 chars from the apiserver's "safe" alphabet). */
export function templateHash(template: unknown): string {
  return safeEncode(
    createHash('sha256')
      .update(JSON.stringify(template ?? {}))
      .digest(),
    10,
  );
}

function randomSuffix(): string {
  return safeEncode(randomBytes(5), 5);
}

/** The scheduling counts of a DaemonSet's status: one pod wanted and placed on each of `nodes` nodes. */
function scheduledOnEveryNode(nodes: number): Record<string, number> {
  return { currentNumberScheduled: nodes, numberMisscheduled: 0, desiredNumberScheduled: nodes };
}

/** A StatefulSet status's revisions: the update revision is the current template's, and so is `current` unless given. */
function revisions(o: KObj, hash: string, current?: string): Record<string, unknown> {
  const revision = `${o.metadata!.name}-${hash}`;
  return { currentRevision: current ?? revision, updateRevision: revision, collisionCount: 0 };
}

function omitZero(o: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) if (v === 0 || v === undefined) delete o[k];
  return o;
}

export class ControllerSim {
  enabled = false;
  mode: RolloutMode = 'complete';
  delayMs = 50;
  pods = false;
  nodes = 1;
  podState?: (image: string, pod: KObj) => PodState | undefined;
  private readonly overrides = new Map<string, RolloutMode>();
  private readonly timers = new Map<string, NodeJS.Timeout[]>();
  /** Template hash each workload last finished rolling out. */
  private readonly rolledOut = new Map<string, string>();
  private closed = false;

  constructor(private readonly store: Store) {
    store.listeners.add((ev) => this.onEvent(ev));
  }

  configure(opts: ControllerOptions): this {
    if (opts.mode !== undefined) this.mode = opts.mode;
    if (opts.delayMs !== undefined) this.delayMs = opts.delayMs;
    if (opts.pods !== undefined) this.pods = opts.pods;
    if (opts.nodes !== undefined) this.nodes = opts.nodes;
    if (opts.podState !== undefined) this.podState = opts.podState;
    if (opts.enabled === true) this.enable();
    if (opts.enabled === false) this.disable();
    return this;
  }

  /** Switches the controller on; workloads whose observedGeneration lags are reconciled now. */
  enable(opts: Omit<ControllerOptions, 'enabled'> = {}): this {
    this.configure(opts);
    if (this.enabled) return this;
    this.enabled = true;
    for (const kind of WORKLOADS) {
      const def = registry.byKindName(kind)!;
      for (const s of this.store.list(def)) {
        const observed = s.obj.status?.observedGeneration;
        if (observed === undefined || observed < (s.obj.metadata?.generation ?? 0)) this.schedule(def, s.obj);
      }
    }
    return this;
  }

  disable(): this {
    this.enabled = false;
    for (const ts of this.timers.values()) ts.forEach(clearTimeout);
    this.timers.clear();
    return this;
  }

  /** Mode for one workload only (e.g. one Deployment stuck while the others complete). */
  setMode(mode: RolloutMode, target?: { kind: string; namespace?: string; name: string }): this {
    if (!target) this.mode = mode;
    else this.overrides.set(`${target.kind}/${target.namespace ?? ''}/${target.name}`, mode);
    return this;
  }

  close(): void {
    this.closed = true;
    this.disable();
  }

  private id(kind: string, o: KObj): string {
    return `${kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
  }

  private onEvent(ev: StoreEvent): void {
    if (this.enabled && !this.closed && this.pods && ev.def.kind === 'Pod') return this.onPodEvent(ev);
    if (!this.enabled || this.closed || !WORKLOADS.has(ev.def.kind)) return;
    const id = this.id(ev.def.kind, ev.obj);
    if (ev.type === 'DELETED') {
      this.cancel(id);
      this.rolledOut.delete(id);
      return;
    }
    const gen = ev.obj.metadata?.generation ?? 0;
    if (ev.type === 'ADDED' || ev.prev?.metadata?.generation !== gen) this.schedule(ev.def, ev.obj);
  }

  private cancel(id: string): void {
    this.timers.get(id)?.forEach(clearTimeout);
    this.timers.delete(id);
  }

  private schedule(def: ResourceDef, o: KObj): void {
    const id = this.id(def.kind, o);
    this.cancel(id);
    const mode = this.overrides.get(id) ?? this.mode;
    const ns = o.metadata?.namespace;
    const name = o.metadata!.name!;
    const step = (fn: (cur: KObj) => void) => () => {
      if (!this.enabled || this.closed) return;
      const cur = this.store.get(def, ns, name);
      if (!cur || cur.obj.metadata?.deletionTimestamp) return;
      fn(clone(cur.obj));
    };
    const timers = [
      setTimeout(
        step((cur) => this.progressing(def, cur)),
        0,
      ),
    ];
    if (mode === 'complete')
      timers.push(
        setTimeout(
          step((cur) => this.complete(def, cur)),
          this.delayMs,
        ),
      );
    if (mode === 'fail')
      timers.push(
        setTimeout(
          step((cur) => this.failed(def, cur)),
          this.delayMs,
        ),
      );
    this.timers.set(id, timers);
  }

  private writeStatus(def: ResourceDef, cur: KObj, status: Record<string, unknown>): void {
    const stored = this.store.get(def, cur.metadata?.namespace, cur.metadata!.name!);
    if (!stored) return;
    const next = clone(stored.obj);
    next.status = status;
    this.store.put(def, next, stored.owners);
  }

  private condition(
    type: string,
    status: string,
    reason: string,
    message: string,
    prev?: any[],
  ): Record<string, string> {
    const now = nowTimestamp();
    const old = (prev ?? []).find((c) => c?.type === type);
    const transition = old && old.status === status ? old.lastTransitionTime : now;
    return { type, status, lastUpdateTime: now, lastTransitionTime: transition, reason, message };
  }

  private progressing(def: ResourceDef, o: KObj): void {
    const gen = o.metadata?.generation ?? 1;
    const prev = o.status ?? {};
    const hash = templateHash(o.spec?.template);
    const templateChanged = this.rolledOut.get(this.id(def.kind, o)) !== hash;
    if (def.kind === 'Deployment') {
      const desired = o.spec?.replicas ?? 1;
      const replicas = Math.max(desired, prev.replicas ?? 0);
      const available = Math.min(prev.availableReplicas ?? 0, replicas);
      const rs = `${o.metadata!.name}-${hash}`;
      const conds = [
        available >= desired && desired > 0
          ? this.condition(
              'Available',
              'True',
              'MinimumReplicasAvailable',
              'Deployment has minimum availability.',
              prev.conditions,
            )
          : this.condition(
              'Available',
              'False',
              'MinimumReplicasUnavailable',
              'Deployment does not have minimum availability.',
              prev.conditions,
            ),
        this.condition(
          'Progressing',
          'True',
          'ReplicaSetUpdated',
          `ReplicaSet "${rs}" is progressing.`,
          prev.conditions,
        ),
      ];
      this.writeStatus(
        def,
        o,
        omitZero({
          observedGeneration: gen,
          replicas,
          updatedReplicas: templateChanged ? 0 : desired,
          readyReplicas: Math.min(prev.readyReplicas ?? 0, replicas),
          availableReplicas: available,
          unavailableReplicas: Math.max(0, replicas - available),
          conditions: conds,
        }),
      );
    } else if (def.kind === 'StatefulSet') {
      const desired = o.spec?.replicas ?? 1;
      this.writeStatus(def, o, {
        observedGeneration: gen,
        replicas: Math.max(desired, prev.replicas ?? 0),
        ...omitZero({
          readyReplicas: prev.readyReplicas,
          currentReplicas: prev.currentReplicas,
          updatedReplicas: templateChanged ? 0 : desired,
        }),
        availableReplicas: prev.availableReplicas ?? 0,
        ...revisions(o, hash, prev.currentRevision),
      });
    } else {
      const n = this.nodes;
      this.writeStatus(def, o, {
        ...scheduledOnEveryNode(n),
        numberReady: prev.numberReady ?? 0,
        observedGeneration: gen,
        ...omitZero({
          updatedNumberScheduled: templateChanged ? 0 : n,
          numberAvailable: prev.numberAvailable,
          numberUnavailable: n - (prev.numberAvailable ?? 0),
        }),
      });
    }
  }

  private complete(def: ResourceDef, o: KObj): void {
    const gen = o.metadata?.generation ?? 1;
    const hash = templateHash(o.spec?.template);
    const prev = o.status ?? {};
    if (this.pods) this.ensurePods(def, o, hash);
    if (def.kind === 'Deployment' && this.pods) {
      this.rolledOut.set(this.id(def.kind, o), hash);
      this.syncDeployment(o.metadata?.namespace, o.metadata!.name!);
      return;
    }
    if (def.kind === 'Deployment') {
      const desired = o.spec?.replicas ?? 1;
      const rs = `${o.metadata!.name}-${hash}`;
      this.writeStatus(
        def,
        o,
        omitZero({
          observedGeneration: gen,
          replicas: desired,
          updatedReplicas: desired,
          readyReplicas: desired,
          availableReplicas: desired,
          conditions: [
            this.condition(
              'Available',
              'True',
              'MinimumReplicasAvailable',
              'Deployment has minimum availability.',
              prev.conditions,
            ),
            this.condition(
              'Progressing',
              'True',
              'NewReplicaSetAvailable',
              `ReplicaSet "${rs}" has successfully progressed.`,
              prev.conditions,
            ),
          ],
        }),
      );
    } else if (def.kind === 'StatefulSet') {
      const desired = o.spec?.replicas ?? 1;
      this.writeStatus(def, o, {
        observedGeneration: gen,
        replicas: desired,
        ...omitZero({ readyReplicas: desired, currentReplicas: desired, updatedReplicas: desired }),
        availableReplicas: desired,
        ...revisions(o, hash),
      });
    } else {
      const n = this.nodes;
      this.writeStatus(def, o, {
        ...scheduledOnEveryNode(n),
        numberReady: n,
        observedGeneration: gen,
        ...omitZero({ updatedNumberScheduled: n, numberAvailable: n }),
      });
    }
    this.rolledOut.set(this.id(def.kind, o), hash);
  }

  private failed(def: ResourceDef, o: KObj): void {
    if (def.kind !== 'Deployment') return;
    const prev = o.status ?? {};
    const rs = `${o.metadata!.name}-${templateHash(o.spec?.template)}`;
    const conds = (Array.isArray(prev.conditions) ? prev.conditions : []).filter((c: any) => c?.type !== 'Progressing');
    conds.push(
      this.condition(
        'Progressing',
        'False',
        'ProgressDeadlineExceeded',
        `ReplicaSet "${rs}" has timed out progressing.`,
        prev.conditions,
      ),
    );
    this.writeStatus(def, o, { ...prev, conditions: conds });
  }

  // -------------------------------------------------------------------------------------------
  // ReplicaSets and Pods

  private ownerRef(o: KObj) {
    return {
      apiVersion: o.apiVersion!,
      kind: o.kind!,
      name: o.metadata!.name!,
      uid: o.metadata!.uid!,
      controller: true,
      blockOwnerDeletion: true,
    };
  }

  private putNew(def: ResourceDef, obj: KObj): void {
    obj.metadata!.uid ??= randomUUID();
    obj.metadata!.creationTimestamp ??= nowTimestamp();
    if (def.generation) obj.metadata!.generation ??= 1;
    this.store.put(def, obj, []);
  }

  private pod(owner: KObj, template: any, name: string, labels: Record<string, string>, nodeName: string): KObj {
    const now = nowTimestamp();
    const spec = clone(template?.spec ?? {});
    spec.nodeName = nodeName;
    const cond = (type: string) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: now });
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: owner.metadata!.namespace,
        labels: { ...(template?.metadata?.labels ?? {}), ...labels },
        ...(template?.metadata?.annotations ? { annotations: clone(template.metadata.annotations) } : {}),
        ownerReferences: [this.ownerRef(owner)],
      },
      spec,
      status: {
        phase: 'Running',
        conditions: [cond('Initialized'), cond('Ready'), cond('ContainersReady'), cond('PodScheduled')],
        hostIP: '10.0.0.1',
        podIP: `10.244.0.${1 + (randomBytes(1)[0]! % 250)}`,
        startTime: now,
        containerStatuses: (Array.isArray(spec.containers) ? spec.containers : []).map((c: any) => ({
          name: c.name,
          state: { running: { startedAt: now } },
          lastState: {},
          ready: true,
          restartCount: 0,
          image: c.image,
          imageID: `${c.image}@sha256:${createHash('sha256').update(String(c.image)).digest('hex')}`,
          containerID: `containerd://${randomBytes(32).toString('hex')}`,
          started: true,
        })),
        qosClass: 'BestEffort',
      },
    };
  }

  /** A new pod of the controller's, its containers in the states `podState` names for their images. */
  private podInState(owner: KObj, template: any, name: string, labels: Record<string, string>, node: string): KObj {
    const p = this.pod(owner, template, name, labels, node);
    for (const c of p.spec?.containers ?? []) {
      const image = String(c?.image ?? '');
      const state = this.podState?.(image, p) ?? (validImageReference(image) ? undefined : 'invalid-image-name');
      if (state && state !== 'running') p.status = podStatusFor(p, state, { container: c.name });
    }
    return p;
  }

  private ownedBy(def: ResourceDef, owner: KObj): KObj[] {
    return this.store
      .list(def, owner.metadata?.namespace)
      .map((s) => s.obj)
      .filter((x) => x.metadata?.ownerReferences?.some((r) => r.uid === owner.metadata?.uid));
  }

  /** Scales the Deployment's other ReplicaSets to 0 (their pods go) once every pod of `rsName` is ready. */
  private retireOldSets(d: KObj, rsName: string): void {
    const rsDef = registry.byKindName('ReplicaSet')!;
    const podDef = registry.byKindName('Pod')!;
    const ns = d.metadata?.namespace;
    const rs = this.store.get(rsDef, ns, rsName)?.obj;
    if (!rs) return;
    const pods = this.ownedBy(podDef, rs);
    if (pods.length < (rs.spec?.replicas ?? 0) || !pods.every(isPodReady)) return;
    for (const old of this.ownedBy(rsDef, d)) {
      if (old.metadata!.name === rsName || (old.spec?.replicas ?? 0) === 0) continue;
      const next = clone(old);
      next.spec.replicas = 0;
      next.status = { replicas: 0, observedGeneration: next.metadata!.generation ?? 1 };
      this.store.put(rsDef, next, this.store.get(rsDef, ns, old.metadata!.name!)!.owners);
      for (const p of this.ownedBy(podDef, old)) this.store.remove(podDef, ns, p.metadata!.name!);
    }
  }

  private readonly pendingSyncs = new Set<string>();

  /** A pod of a Deployment's ReplicaSet changed: its status (and the ReplicaSet's) follow, a moment later. */
  private onPodEvent(ev: StoreEvent): void {
    const rsRef = ev.obj.metadata?.ownerReferences?.find((r) => r.kind === 'ReplicaSet');
    if (!rsRef) return;
    const ns = ev.obj.metadata?.namespace;
    const rs = this.store.get(registry.byKindName('ReplicaSet')!, ns, rsRef.name)?.obj;
    const dRef = rs?.metadata?.ownerReferences?.find((r) => r.kind === 'Deployment');
    if (!dRef) return;
    const key = `${ns ?? ''}/${dRef.name}`;
    if (this.pendingSyncs.has(key)) return;
    this.pendingSyncs.add(key);
    setImmediate(() => {
      this.pendingSyncs.delete(key);
      if (this.enabled && !this.closed) this.syncDeployment(ns, dRef.name);
    });
  }

  /** Writes the ReplicaSets' and the Deployment's status from their pods (only what changed). */
  private syncDeployment(ns: string | undefined, name: string): void {
    const dDef = registry.byKindName('Deployment')!;
    const rsDef = registry.byKindName('ReplicaSet')!;
    const podDef = registry.byKindName('Pod')!;
    const d = this.store.get(dDef, ns, name)?.obj;
    if (!d || d.metadata?.deletionTimestamp) return;
    const rsName = `${name}-${templateHash(d.spec?.template)}`;
    if (this.rolledOut.get(this.id('Deployment', d)) === templateHash(d.spec?.template)) this.retireOldSets(d, rsName);
    const sets = this.ownedBy(rsDef, d).map((rs) => ({ rs, pods: this.ownedBy(podDef, rs) }));
    const newRS = sets.find((s) => s.rs.metadata?.name === rsName)?.rs;
    if (!newRS) return;
    for (const { rs, pods } of sets) {
      const status = replicaSetStatus(rs, pods);
      if (!deepEqual(status, rs.status ?? {})) this.writeStatus(rsDef, rs, status);
    }
    const status = deploymentStatus(d, { newRS, sets });
    if (!deepEqual(status, d.status ?? {})) this.writeStatus(dDef, d, status);
  }

  private ensurePods(def: ResourceDef, o: KObj, hash: string): void {
    const podDef = registry.byKindName('Pod')!;
    const ns = o.metadata!.namespace;
    const template = o.spec?.template;
    if (def.kind === 'Deployment') {
      const rsDef = registry.byKindName('ReplicaSet')!;
      const rsName = `${o.metadata!.name}-${hash}`;
      const desired = o.spec?.replicas ?? 1;
      let rs = this.store.get(rsDef, ns, rsName)?.obj;
      const labels = { 'pod-template-hash': hash };
      const rsSpec = {
        replicas: desired,
        selector: { ...o.spec.selector, matchLabels: { ...(o.spec.selector?.matchLabels ?? {}), ...labels } },
        template: {
          ...clone(template),
          metadata: {
            ...clone(template?.metadata ?? {}),
            labels: { ...(template?.metadata?.labels ?? {}), ...labels },
          },
        },
      };
      // Readiness counts follow from the pods (syncDeployment).
      const rsStatus = omitZero({ replicas: desired, fullyLabeledReplicas: desired, observedGeneration: 1 });
      if (!rs) {
        this.putNew(rsDef, {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          metadata: {
            name: rsName,
            namespace: ns,
            labels: { ...(template?.metadata?.labels ?? {}), ...labels },
            ownerReferences: [this.ownerRef(o)],
          },
          spec: rsSpec,
          status: rsStatus,
        });
        rs = this.store.get(rsDef, ns, rsName)!.obj;
      } else {
        const next = clone(rs);
        next.spec = rsSpec;
        next.status = { ...rsStatus, observedGeneration: next.metadata!.generation ?? 1 };
        this.store.put(rsDef, next, this.store.get(rsDef, ns, rsName)!.owners);
        rs = this.store.get(rsDef, ns, rsName)!.obj;
      }
      const have = this.ownedBy(podDef, rs);
      for (const p of have.slice(desired)) this.store.remove(podDef, ns, p.metadata!.name!);
      for (let i = have.length; i < desired; i++)
        this.putNew(podDef, this.podInState(rs, rsSpec.template, `${rsName}-${randomSuffix()}`, labels, 'fake-node-0'));
      this.retireOldSets(o, rsName);
    } else if (def.kind === 'StatefulSet') {
      const desired = o.spec?.replicas ?? 1;
      const revision = `${o.metadata!.name}-${hash}`;
      const have = new Map(this.ownedBy(podDef, o).map((p) => [p.metadata!.name!, p]));
      for (const [name, p] of have) {
        const ordinal = Number(name.slice(o.metadata!.name!.length + 1));
        if (ordinal >= desired || p.metadata?.labels?.['controller-revision-hash'] !== revision)
          this.store.remove(podDef, ns, name);
      }
      for (let i = 0; i < desired; i++) {
        const name = `${o.metadata!.name}-${i}`;
        if (this.store.get(podDef, ns, name)) continue;
        this.putNew(
          podDef,
          this.podInState(
            o,
            template,
            name,
            {
              'controller-revision-hash': revision,
              'statefulset.kubernetes.io/pod-name': name,
              'apps.kubernetes.io/pod-index': String(i),
            },
            'fake-node-0',
          ),
        );
      }
    } else {
      const revision = hash;
      for (const p of this.ownedBy(podDef, o))
        if (p.metadata?.labels?.['controller-revision-hash'] !== revision)
          this.store.remove(podDef, ns, p.metadata!.name!);
      const have = this.ownedBy(podDef, o);
      for (let i = 0; i < this.nodes; i++) {
        const node = `fake-node-${i}`;
        if (have.some((p) => p.spec?.nodeName === node)) continue;
        this.putNew(
          podDef,
          this.podInState(
            o,
            template,
            `${o.metadata!.name}-${randomSuffix()}`,
            { 'controller-revision-hash': revision, 'pod-template-generation': String(o.metadata?.generation ?? 1) },
            node,
          ),
        );
      }
    }
  }
}

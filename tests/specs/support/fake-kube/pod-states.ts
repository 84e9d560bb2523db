/**
 * Pod statuses as the kubelet writes them, for the states a test puts a pod into (kube.setPodState) or the
 * controller creates pods in (ControllerOptions.podState): running and ready, running but not ready,
 * CrashLoopBackOff (each call one more restart: restartCount + 1, lastState.terminated, the kubelet's
 * back-off message doubling from 10s to 5m0s), ImagePullBackOff, ErrImagePull and InvalidImageName (waiting,
 * with the kubelet's messages; the pod stays Pending while no container has ever run).
 *
 * Phase, the Ready/ContainersReady conditions (False: reason ContainersNotReady, message
 * `containers with unready status: [a b]`) follow from the container statuses.
 */
import { createHash, randomBytes } from 'node:crypto';
import { clone, nowTimestamp, type KObj } from './json.js';

export type PodState =
  | 'running'
  | 'not-ready'
  | 'crash-loop'
  | 'image-pull-backoff'
  | 'err-image-pull'
  | 'invalid-image-name';

export const POD_STATES: readonly PodState[] = [
  'running',
  'not-ready',
  'crash-loop',
  'image-pull-backoff',
  'err-image-pull',
  'invalid-image-name',
];

export interface PodStateOptions {
  /** Only this container (default: every container of the pod). */
  container?: string;
  /** crash-loop: the exit code of the container that died (default 1). */
  exitCode?: number;
  /** crash-loop: lastState.terminated.reason (default `Error`; `OOMKilled` with exit code 137, say). */
  reason?: string;
  /** Replaces the waiting message the kubelet would write. */
  message?: string;
}

const DOCKER_REF =
  /^(?:(?:[a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?$/;

/** Whether the kubelet could parse an image reference (else the container is InvalidImageName). */
export function validImageReference(image: string): boolean {
  return DOCKER_REF.test(image);
}

/** The fully qualified reference containerd pulls: docker.io/library/nginx:latest for `nginx`. */
export function normalizedImage(image: string): string {
  const slash = image.indexOf('/');
  const first = slash === -1 ? '' : image.slice(0, slash);
  let ref = image;
  if (slash === -1) ref = `docker.io/library/${image}`;
  else if (!/[.:]/.test(first) && first !== 'localhost') ref = `docker.io/${image}`;
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  if (!last.includes(':') && !ref.includes('@')) ref += ':latest';
  return ref;
}

function goDuration(seconds: number): string {
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${seconds % 60}s`;
}

function waitingMessage(state: PodState, image: string, name: string, pod: KObj, restarts: number): string {
  switch (state) {
    case 'crash-loop': {
      const backoff = Math.min(300, 10 * 2 ** Math.max(0, restarts - 1));
      const m = pod.metadata ?? {};
      return `back-off ${goDuration(backoff)} restarting failed container=${name} pod=${m.name}_${m.namespace}(${m.uid})`;
    }
    case 'image-pull-backoff':
      return `Back-off pulling image "${image}"`;
    case 'err-image-pull': {
      const ref = normalizedImage(image);
      return `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`;
    }
    default: {
      const why = image.toLowerCase() !== image ? 'repository name must be lowercase' : '';
      return `Failed to apply default image tag "${image}": couldn't parse image reference "${image}": invalid reference format${why ? `: ${why}` : ''}`;
    }
  }
}

const WAITING_REASONS: Record<string, string> = {
  'crash-loop': 'CrashLoopBackOff',
  'image-pull-backoff': 'ImagePullBackOff',
  'err-image-pull': 'ErrImagePull',
  'invalid-image-name': 'InvalidImageName',
};

const containerId = () => `containerd://${randomBytes(32).toString('hex')}`;
const imageId = (image: string) => `${image}@sha256:${createHash('sha256').update(image).digest('hex')}`;

function containerStatus(pod: KObj, spec: any, prev: any, state: PodState, opts: PodStateOptions, now: string) {
  const name: string = spec.name;
  const image: string = spec.image;
  const restartCount: number = prev?.restartCount ?? 0;
  const wasRunning = prev?.state?.running;
  if (state === 'running' || state === 'not-ready') {
    return {
      name,
      state: { running: { startedAt: wasRunning?.startedAt ?? now } },
      lastState: prev?.lastState ?? {},
      ready: state === 'running',
      restartCount,
      image,
      imageID: imageId(image),
      containerID: wasRunning && prev?.containerID ? prev.containerID : containerId(),
      started: true,
    };
  }
  if (state === 'crash-loop') {
    const restarts = restartCount + 1;
    return {
      name,
      state: {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: opts.message ?? waitingMessage(state, image, name, pod, restarts),
        },
      },
      lastState: {
        terminated: {
          exitCode: opts.exitCode ?? 1,
          reason: opts.reason ?? 'Error',
          startedAt: wasRunning?.startedAt ?? prev?.lastState?.terminated?.finishedAt ?? now,
          finishedAt: now,
          containerID: prev?.containerID ?? containerId(),
        },
      },
      ready: false,
      restartCount: restarts,
      image,
      imageID: imageId(image),
      containerID: prev?.containerID ?? containerId(),
      started: false,
    };
  }
  return {
    name,
    state: {
      waiting: {
        reason: WAITING_REASONS[state],
        message: opts.message ?? waitingMessage(state, image, name, pod, restartCount),
      },
    },
    lastState: prev?.lastState ?? {},
    ready: false,
    restartCount,
    image,
    imageID: '',
    started: false,
  };
}

function condition(type: string, ok: boolean, prev: any[], now: string, unready: string[]) {
  const old = prev.find((c) => c?.type === type);
  const status = ok ? 'True' : 'False';
  return {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now,
    ...(ok ? {} : { reason: 'ContainersNotReady', message: `containers with unready status: [${unready.join(' ')}]` }),
  };
}

/** The status the kubelet would write for `pod` with its (or one) container(s) in `state`. */
export function podStatusFor(pod: KObj, state: PodState, opts: PodStateOptions = {}): Record<string, any> {
  const now = nowTimestamp();
  const prev = clone(pod.status ?? {});
  const specs: any[] = Array.isArray(pod.spec?.containers) ? pod.spec.containers : [];
  if (opts.container && !specs.some((c) => c?.name === opts.container))
    throw new Error(`fake-kube: pod ${pod.metadata?.name} has no container ${opts.container}`);
  const prevStatuses: any[] = Array.isArray(prev.containerStatuses) ? prev.containerStatuses : [];
  const statuses = specs.map((c) => {
    const old = prevStatuses.find((s) => s?.name === c.name);
    if (opts.container && c.name !== opts.container)
      return old ?? containerStatus(pod, c, undefined, 'running', {}, now);
    return containerStatus(pod, c, old, state, opts, now);
  });
  const unready = statuses.filter((s) => !s.ready).map((s) => s.name);
  const everRan = statuses.some((s) => s.state.running || s.restartCount > 0 || s.lastState?.terminated);
  const conds: any[] = Array.isArray(prev.conditions) ? prev.conditions : [];
  const podIP: string = prev.podIP ?? `10.244.0.${1 + (randomBytes(1)[0]! % 250)}`;
  const scheduled = { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: now };
  return {
    ...prev,
    phase: everRan ? 'Running' : 'Pending',
    conditions: [
      conds.find((c) => c?.type === 'Initialized') ?? { ...scheduled, type: 'Initialized' },
      condition('Ready', unready.length === 0, conds, now, unready),
      condition('ContainersReady', unready.length === 0, conds, now, unready),
      conds.find((c) => c?.type === 'PodScheduled') ?? scheduled,
    ],
    hostIP: prev.hostIP ?? '10.0.0.1',
    podIP,
    podIPs: prev.podIPs ?? [{ ip: podIP }],
    startTime: prev.startTime ?? now,
    containerStatuses: statuses,
  };
}

/** Whether a pod counts as ready (its Ready condition is True). */
export function isPodReady(pod: KObj): boolean {
  return (pod.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c.status === 'True');
}

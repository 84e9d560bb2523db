/** What ends a wait for a worker to become Available before its deadline: pods that cannot pull or keep crashing. */
import { AgentError } from '../../errors.js';
import { containerError } from './errors.js';
import { CRASH_REASONS, IMAGE_REASONS, type PodView } from './pods.js';
import type { WorkerView } from './view.js';

/** The error that ends the wait now, or undefined while the worker may still come up. */
export function cannotBecomeAvailable(view: WorkerView, pods: PodView[]): AgentError | undefined {
  const { namespace, name } = view;
  const image = pods.find((p) => p.reason && IMAGE_REASONS.has(p.reason));
  if (image)
    return containerError(
      'validation_error',
      'image_not_found',
      `worker ${namespace}/${name}: pod ${image.name} cannot pull its image (${image.reason}${image.message ? `: ${image.message}` : ''})`,
      {
        retryable: false,
        details: { container_id: name, pod: image.name, reason: image.reason, image: view.image },
      },
    );
  const crash = pods.find((p) => p.reason && CRASH_REASONS.has(p.reason));
  if (crash)
    return containerError(
      'command_failed',
      'system_error',
      `worker ${namespace}/${name}: pod ${crash.name} is crashing (${crash.reason}, ${crash.restarts} restarts); its logs say why`,
      {
        retryable: false,
        details: { container_id: name, pod: crash.name, reason: crash.reason, restarts: crash.restarts },
      },
    );
  return undefined;
}

/** The worker was not Available within `timeoutMs`. */
export function notAvailableInTime(view: WorkerView, pods: PodView[], timeoutMs: number): AgentError {
  return containerError(
    'timeout',
    'system_error',
    `worker ${view.namespace}/${view.name} was not Available within ${Math.round(timeoutMs / 1000)} s (${view.ready_replicas}/${view.replicas} ready)`,
    { details: { container_id: view.name, pods } },
  );
}

/** Waits `ms`, or rejects with `cancelled` once `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AgentError('cancelled', 'the wait was cancelled'));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new AgentError('cancelled', 'the wait was cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

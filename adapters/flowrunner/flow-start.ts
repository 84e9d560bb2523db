/**
 * How every flow starts and ends with the container control around it, whether the control API's
 * (/api/start, /api/update, /api/stop) or a workflow step's (flowrunner `run`, `start` and `stop`):
 * pre_start and the traffic control before the runner starts, the shaping replaced by reshape, and on
 * every end of the flow (stop, a failed start, the flow ending by itself, cancel, rollback, agent
 * shutdown) the traffic control removed and post_stop run, once.
 */
import type { ContainerControl } from './container/container-control.js';
import type { Shaping } from './container/traffic.js';
import type { LoadRunner } from './engine/index.js';

/** A started flow and what ends it. */
export interface ControlledFlow {
  readonly runner: LoadRunner;
  /**
   * Stops the runner (at once, or with `graceMs` gracefully), then releases the container control;
   * resolves once both are done.
   */
  stop(graceMs?: number): Promise<void>;
  /** Replaces the traffic control of the running flow; on a failure none is left applied (ContainerControlError). */
  reshape(shaping: Shaping): Promise<void>;
  /**
   * Removes the traffic control and runs post_stop, once, whenever called first: by stop, by the runner's
   * end, or directly (shutdown, when the runner's stop is given up on). Never rejects.
   */
  release(): Promise<void>;
}

export interface FlowStart {
  /** The container control of FLOWRUNNER_CONTROL_CONFIG; none: the flow starts bare. */
  container?: ContainerControl;
  /** The traffic control to apply (ContainerControl.readShaping); none: no shaping. */
  shaping?: Shaping;
  /** Who the flow is, in words, for the conflict another flow gets meanwhile ("the control API's flow"). */
  holder: string;
}

/**
 * Prepares the container control, then creates and starts the runner. Rejects with what failed, having
 * undone what it did: a conflict (another flow holds the container control), ContainerControlError
 * (pre_start or tc failed), or the runner's own error (then post_stop has run).
 */
export async function startFlow(create: () => LoadRunner, how: FlowStart): Promise<ControlledFlow> {
  const { container } = how;
  await container?.prepare(how.shaping, how.holder);
  let released: Promise<void> | undefined;
  const release = () => (released ??= container ? container.release() : Promise.resolve());
  let runner: LoadRunner | undefined;
  try {
    runner = create();
    runner.start();
  } catch (err) {
    await runner?.stop();
    await release();
    throw err;
  }
  const started = runner;
  void started.done.then(release);
  return {
    runner: started,
    async stop(graceMs) {
      await (graceMs === undefined ? started.stop() : started.drain(graceMs));
      await release();
    },
    async reshape(shaping) {
      if (!released) await container?.reshape(shaping);
    },
    release,
  };
}

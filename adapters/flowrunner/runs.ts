/**
 * Background runs started by the `start` action, by run id. They live in the
 * agent's memory: a restart ends them (a later `stop` of such an id reports
 * that it found nothing running).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AgentError } from '../errors.js';
import type { ControlledFlow } from './flow-start.js';

/** Background runs at once; more would let packages pile up load generators. */
export const MAX_BACKGROUND_RUNS = 16;
/** Ended background runs kept for `stop` to read. */
const MAX_ENDED_RUNS = 16;

export interface BackgroundRun {
  id: string;
  name: string;
  /** Its runner (flow.runner), and what stops it and takes its container control away. */
  flow: ControlledFlow;
  startedAt: number;
  /** Set when the run ended by itself (its duration limit). */
  endedAt?: number;
}

export class BackgroundRuns {
  private readonly runs = new Map<string, BackgroundRun>();
  /** Flows of `run` steps in progress: they stop with the agent too. */
  private readonly foreground = new Set<ControlledFlow>();
  /** Set by stopAll(): the agent is shutting down. */
  stopping = false;

  /** A `run` step's flow, until it ends. */
  track(flow: ControlledFlow): () => void {
    this.foreground.add(flow);
    if (this.stopping) void flow.stop();
    return () => this.foreground.delete(flow);
  }

  /** Throws rate_limited when MAX_BACKGROUND_RUNS run already (before a start runs pre_start for nothing). */
  checkRoom(): void {
    this.prune();
    const live = [...this.runs.values()].filter((r) => r.endedAt === undefined).length;
    if (live >= MAX_BACKGROUND_RUNS) {
      throw new AgentError(
        'rate_limited',
        `${live} background flow runs are running already (at most ${MAX_BACKGROUND_RUNS}); stop one first`,
        { retryable: false },
      );
    }
  }

  add(name: string, flow: ControlledFlow): BackgroundRun {
    this.checkRoom();
    const run: BackgroundRun = { id: randomUUID(), name, flow, startedAt: performance.now() };
    this.runs.set(run.id, run);
    void flow.runner.done.then(() => (run.endedAt ??= performance.now()));
    return run;
  }

  get(id: string): BackgroundRun | undefined {
    return this.runs.get(id);
  }

  remove(id: string): void {
    this.runs.delete(id);
  }

  /** Ended runs are kept for a while (at most MAX_ENDED_RUNS) so their final numbers can still be read by `stop`. */
  prune(): void {
    const cutoff = performance.now() - 3_600_000;
    const ended = [...this.runs.values()]
      .filter((r) => r.endedAt !== undefined)
      .sort((a, b) => a.endedAt! - b.endedAt!);
    ended.forEach((r, i) => {
      if (r.endedAt! < cutoff || i < ended.length - MAX_ENDED_RUNS) this.runs.delete(r.id);
    });
  }

  /**
   * Stops every run, background and `run` steps alike (agent shutdown: load is stopped, not drained), and
   * resolves once their traffic control is removed and post_stop has run.
   */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...[...this.runs.values()].map((r) => r.flow), ...this.foreground].map((f) => f.stop()));
  }
}

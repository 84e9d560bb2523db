/**
 * Background runs started by the `start` action, by run id. They live in the
 * agent's memory: a restart ends them (a later `stop` of such an id reports
 * that it found nothing running).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AgentError } from '../errors.js';
import type { LoadRunner } from './engine/index.js';

/** Background runs at once; more would let packages pile up load generators. */
export const MAX_BACKGROUND_RUNS = 16;
/** Ended background runs kept for `stop` to read. */
const MAX_ENDED_RUNS = 16;

export interface BackgroundRun {
  id: string;
  name: string;
  runner: LoadRunner;
  startedAt: number;
  /** Set when the run ended by itself (its duration limit). */
  endedAt?: number;
}

export class BackgroundRuns {
  private readonly runs = new Map<string, BackgroundRun>();
  /** Runners of `run` steps in progress: they stop with the agent too. */
  private readonly foreground = new Set<LoadRunner>();
  /** Set by stopAll(): the agent is shutting down. */
  stopping = false;

  /** A `run` step's runner, until it ends. */
  track(runner: LoadRunner): () => void {
    this.foreground.add(runner);
    if (this.stopping) void runner.stop();
    return () => this.foreground.delete(runner);
  }

  add(name: string, runner: LoadRunner): BackgroundRun {
    this.prune();
    const live = [...this.runs.values()].filter((r) => r.endedAt === undefined).length;
    if (live >= MAX_BACKGROUND_RUNS) {
      throw new AgentError(
        'rate_limited',
        `${live} background flow runs are running already (at most ${MAX_BACKGROUND_RUNS}); stop one first`,
        { retryable: false },
      );
    }
    const run: BackgroundRun = { id: randomUUID(), name, runner, startedAt: performance.now() };
    this.runs.set(run.id, run);
    void runner.done.then(() => (run.endedAt ??= performance.now()));
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

  /** Stops every run, background and `run` steps alike (agent shutdown: load is stopped, not drained). */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...[...this.runs.values()].map((r) => r.runner), ...this.foreground].map((r) => r.stop()));
  }
}

/**
 * Retention: ended executions that ended more than RETENTION_MAX_AGE_DAYS ago,
 * or that fall outside the newest RETENTION_MAX_EXECUTIONS, are removed with
 * their steps, logs, idempotency keys and the package texts nothing uses any
 * more. It runs shortly after start and then every RETENTION_INTERVAL_SECONDS,
 * in small transactions with a turn of the event loop between them, so
 * requests are served while it works. Executions that have not ended, have a
 * rollback waiting, or that the engine is still working on are never touched.
 * Audit lines older than the age limit go too (the audit log has no count limit).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** The first run after start: soon, but after recovery and the first requests. */
export const RETENTION_FIRST_RUN_MS = 5000;
/** Executions per transaction. */
export const PRUNE_BATCH_EXECUTIONS = 200;
/** Log lines per transaction: an execution with a longer log loses it a chunk at a time. */
export const PRUNE_BATCH_LOG_LINES = 20_000;

export interface RetentionOptions {
  /** 0: no age limit. */
  maxAgeDays: number;
  /** 0: no count limit. */
  maxExecutions: number;
  intervalSeconds: number;
  firstRunMs?: number;
  batchExecutions?: number;
  batchLogLines?: number;
  /** Epoch ms; tests move it instead of waiting days. */
  now?: () => number;
}

export interface RetentionDeps {
  store: Store;
  /** True while the engine has the execution queued, running or rolling back. */
  isLive: (executionId: string) => boolean;
  metrics: Metrics;
  logger?: Pick<Logger, 'info' | 'error'>;
}

export interface PruneSummary {
  pruned: number;
  by_age: number;
  by_count: number;
  package_texts: number;
  /** Audit lines older than the age limit (the audit log is kept by age only). */
  audit_entries: number;
  /** Transactions, log chunks of long logs included. */
  batches: number;
  /** True when a shutdown stopped the run before it was done. */
  stopped: boolean;
}

const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Retention {
  /** `batch` after each transaction and `done` after a run, each with the summary so far. */
  readonly events = new EventEmitter();
  private timer?: NodeJS.Timeout;
  private current?: Promise<PruneSummary>;
  private stopped = false;
  private readonly now: () => number;

  constructor(
    private readonly deps: RetentionDeps,
    private readonly options: RetentionOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.options.maxAgeDays > 0 || this.options.maxExecutions > 0;
  }

  /** Schedules the runs; the timers never keep the process alive. */
  start(): void {
    if (!this.enabled || this.stopped) return;
    this.schedule(Math.min(this.options.firstRunMs ?? RETENTION_FIRST_RUN_MS, this.options.intervalSeconds * 1000));
  }

  /** Cancels the timer and lets a run in progress stop after its current transaction. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current?.catch(() => {});
  }

  /** One run now, or the one already under way. */
  runOnce(): Promise<PruneSummary> {
    this.current ??= this.prune().finally(() => (this.current = undefined));
    return this.current;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      await this.runOnce();
    } catch (err) {
      this.deps.logger?.error({ err }, 'retention: pruning failed; trying again at the next interval');
    }
    if (!this.stopped) this.schedule(this.options.intervalSeconds * 1000);
  }

  private async prune(): Promise<PruneSummary> {
    const { store, isLive, metrics } = this.deps;
    const summary: PruneSummary = {
      pruned: 0,
      by_age: 0,
      by_count: 0,
      package_texts: 0,
      audit_entries: 0,
      batches: 0,
      stopped: false,
    };
    const { maxAgeDays, maxExecutions } = this.options;
    const batchExecutions = this.options.batchExecutions ?? PRUNE_BATCH_EXECUTIONS;
    const batchLogLines = this.options.batchLogLines ?? PRUNE_BATCH_LOG_LINES;
    const started = performance.now();
    // Both bounds are fixed when the run starts: what ends while it runs waits for the next one.
    const endedBefore = maxAgeDays > 0 ? new Date(this.now() - maxAgeDays * DAY_MS).toISOString() : '';
    const belowSeq = maxExecutions > 0 ? store.pruning.keepNewestSeq(maxExecutions) : 0;
    let afterSeq = 0;
    while (endedBefore !== '' || belowSeq > 0) {
      if (this.stopped || !store.isOpen()) {
        summary.stopped = true;
        break;
      }
      const candidates = store.pruning.candidates({ afterSeq, endedBefore, belowSeq, limit: batchExecutions });
      if (candidates.length === 0) break;
      // Choosing and deleting happen in one synchronous stretch: the engine cannot pick one up in between.
      const ids: string[] = [];
      let byAge = 0;
      let budget = batchLogLines;
      for (const c of candidates) {
        if (isLive(c.id)) {
          afterSeq = c.seq;
          continue;
        }
        if (c.logLines > budget) {
          // Alone over the budget: its log goes a chunk per transaction, and it comes back in the next one.
          if (ids.length === 0) store.logs.deleteOldest(c.id, budget);
          break;
        }
        budget -= c.logLines;
        ids.push(c.id);
        if (c.byAge) byAge++;
        afterSeq = c.seq;
      }
      if (ids.length > 0) {
        const deleted = store.pruning.deleteExecutions(ids);
        summary.pruned += deleted.executions;
        summary.by_age += byAge;
        summary.by_count += ids.length - byAge;
        summary.package_texts += deleted.packages;
        if (byAge) metrics.pruned.inc({ reason: 'age' }, byAge);
        if (ids.length > byAge) metrics.pruned.inc({ reason: 'count' }, ids.length - byAge);
      }
      summary.batches++;
      this.events.emit('batch', { ...summary });
      await yieldTurn();
    }
    while (endedBefore !== '' && !this.stopped && store.isOpen()) {
      const deleted = store.audit.pruneOlderThan(endedBefore, batchLogLines);
      summary.audit_entries += deleted;
      if (deleted === 0) break;
      summary.batches++;
      await yieldTurn();
    }
    if (summary.pruned > 0 || summary.audit_entries > 0) {
      this.deps.logger?.info(
        {
          ...summary,
          duration_ms: Math.round(performance.now() - started),
          max_age_days: maxAgeDays,
          max_executions: maxExecutions,
        },
        `retention: pruned ${summary.pruned} ended execution(s) with their steps and logs`,
      );
    }
    this.events.emit('done', { ...summary });
    return summary;
  }
}

/**
 * A FlowRunner over worker threads: the flow's users shared among `threads` threads of the pool
 * (thread-pool.ts, thread-worker.ts), each running the one-loop FlowRunner with its own connections. The
 * same surface as FlowRunner: start, stop (every thread told at once; resolves when all have stopped),
 * drain, update (each thread its new share), snapshot and mergeableStats from the threads' numbers merged
 * exactly. A thread that fails (throws, exits, or ends with every user failed) makes the run `error`, and
 * the others stop.
 */
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { DEFAULT_EGRESS_POLICY } from '../../shared/egress.js';
import { type FlowRunnerConfig, withLiveFields } from './config.js';
import { requestSteps, type Flowmap } from './flowmap.js';
import { emptyStats } from './stats-of.js';
import type { MergeableStats } from './stats-snapshot.js';
import type { AppStatus, RunnerOptions, RunSnapshot } from './runner.js';
import { MergedReports, type RunTotals } from './thread-stats.js';
import { type ThreadPool, type ThreadShare, threadPool } from './thread-pool.js';
import { usersOf, type FromThread, type ThreadReport, type ToThread } from './threads.js';

interface Thread {
  share: ThreadShare;
  ready: boolean;
  report?: ThreadReport;
  ended: boolean;
}

export class ThreadedRunner {
  status: AppStatus = 'initializing';
  readonly done: Promise<void>;
  private config: FlowRunnerConfig;
  private readonly threads: Thread[] = [];
  private readonly log: NonNullable<RunnerOptions['log']>;
  private readonly stepIds: string[];
  private merged?: MergedReports;
  private stopped = false;
  private failed = false;
  private startedAt = 0;
  private startedIso: string | null = null;
  private endedAt = 0;
  private limitTimer?: NodeJS.Timeout;
  private finishDone!: () => void;

  constructor(
    config: FlowRunnerConfig,
    readonly flowmap: Flowmap,
    private readonly options: RunnerOptions & { threads: number; pool?: ThreadPool },
  ) {
    this.config = { ...config };
    this.log = options.log ?? (() => {});
    this.stepIds = requestSteps(flowmap.steps).map((s) => s.id);
    this.done = new Promise((resolve) => (this.finishDone = resolve));
  }

  get currentConfig(): FlowRunnerConfig {
    return { ...this.config };
  }

  get running(): boolean {
    return this.status === 'running';
  }

  /** The threads' workers, for diagnostics. */
  get workers(): readonly Worker[] {
    return this.threads.map((t) => t.share.worker);
  }

  /** Each thread's last numbers (undefined before its first report), in thread order. */
  threadStats(): Array<MergeableStats | undefined> {
    return this.threads.map((t) => t.report?.stats);
  }

  /** The totals Prometheus reads, from the threads' last numbers. */
  get stats(): RunTotals {
    return this.mergedReports();
  }

  start(): void {
    if (this.status !== 'initializing') throw new Error('a FlowRunner starts once');
    const egress = (this.options.egress ?? DEFAULT_EGRESS_POLICY).portableSettings();
    if (!egress) throw new Error('a threaded FlowRunner needs egress settings without a custom resolver');
    this.status = 'running';
    // More threads than users would idle; a flow never has fewer than one user.
    const n = Math.max(1, Math.min(this.options.threads, this.config.sim_users));
    const threads: Thread[] = [];
    const shares = (this.options.pool ?? threadPool).share(n, (i) => ({
      message: (m) => this.received(threads[i]!, m),
      failed: (why) => this.threadFailed(threads[i]!, `thread ${i} ${why}`),
    }));
    for (const share of shares) threads.push({ share, ready: false, ended: false });
    this.threads.push(...threads);
    for (const [i, t] of threads.entries())
      t.share.send({
        type: 'run',
        init: {
          thread: i,
          threads: n,
          config: { ...this.config, sim_users: usersOf(this.config.sim_users, i, n), max_duration_seconds: null },
          flowUsers: this.config.sim_users,
          flowmap: this.flowmap,
          iterations: this.options.limit?.iterations,
          egress,
        },
      });
    this.log(
      'info',
      `flow ${this.flowmap.name ?? this.flowmap.id ?? '(unnamed)'} started: ${this.config.sim_users} users on ${n} thread(s) against ${this.config.flow_target_url}`,
    );
  }

  /** Stops every thread at once: no request starts after this resolves. */
  stop(): Promise<void> {
    if (this.status === 'initializing') {
      this.stopped = true;
      this.status = 'stopped';
      this.finishDone();
    }
    if (this.stopped) return this.done;
    this.stopped = true;
    clearTimeout(this.limitTimer);
    this.markEnded();
    this.tell({ type: 'stop' });
    this.endIfAllEnded();
    return this.done;
  }

  /** Stops gracefully in every thread: requests in flight finish and are counted, for at most graceMs. */
  drain(graceMs: number): Promise<void> {
    if (this.stopped || this.status !== 'running') return this.stop();
    this.stopped = true;
    clearTimeout(this.limitTimer);
    this.tell({ type: 'drain', graceMs });
    this.endIfAllEnded();
    return this.done;
  }

  /** A live change; each thread gets its share of sim_users. */
  update(config: FlowRunnerConfig): void {
    const before = this.config.sim_users;
    this.config = withLiveFields(this.config, config);
    const n = this.threads.length;
    this.threads.forEach((t, i) => {
      const m: ToThread = {
        type: 'update',
        config: { ...this.config, sim_users: usersOf(config.sim_users, i, n) },
        flowUsers: config.sim_users,
      };
      if (!t.ended) t.share.send(m);
    });
    this.log('info', `flow updated: ${before} -> ${config.sim_users} users over ${n} thread(s)`);
  }

  snapshot(): RunSnapshot {
    const m = this.mergedReports();
    const end = this.endedAt || performance.now();
    return {
      running: this.status === 'running',
      app_status: this.status,
      active_users: m.stats.active_users,
      pending_users: m.pendingUsers,
      sim_users: this.config.sim_users,
      started_at: this.startedIso,
      elapsed_seconds: this.startedAt ? Math.round((end - this.startedAt) / 100) / 10 : 0,
      ...m.snapshot(),
    };
  }

  /** The threads' stats merged exactly, as one run's (workers 1: one agent's run, however many threads). */
  mergeableStats(): MergeableStats {
    const m = this.mergedReports();
    if (m.reports.length === 0) {
      const empty = emptyStats();
      return {
        ...empty,
        workers: 1,
        running: this.running,
        started_at: this.startedIso,
        sim_users: this.config.sim_users,
      };
    }
    const s = m.stats;
    const running = this.status === 'running' && !this.endedAt;
    return { ...s, workers: 1, running, ended_at: running ? null : s.ended_at, sim_users: this.config.sim_users };
  }

  private mergedReports(): MergedReports {
    this.merged ??= new MergedReports(
      this.threads.flatMap((t) => (t.report ? [t.report] : [])),
      this.stepIds,
    );
    return this.merged;
  }

  private tell(m: ToThread): void {
    for (const t of this.threads) if (!t.ended) t.share.send(m);
  }

  private received(t: Thread, m: FromThread): void {
    if (m.type === 'log') {
      this.log(m.level, m.message);
      return;
    }
    if (m.type === 'ready') {
      t.ready = true;
      this.goIfAllReady();
      return;
    }
    t.report = m.report;
    this.merged = undefined;
    if (m.type !== 'ended') return;
    t.ended = true;
    t.share.release();
    if (m.report.status === 'error') {
      this.failed = true;
      void this.stop();
    }
    this.endIfAllEnded();
  }

  private threadFailed(t: Thread, why: string): void {
    if (t.ended) return;
    t.ended = true;
    this.failed = true;
    this.log('error', `${why}; the other threads stop`);
    t.share.release();
    void this.stop();
    this.endIfAllEnded();
  }

  /** Every thread loaded: they all start now, and the run's clock and duration limit with them. */
  private goIfAllReady(): void {
    if (this.stopped || this.startedAt || this.threads.some((t) => !t.ready)) return;
    this.startedAt = performance.now();
    this.startedIso = new Date().toISOString();
    this.tell({ type: 'go' });
    if (this.options.limit?.durationMs !== undefined)
      this.limitTimer = setTimeout(() => void this.stop(), this.options.limit.durationMs);
  }

  private markEnded(): void {
    if (this.startedAt && !this.endedAt) this.endedAt = performance.now();
  }

  private endIfAllEnded(): void {
    if (this.status !== 'running' || this.threads.some((t) => !t.ended)) return;
    this.markEnded();
    clearTimeout(this.limitTimer);
    this.stopped = true;
    this.status = this.failed ? 'error' : 'stopped';
    this.finishDone();
  }
}

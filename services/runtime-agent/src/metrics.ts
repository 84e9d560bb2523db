/**
 * Every Prometheus metric of the agent, defined once (docs/metrics.md lists them with their meaning).
 * Labels stay bounded: no ids, pod names or URLs, and at most MAX_WORKFLOW_LABELS workflow names.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import {
  ERROR_KINDS,
  PROM_BUCKETS,
  type AppStatus,
  type ErrorKind,
  type PromSeries,
} from '../../../adapters/flowrunner/engine/index.js';
import type { DeliveryKind, ExecutionStatus, OutboxBacklog, RollbackTrigger } from './store/types.js';

/** `app_status` values, as FlowRunner's clients read them. */
export const APP_STATUS_CODES: Record<AppStatus, number> = { initializing: 0, running: 1, stopped: 2, error: 3 };

/** What the FlowRunner control API's metrics read at scrape time. */
export interface FlowRunnerSource {
  appStatus(): AppStatus;
  /** The running flow's request rate and users; zeros when none runs. */
  live(): { rps: number; active_users: number };
  /** Monotonic over the process: a replaced flow's numbers stay in. */
  totals(): { requests: number; flows: number; errors: Record<ErrorKind, number>; steps: PromSeries[] };
  container(): { cpu_percent: number; memory_percent: number };
}

/** The engine's counts, read at scrape time. */
export interface EngineSource {
  active(): number;
  queued(): number;
  /** Executions still running past their workflow's timeout. */
  overdue(): number;
  /** MAX_CONCURRENT_EXECUTIONS and MAX_QUEUED_EXECUTIONS. */
  limits: { concurrent: number; queued: number };
}

/** The agent's own state, read at scrape time. */
export interface AgentSource {
  /** Each adapter's readiness, as GET /health reports it, and whether it has a configuration at all. */
  adaptersReady(): Promise<Record<string, { ready: boolean; configured: boolean }>>;
  /** Bytes of the store on disk (database and write-ahead log). */
  storeBytes(): number;
  /** The newest committed journal seq. */
  journalSeq(): number;
}

/** Someone who delivers journal events (a surface: SSE streams, later callbacks, pull mode, Socket.IO). */
export interface JournalConsumer {
  /** Clients (streams, sockets) following the journal through it now. */
  followers(): number;
  /** Events (or messages) it has taken from the journal and not yet delivered. */
  backlog(): number;
}

/**
 * A histogram whose values are read from elsewhere at scrape time (prom-client asks a registered metric
 * only for name, help, type and `get()`): the flow runner counts per bucket on its hot path without a
 * prom-client call per request.
 */
class ScrapedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelName: string,
    private readonly read: () => PromSeries[],
  ) {}

  async get() {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    for (const s of this.read()) {
      const labels = { [this.labelName]: s.step };
      PROM_BUCKETS.forEach((le, i) =>
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: s.cumulative[i] ?? 0 }),
      );
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Registry.resetMetrics() calls this; the values belong to the runs, so there is nothing to reset here. */
  reset(): void {}
}

/** How often the event-loop delay is sampled (a timer of this interval; its lateness is the delay). */
const LOOP_RESOLUTION_MS = 10;

/** Distinct workflow names kept as label values; later ones are counted under OVERFLOW_LABEL. */
export const MAX_WORKFLOW_LABELS = 200;
/** The workflow_name of every name past MAX_WORKFLOW_LABELS: a package name cannot start with `_`. */
export const OVERFLOW_LABEL = '_other';

export class Metrics {
  readonly registry = new Registry();
  private readonly names = new Set<string>();

  readonly runs = new Counter({
    name: 'workflow_runs_total',
    help: 'Ended workflow executions by the status they ended in (after the automatic rollback that followed a failure)',
    labelNames: ['workflow_name', 'status'],
    registers: [this.registry],
  });
  readonly success = new Counter({
    name: 'workflow_success_total',
    help: 'Workflow executions that completed',
    labelNames: ['workflow_name'],
    registers: [this.registry],
  });
  readonly failure = new Counter({
    name: 'workflow_failure_total',
    help: 'Workflow executions whose run failed (rolled back or not; a cancel is not a failure), by error type',
    labelNames: ['workflow_name', 'error_type'],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'workflow_duration_seconds',
    help: 'Wall time of workflow executions from start to end (automatic rollback included), by final status',
    labelNames: ['workflow_name', 'status'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  // Read at scrape time from the engine's own count, so the gauge and GET /health always agree.
  private engine?: EngineSource;
  readonly active: Gauge = new Gauge({
    name: 'active_workflows',
    help: 'Executions running or rolling back now',
    registers: [this.registry],
    collect: () => this.active.set(this.engine?.active() ?? 0),
  });
  readonly stepDuration = new Histogram({
    name: 'workflow_step_duration_seconds',
    help: 'Wall time of steps (all attempts) by adapter, action and final status',
    labelNames: ['adapter', 'action', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [this.registry],
  });
  readonly stepRetries = new Counter({
    name: 'workflow_step_retries_total',
    help: 'Step attempts after the first',
    labelNames: ['adapter', 'action'],
    registers: [this.registry],
  });
  readonly rollbacks = new Counter({
    name: 'workflow_rollbacks_total',
    help: 'Rollbacks by trigger (automatic, manual, recovered) and result (rolled_back or rollback_failed)',
    labelNames: ['workflow_name', 'trigger', 'result'],
    registers: [this.registry],
  });
  readonly queueDepth: Gauge = new Gauge({
    name: 'workflow_queue_depth',
    help: 'Executions accepted and waiting to start',
    registers: [this.registry],
    collect: () => this.queueDepth.set(this.engine?.queued() ?? 0),
  });
  readonly pruned = new Counter({
    name: 'workflow_pruned_executions_total',
    help: 'Ended executions removed by retention with their steps and logs, by reason (age: RETENTION_MAX_AGE_DAYS, count: RETENTION_MAX_EXECUTIONS)',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  // The agent itself: read at scrape time from the source attached by the agent.
  private agent?: AgentSource;
  private readonly consumers = new Map<string, JournalConsumer>();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  readonly buildInfo = new Gauge({
    name: 'runtime_agent_build_info',
    help: 'Always 1; the agent version in its label',
    labelNames: ['version'],
    registers: [this.registry],
  });
  // Both adapter gauges come from one health reading per scrape (prom-client collects every metric at once).
  private adapterReading?: Promise<Record<string, { ready: boolean; configured: boolean }>>;
  readonly adapterReady = this.adapterGauge(
    'runtime_agent_adapter_ready',
    'Whether each adapter is ready (1) or not (0), as GET /health reports it',
    (a) => a.ready,
  );
  readonly adapterConfigured = this.adapterGauge(
    'runtime_agent_adapter_configured',
    'Whether each adapter has a configuration (0: k8s without a cluster); an adapter not ready is a problem only when configured',
    (a) => a.configured,
  );
  readonly concurrencyLimit: Gauge = new Gauge({
    name: 'runtime_agent_concurrency_limit',
    help: 'Executions that may run at once (MAX_CONCURRENT_EXECUTIONS)',
    registers: [this.registry],
    collect: () => this.concurrencyLimit.set(this.engine?.limits.concurrent ?? 0),
  });
  readonly queueLimit: Gauge = new Gauge({
    name: 'runtime_agent_queue_limit',
    help: 'Executions that may wait for a slot (MAX_QUEUED_EXECUTIONS); more are refused with 429',
    registers: [this.registry],
    collect: () => this.queueLimit.set(this.engine?.limits.queued ?? 0),
  });
  readonly overdue: Gauge = new Gauge({
    name: 'runtime_agent_executions_overdue',
    help: "Executions still running past their workflow's timeoutSeconds (a step that does not stop when aborted)",
    registers: [this.registry],
    collect: () => this.overdue.set(this.engine?.overdue() ?? 0),
  });
  readonly storeBytes: Gauge = new Gauge({
    name: 'runtime_agent_store_bytes',
    help: 'Size of the SQLite store on disk (database and write-ahead log)',
    registers: [this.registry],
    collect: () => this.storeBytes.set(this.agent?.storeBytes() ?? 0),
  });
  readonly journalSeq: Gauge = new Gauge({
    name: 'runtime_agent_journal_last_seq',
    help: 'The newest committed event journal seq (its rate is the journal write rate)',
    registers: [this.registry],
    collect: () => this.journalSeq.set(this.agent?.journalSeq() ?? 0),
  });
  readonly journalFollowers = this.consumerGauge(
    'runtime_agent_journal_followers',
    'Clients following the journal now, by the surface they follow it through',
    (c) => c.followers(),
  );
  readonly journalBacklog = this.consumerGauge(
    'runtime_agent_journal_backlog',
    'Events taken from the journal and not yet delivered, by the surface delivering them',
    (c) => c.backlog(),
  );
  private socketConnections?: () => number;
  readonly sockets: Gauge = new Gauge({
    name: 'runtime_agent_socket_connections',
    help: 'Socket.IO connections open now (authenticated; docs/socket-io.md)',
    registers: [this.registry],
    collect: () => this.sockets.set(this.socketConnections?.() ?? 0),
  });
  // Result deliveries (docs/callbacks.md): attempts as they happen, the outbox read at scrape time.
  readonly callbackAttempts = new Counter({
    name: 'runtime_agent_callback_attempts_total',
    help: 'Result callback attempts by outcome: delivered, gone (410), http_error, timeout, network_error, refused (egress policy), expired (past the maximum age, not tried)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly callbackDead = new Counter({
    name: 'runtime_agent_callback_dead_total',
    help: 'Result callbacks given up: not delivered within RESULT_CALLBACK_MAX_AGE_SECONDS, or refused by the egress policy',
    registers: [this.registry],
  });
  readonly reportAttempts = new Counter({
    name: 'runtime_agent_report_attempts_total',
    help: 'Pull-mode report attempts by outcome: delivered, gone (404, 409 or 410: the Manager no longer wants it), http_error, timeout, network_error, expired (past the maximum age, not tried)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly reportDead = new Counter({
    name: 'runtime_agent_report_dead_total',
    help: 'Pull-mode reports given up: not delivered within RESULT_CALLBACK_MAX_AGE_SECONDS',
    registers: [this.registry],
  });
  private outbox?: () => Partial<Record<DeliveryKind, OutboxBacklog>>;
  readonly outboxDeliveries: Gauge = new Gauge({
    name: 'runtime_agent_outbox_deliveries',
    help: 'Rows of the outbox by kind (callback) and state: pending (the backlog), delivered, dead, gone',
    labelNames: ['kind', 'state'],
    registers: [this.registry],
    collect: () => {
      for (const [kind, b] of Object.entries(this.outbox?.() ?? {}))
        for (const state of ['pending', 'delivered', 'dead', 'gone'] as const)
          this.outboxDeliveries.set({ kind, state }, b[state]);
    },
  });
  readonly outboxOldest: Gauge = new Gauge({
    name: 'runtime_agent_outbox_oldest_pending_seconds',
    help: 'Age of the oldest delivery still pending, by kind (0 when none is)',
    labelNames: ['kind'],
    registers: [this.registry],
    collect: () => {
      for (const [kind, b] of Object.entries(this.outbox?.() ?? {}))
        this.outboxOldest.set({ kind }, b.oldestPendingMs === null ? 0 : (Date.now() - b.oldestPendingMs) / 1000);
    },
  });
  readonly loopLagP99: Gauge = new Gauge({
    name: 'runtime_agent_event_loop_lag_p99_seconds',
    help: "99th percentile of the agent's event-loop delay since the previous scrape",
    registers: [this.registry],
    collect: () => this.collectLoopLag(),
  });
  // Set by loopLagP99's collect, which runs before this one is read (a synchronous collect, registered first).
  readonly loopLagMax: Gauge = new Gauge({
    name: 'runtime_agent_event_loop_lag_max_seconds',
    help: 'Longest event-loop delay of the agent since the previous scrape (a blocked loop delays every request)',
    registers: [this.registry],
  });

  // FlowRunner control API (the load generator's numbers, not the agent's): all read at scrape time from
  // the source attached by the agent.
  private flowRunner?: FlowRunnerSource;
  readonly appStatus: Gauge = new Gauge({
    name: 'app_status',
    help: 'Application status (initializing=0, running=1, stopped=2, error=3).',
    registers: [this.registry],
    collect: () => this.appStatus.set(APP_STATUS_CODES[this.flowRunner?.appStatus() ?? 'initializing']),
  });
  readonly flowRunnerRps: Gauge = new Gauge({
    name: 'flow_runner_rps',
    help: 'Current requests-per-second generated by flows.',
    registers: [this.registry],
    collect: () => this.flowRunnerRps.set(this.flowRunner?.live().rps ?? 0),
  });
  readonly flowRunnerActiveUsers: Gauge = new Gauge({
    name: 'flow_runner_active_users',
    help: 'Simulated users running now.',
    registers: [this.registry],
    collect: () => this.flowRunnerActiveUsers.set(this.flowRunner?.live().active_users ?? 0),
  });
  readonly flowRunnerRequests: Counter = new Counter({
    name: 'flow_runner_requests_total',
    help: "HTTP requests made by the control API's flows (/api/start), every flow since the agent started.",
    registers: [this.registry],
    collect: () => setCounter(this.flowRunnerRequests, this.flowRunner?.totals().requests ?? 0),
  });
  readonly flowRunnerFlows: Counter = new Counter({
    name: 'flow_runner_flows_total',
    help: "Complete flow iterations of the control API's flows (/api/start), every flow since the agent started.",
    registers: [this.registry],
    collect: () => setCounter(this.flowRunnerFlows, this.flowRunner?.totals().flows ?? 0),
  });
  readonly flowRunnerErrors: Counter = new Counter({
    name: 'flow_runner_errors_total',
    help: "Failed requests of the control API's flows by kind (network, timeout, http_4xx, http_5xx, …), every flow since the agent started.",
    labelNames: ['kind'],
    registers: [this.registry],
    collect: () => {
      const errors = this.flowRunner?.totals().errors;
      this.flowRunnerErrors.reset();
      for (const kind of ERROR_KINDS) this.flowRunnerErrors.inc({ kind }, errors?.[kind] ?? 0);
    },
  });
  readonly containerCpu: Gauge = new Gauge({
    name: 'container_cpu_percent',
    help: "CPU usage percent of the container's allowance (its cgroup quota, else every CPU it may use).",
    registers: [this.registry],
    collect: () => this.containerCpu.set(this.flowRunner?.container().cpu_percent ?? 0),
  });
  readonly containerMemory: Gauge = new Gauge({
    name: 'container_memory_percent',
    help: "Memory usage percent of the container's cgroup limit (of the host's memory when it has none).",
    registers: [this.registry],
    collect: () => this.containerMemory.set(this.flowRunner?.container().memory_percent ?? 0),
  });
  readonly flowRunnerDuration = new ScrapedHistogram(
    'flow_runner_request_duration_seconds',
    'Duration of flow requests by request step id (step ids of the current flowmap; counts include earlier flows).',
    'step_id',
    () => this.flowRunner?.totals().steps ?? [],
  );

  constructor(version = 'unknown') {
    collectDefaultMetrics({ register: this.registry });
    this.registry.registerMetric(this.flowRunnerDuration as unknown as Metric);
    this.buildInfo.set({ version }, 1);
    this.loopDelay.enable();
  }

  /** Where the runtime_agent_* gauges read from. */
  attachAgent(source: AgentSource): void {
    this.agent = source;
  }

  /** Where the Socket.IO connection gauge reads from. */
  attachSockets(count: () => number): void {
    this.socketConnections = count;
  }

  /** Where the outbox gauges read from (each kind's backlog). */
  attachOutbox(read: () => Partial<Record<DeliveryKind, OutboxBacklog>>): void {
    this.outbox = read;
  }

  /** A delivery attempt ended (`expired`: past the maximum age, not tried); `dead`: it was given up. */
  deliveryAttempted(kind: DeliveryKind, outcome: string, dead: boolean): void {
    (kind === 'report' ? this.reportAttempts : this.callbackAttempts).inc({ outcome });
    if (dead) (kind === 'report' ? this.reportDead : this.callbackDead).inc();
  }

  /** A surface that delivers journal events reports its followers and backlog under `name`. */
  addJournalConsumer(name: string, consumer: JournalConsumer): void {
    this.consumers.set(name, consumer);
  }

  /** Stops the event-loop delay monitor (the agent is closing). */
  close(): void {
    this.loopDelay.disable();
  }

  /**
   * An execution's run ended: counted once, in the status it ended in. A failed run with rollback on
   * failure ends after its automatic rollback (rolled_back or rollback_failed) and still counts as a
   * failure; a cancel is not one. `seconds` is absent for a run that never started.
   */
  runEnded(workflowName: string, status: ExecutionStatus, ended: { seconds?: number; errorType?: string }): void {
    const workflow_name = this.workflowLabel(workflowName);
    this.runs.inc({ workflow_name, status });
    if (status === 'completed') this.success.inc({ workflow_name });
    else if (status !== 'cancelled')
      this.failure.inc({ workflow_name, error_type: ended.errorType ?? 'internal_error' });
    if (ended.seconds !== undefined) this.duration.observe({ workflow_name, status }, ended.seconds);
  }

  /** A rollback ended (whatever started it). */
  rollbackEnded(workflowName: string, trigger: RollbackTrigger, result: 'rolled_back' | 'rollback_failed'): void {
    this.rollbacks.inc({ workflow_name: this.workflowLabel(workflowName), trigger, result });
  }

  /** A gauge with one series per adapter, read from the scrape's one reading of the adapters' health. */
  private adapterGauge(
    name: string,
    help: string,
    read: (a: { ready: boolean; configured: boolean }) => boolean,
  ): Gauge {
    const gauge: Gauge = new Gauge({
      name,
      help,
      labelNames: ['adapter'],
      registers: [this.registry],
      collect: async () => {
        for (const [adapter, a] of Object.entries(await this.readAdapters())) gauge.set({ adapter }, read(a) ? 1 : 0);
      },
    });
    return gauge;
  }

  /** The adapters' health: one reading shared by the collects of one scrape, a fresh one for the next. */
  private readAdapters(): Promise<Record<string, { ready: boolean; configured: boolean }>> {
    if (!this.adapterReading) {
      const reading = this.agent?.adaptersReady() ?? Promise.resolve({});
      this.adapterReading = reading;
      const clear = () => {
        if (this.adapterReading === reading) this.adapterReading = undefined;
      };
      reading.then(clear, clear);
    }
    return this.adapterReading;
  }

  /** A gauge with one series per journal consumer (label `consumer`), read from each at scrape time. */
  private consumerGauge(name: string, help: string, read: (c: JournalConsumer) => number): Gauge {
    const gauge: Gauge = new Gauge({
      name,
      help,
      labelNames: ['consumer'],
      registers: [this.registry],
      collect: () => {
        for (const [consumer, c] of this.consumers) gauge.set({ consumer }, read(c));
      },
    });
    return gauge;
  }

  private collectLoopLag(): void {
    const h = this.loopDelay;
    // The histogram holds whole timer intervals: the delay is what exceeds the resolution. Before the first
    // sample it reads nothing useful: 0.
    const lag = (ns: number) => (h.count > 0 ? Math.max(0, ns / 1e9 - LOOP_RESOLUTION_MS / 1000) : 0);
    this.loopLagP99.set(lag(h.percentile(99)));
    this.loopLagMax.set(lag(h.max));
    h.reset();
  }

  /** Where `active_workflows` and `workflow_queue_depth` read from. */
  attachEngine(source: EngineSource): void {
    this.engine = source;
  }

  /** Where the FlowRunner metrics read from; until then they read as a flow runner that never started. */
  attachFlowRunner(source: FlowRunnerSource): void {
    this.flowRunner = source;
  }

  /** The workflow name as a label value, capped in cardinality. */
  workflowLabel(name: string): string {
    if (this.names.has(name)) return name;
    if (this.names.size >= MAX_WORKFLOW_LABELS) return OVERFLOW_LABEL;
    this.names.add(name);
    return name;
  }
}

/** A counter whose total is kept elsewhere (monotonic there): set to it at scrape time. */
function setCounter(counter: Counter, total: number): void {
  counter.reset();
  counter.inc(total);
}

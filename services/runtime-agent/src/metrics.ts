/** Every Prometheus metric of the agent, defined once. Labels stay bounded: no ids, pod names or URLs. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { PROM_BUCKETS, type AppStatus, type PromSeries } from '../../../adapters/flowrunner/engine/index.js';

/** `app_status` values, as FlowRunner's clients read them. */
export const APP_STATUS_CODES: Record<AppStatus, number> = { initializing: 0, running: 1, stopped: 2, error: 3 };

/** What the FlowRunner control API's metrics read at scrape time. */
export interface FlowRunnerSource {
  appStatus(): AppStatus;
  /** The running flow's request rate and users; zeros when none runs. */
  live(): { rps: number; active_users: number };
  /** Monotonic over the process: a replaced flow's numbers stay in. */
  totals(): { requests: number; flows: number; steps: PromSeries[] };
  container(): { cpu_percent: number; memory_percent: number };
}

/** The engine's counts, read at scrape time. */
export interface EngineSource {
  active(): number;
  queued(): number;
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

/** Distinct workflow names kept as label values; later ones are counted as `other`. */
export const MAX_WORKFLOW_LABELS = 200;

export class Metrics {
  readonly registry = new Registry();
  private readonly names = new Set<string>();

  readonly runs = new Counter({
    name: 'workflow_runs_total',
    help: 'Finished workflow executions by final status',
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
    help: 'Workflow executions that failed, by error type',
    labelNames: ['workflow_name', 'error_type'],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'workflow_duration_seconds',
    help: 'Wall time of workflow executions (rollback included)',
    labelNames: ['workflow_name'],
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
    help: 'Rollbacks by result (rolled_back or rollback_failed)',
    labelNames: ['workflow_name', 'result'],
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

  // FlowRunner control API: all read at scrape time from the source attached by the agent.
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
  readonly containerCpu: Gauge = new Gauge({
    name: 'container_cpu_percent',
    help: 'CPU usage percent.',
    registers: [this.registry],
    collect: () => this.containerCpu.set(this.flowRunner?.container().cpu_percent ?? 0),
  });
  readonly containerMemory: Gauge = new Gauge({
    name: 'container_memory_percent',
    help: 'Memory usage percent (of the container limit when there is one).',
    registers: [this.registry],
    collect: () => this.containerMemory.set(this.flowRunner?.container().memory_percent ?? 0),
  });
  readonly flowRunnerDuration = new ScrapedHistogram(
    'flow_runner_request_duration_seconds',
    'Duration of flow requests by request step id (step ids of the current flowmap; counts include earlier flows).',
    'step_id',
    () => this.flowRunner?.totals().steps ?? [],
  );

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.registry.registerMetric(this.flowRunnerDuration as unknown as Metric);
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
    if (this.names.size >= MAX_WORKFLOW_LABELS) return 'other';
    this.names.add(name);
    return name;
  }
}

/** A counter whose total is kept elsewhere (monotonic there): set to it at scrape time. */
function setCounter(counter: Counter, total: number): void {
  counter.reset();
  counter.inc(total);
}

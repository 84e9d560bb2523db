/** Every Prometheus metric of the agent, defined once. Labels stay bounded: no ids, pod names or URLs. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Distinct workflow names kept as label values; later ones are counted as `other`. */
export const MAX_WORKFLOW_LABELS = 200;

export class Metrics {
  readonly registry = new Registry();
  private readonly names = new Set<string>();

  readonly runs = new Counter({ name: 'workflow_runs_total', help: 'Finished workflow executions by final status', labelNames: ['workflow_name', 'status'], registers: [this.registry] });
  readonly success = new Counter({ name: 'workflow_success_total', help: 'Workflow executions that completed', labelNames: ['workflow_name'], registers: [this.registry] });
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
  readonly active = new Gauge({ name: 'active_workflows', help: 'Executions running or rolling back now', registers: [this.registry] });
  readonly stepDuration = new Histogram({
    name: 'workflow_step_duration_seconds',
    help: 'Wall time of steps (all attempts) by adapter, action and final status',
    labelNames: ['adapter', 'action', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [this.registry],
  });
  readonly stepRetries = new Counter({ name: 'workflow_step_retries_total', help: 'Step attempts after the first', labelNames: ['adapter', 'action'], registers: [this.registry] });
  readonly rollbacks = new Counter({
    name: 'workflow_rollbacks_total',
    help: 'Rollbacks by result (rolled_back or rollback_failed)',
    labelNames: ['workflow_name', 'result'],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'workflow_queue_depth', help: 'Executions accepted and waiting to start', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The workflow name as a label value, capped in cardinality. */
  workflowLabel(name: string): string {
    if (this.names.has(name)) return name;
    if (this.names.size >= MAX_WORKFLOW_LABELS) return 'other';
    this.names.add(name);
    return name;
  }
}

/**
 * The one flow the FlowRunner control API drives (docs/flowrunner.md#control-api): start replaces
 * the running flow (the old one is stopped first), stop is immediate, update
 * changes a running flow live. Start, stop and update take effect one at a
 * time, in the order they were asked for. Totals for Prometheus keep counting
 * across flows: a replaced flow's numbers become the base of the next.
 */
import {
  createRunner,
  parseConfig,
  parseFlowmap,
  parseUpdate,
  emptyStats,
  ERROR_KINDS,
  noErrors,
  type AppStatus,
  type ErrorKind,
  type FieldProblem,
  type Flowmap,
  type FlowRunnerConfig,
  type LoadRunner,
  type MergeableStats,
  type PromSeries,
  type RunSnapshot,
} from './engine/index.js';
import { DEFAULT_EGRESS, EgressPolicy, type EgressSettings } from '../shared/egress.js';
import { checkFlowDestinations } from './egress-check.js';
import { type ContainerControl, ContainerControlError } from './container/container-control.js';
import type { Shaping } from './container/traffic.js';
import { type ControlledFlow, startFlow } from './flow-start.js';

export type FlowLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

export const START_MESSAGE = 'Flow runner started with the provided flowmap';
export const UPDATE_MESSAGE = 'Flow runner updated';
export const STOPPED_MESSAGE = 'Flow runner forcibly stopped.';
export const DRAINED_MESSAGE = 'Flow runner stopped after its requests in flight finished.';
export const ALREADY_STOPPED_MESSAGE = 'Flow runner is already stopped.';
export const nothingToStopMessage = (status: AppStatus) => `No running flow runner to stop (status=${status}).`;

/** Step ids whose totals are remembered after their flow was replaced; past this the oldest are forgotten. */
export const MAX_REMEMBERED_STEP_IDS = 1000;
/** Who the control API's flow is, when another flow asks for the container control it holds. */
export const API_FLOW_HOLDER = "the control API's flow (stop it with POST /api/stop)";
/** How long agent shutdown waits for the flow to end (stop aborts requests in flight, so it is quick). */
export const SHUTDOWN_WAIT_MS = 2000;

/** A start request checked whole: every problem of `config` and `flowmap` at once, FastAPI-style. */
export function parseStartRequest(
  body: unknown,
): { ok: true; config: FlowRunnerConfig; flowmap: Flowmap } | { ok: false; problems: FieldProblem[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return {
      ok: false,
      problems: [
        {
          loc: ['body'],
          msg: 'Input should be a valid dictionary or object to extract fields from',
          type: 'model_attributes_type',
        },
      ],
    };
  }
  const b = body as Record<string, unknown>;
  const config = parseConfig(b.config, ['body', 'config']);
  const flowmap = parseFlowmap(b.flowmap, ['body', 'flowmap']);
  if (config.ok && flowmap.ok) return { ok: true, config: config.config, flowmap: flowmap.flowmap };
  return { ok: false, problems: [...(config.ok ? [] : config.problems), ...(flowmap.ok ? [] : flowmap.problems)] };
}

export type UpdateResult =
  | { ok: true; config: FlowRunnerConfig; changed: Array<keyof FlowRunnerConfig> }
  | { ok: false; status: 400 | 409; problems: FieldProblem[] }
  | { ok: false; status: 400; notRunning: AppStatus; message: string };

/** Refused because the agent is shutting down. */
export class FlowControlClosed extends Error {
  constructor() {
    super('the agent is shutting down and starts no flow');
  }
}

/** What Prometheus reads: monotonic over the life of the process. */
export interface FlowTotals {
  requests: number;
  flows: number;
  /** Failed requests by kind (network, timeout, http_5xx, …). */
  errors: Record<ErrorKind, number>;
  /** Request durations per step id of the current flowmap, including earlier flows' requests of the same step id. */
  steps: PromSeries[];
}

export interface FlowControlOptions {
  log: FlowLog;
  shutdownWaitMs?: number;
  /** Where flows may send requests (default: DEFAULT_EGRESS). */
  egress?: EgressSettings;
  /** pre_start/post_stop commands and traffic control around the flow (FLOWRUNNER_CONTROL_CONFIG). */
  container?: ContainerControl;
  /** Worker threads a flow's users are shared among (default 1: the agent's event loop, no thread). */
  threads?: number;
}

export class FlowControl {
  /** The flow of the last start: running, or ended and kept so that its numbers can still be read. */
  private flow?: ControlledFlow;
  /** Why the last start failed unexpectedly (app_status `error`), cleared by the next good start. */
  private failure?: string;
  private closed = false;
  /** The runner a graceful stop is waiting for. */
  private draining?: LoadRunner;
  /** Runners stopped on request: their end is expected and not logged as ending by themselves. */
  private readonly stopping = new WeakSet<LoadRunner>();
  private turn: Promise<unknown> = Promise.resolve();
  private readonly base = { requests: 0, flows: 0, errors: noErrors(), steps: new Map<string, PromSeries>() };
  private readonly log: FlowLog;
  private readonly shutdownWaitMs: number;
  private readonly egress: EgressPolicy;
  readonly container?: ContainerControl;
  private readonly threads: number;

  constructor(options: FlowControlOptions) {
    this.threads = options.threads ?? 1;
    this.log = options.log;
    this.container = options.container;
    this.shutdownWaitMs = options.shutdownWaitMs ?? SHUTDOWN_WAIT_MS;
    this.egress = new EgressPolicy(options.egress ?? DEFAULT_EGRESS);
  }

  /** `initializing` until the first start, then the flow's: `running`, `stopped` (on request or by itself), or `error`. */
  get appStatus(): AppStatus {
    if (this.failure !== undefined) return 'error';
    return this.runner?.status ?? 'initializing';
  }

  /**
   * Starts `config` and `flowmap`, replacing (stopping first) a flow that runs. Rejects with FlowControlClosed
   * during shutdown, and with EgressRefusal (forbidden) when the egress policy refuses a destination known up
   * front; then the running flow, if any, keeps running, as it does when the request is invalid. With a
   * container control, the replaced flow's end is released first, then pre_start and `shaping` are applied
   * (startFlow); when either fails the start fails (app_status error) with nothing left applied, and while
   * a workflow step's flow holds the container control the start is refused (AgentError conflict).
   */
  start(config: FlowRunnerConfig, flowmap: Flowmap, shaping?: Shaping): Promise<void> {
    return this.serially(async () => {
      if (this.closed) throw new FlowControlClosed();
      try {
        await checkFlowDestinations(config, flowmap, this.egress);
      } catch (err) {
        this.log('warn', `flow start refused: ${(err as Error).message}`);
        throw err;
      }
      if (this.closed) throw new FlowControlClosed();
      // Refused while a step's flow holds the container control: the running flow, if any, keeps running.
      this.container?.checkFree(API_FLOW_HOLDER);
      const old = this.flow;
      if (old) {
        const wasRunning = old.runner.running;
        this.stopping.add(old.runner);
        await old.stop();
        if (wasRunning) this.log('info', 'the running flow was stopped to start the new one');
      }
      if (this.closed) throw new FlowControlClosed();
      if (old) this.retire(old.runner);
      this.flow = undefined;
      try {
        const flow = await startFlow(
          () =>
            createRunner(config, flowmap, {
              log: this.log,
              egress: this.egress,
              threads: this.threads,
              limit:
                config.max_duration_seconds === null ? undefined : { durationMs: config.max_duration_seconds * 1000 },
            }),
          { container: this.container, shaping, holder: API_FLOW_HOLDER },
        );
        this.flow = flow;
        this.failure = undefined;
        void flow.runner.done.then(() => this.ended(flow.runner));
      } catch (err) {
        this.failure = (err as Error)?.message ?? String(err);
        // The container control logs its own failures.
        if (!(err instanceof ContainerControlError)) this.log('error', `the flow failed to start: ${this.failure}`);
        throw err;
      }
    });
  }

  /**
   * Stops the flow: at once (requests in flight are aborted), or with `graceMs` gracefully (nothing new
   * starts, requests in flight finish and are counted, for at most graceMs). Answers with the control API's
   * message for the state it found.
   */
  stop(graceMs?: number): Promise<string> {
    // An immediate stop cuts a graceful one short at once, rather than waiting behind it.
    if (graceMs === undefined) void this.draining?.stop();
    return this.serially(async () => {
      const status = this.appStatus;
      const flow = this.flow;
      if (status === 'running' && flow) {
        this.stopping.add(flow.runner);
        if (graceMs !== undefined) this.draining = flow.runner;
        try {
          await flow.stop(graceMs);
        } finally {
          this.draining = undefined;
        }
        this.log('info', `flow stopped on request${graceMs === undefined ? '' : ' (gracefully)'}`);
        return graceMs === undefined ? STOPPED_MESSAGE : DRAINED_MESSAGE;
      }
      return status === 'stopped' ? ALREADY_STOPPED_MESSAGE : nothingToStopMessage(status);
    });
  }

  /**
   * A live change of the running flow: a partial config, or `{ config: {...} }` (see parseUpdate), and with
   * `shaping` the traffic control replaced (a failure to apply it rejects, and leaves none applied).
   */
  update(raw: unknown, shaping?: Shaping): Promise<UpdateResult> {
    return this.serially(async (): Promise<UpdateResult> => {
      const status = this.appStatus;
      const flow = this.flow;
      if (status !== 'running' || !flow) {
        return {
          ok: false,
          status: 400,
          notRunning: status,
          message: `Flow runner is not running (status=${status}); start a flow with POST /api/start first`,
        };
      }
      const parsed = parseUpdate(flow.runner.currentConfig, raw);
      if (parsed.ok && parsed.changed.length > 0) flow.runner.update(parsed.config);
      if (parsed.ok && shaping) await flow.reshape(shaping);
      return parsed;
    });
  }

  /** The current (or last) flow's configuration, with live changes; undefined before the first start. */
  get config(): FlowRunnerConfig | undefined {
    return this.runner?.currentConfig;
  }

  /** The current (or last) flow's numbers; undefined before the first start. */
  snapshot(): RunSnapshot | undefined {
    return this.runner?.snapshot();
  }

  /**
   * The current (or last) flow's numbers in the form that merges exactly with other runs'; before the first
   * start, the stats of no run (workers 0). A replaced flow's numbers are not in them.
   */
  mergeableStats(): MergeableStats {
    return this.runner?.mergeableStats() ?? emptyStats();
  }

  /** Requests per second and users of the running flow; zeros when none runs. */
  live(): { rps: number; active_users: number } {
    const r = this.runner;
    if (!r?.running) return { rps: 0, active_users: 0 };
    const s = r.snapshot();
    return { rps: s.rps, active_users: s.active_users };
  }

  totals(): FlowTotals {
    const r = this.runner;
    if (!r) return { requests: this.base.requests, flows: this.base.flows, errors: { ...this.base.errors }, steps: [] };
    return {
      requests: this.base.requests + r.stats.totalRequests,
      flows: this.base.flows + r.stats.flowCount,
      errors: addErrors(this.base.errors, r.stats.errors),
      steps: r.stats.promSeries().map((s) => addSeries(this.base.steps.get(s.step), s)),
    };
  }

  /** For agent shutdown: no new flow starts, the running one stops; waits at most shutdownWaitMs. */
  async shutdown(): Promise<void> {
    this.closed = true;
    const flow = this.flow;
    if (!flow?.runner.running) return this.serially(async () => flow?.release());
    this.stopping.add(flow.runner);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.shutdownWaitMs)));
    await Promise.race([flow.runner.stop(), late]);
    clearTimeout(timer);
    this.log('info', 'flow stopped: the agent is shutting down');
    await this.serially(async () => flow.release());
  }

  /** Runs `fn` after every operation asked for before it, whatever their outcome. */
  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.turn.then(fn, fn);
    this.turn = result.catch(() => undefined);
    return result;
  }

  /** Moves a replaced flow's numbers into the base, so that the totals keep counting. */
  private retire(r: LoadRunner): void {
    this.base.requests += r.stats.totalRequests;
    this.base.flows += r.stats.flowCount;
    this.base.errors = addErrors(this.base.errors, r.stats.errors);
    for (const s of r.stats.promSeries()) {
      const sum = addSeries(this.base.steps.get(s.step), s);
      this.base.steps.delete(s.step); // re-inserted: the Map's order is last use, oldest first
      this.base.steps.set(s.step, sum);
    }
    for (const id of this.base.steps.keys()) {
      if (this.base.steps.size <= MAX_REMEMBERED_STEP_IDS) break;
      this.base.steps.delete(id);
    }
  }

  private get runner(): LoadRunner | undefined {
    return this.flow?.runner;
  }

  private ended(r: LoadRunner): void {
    // Nothing of the flow's is left behind when it ends by itself: startFlow releases it on the runner's end.
    if (this.stopping.has(r) || this.runner !== r) return;
    if (r.status === 'error') this.log('error', 'the flow ended by itself with an error; app_status is error');
    else this.log('info', `the flow ended by itself (status ${r.status})`);
  }
}

function addErrors(a: Record<ErrorKind, number>, b: Record<ErrorKind, number>): Record<ErrorKind, number> {
  const out = noErrors();
  for (const k of ERROR_KINDS) out[k] = a[k] + b[k];
  return out;
}

function addSeries(base: PromSeries | undefined, s: PromSeries): PromSeries {
  if (!base) return s;
  return {
    step: s.step,
    cumulative: s.cumulative.map((c, i) => c + (base.cumulative[i] ?? 0)),
    sum: base.sum + s.sum,
    count: base.count + s.count,
  };
}

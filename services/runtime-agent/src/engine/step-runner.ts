/**
 * Runs one step: render templates, check the input, run (or dry-run) the
 * action with a per-attempt timeout, retry per policy, record every attempt.
 */
import { USE_EXAMPLE_OUTPUT, type ActionSpec, type Outputs, type StepContext } from '../../../../adapters/contract.js';
import { AgentError, type ErrorRecord, ValidationError, toAgentError } from '../../../../adapters/errors.js';
import { addAbortCallback, removeAbortCallback } from '../../../../adapters/shared/abort.js';
import { mutatesWith, type AdapterRegistry } from '../adapter-registry.js';
import type { Metrics } from '../metrics.js';
import type { BackgroundProcess, OutputsSource, StepPhase, StepStatus, TrackedProcess } from '../store/types.js';
import { startTicksOf } from './orphans.js';
import type { RetryPolicy } from '../wpk/types.js';
import type { ExecutionLog } from './execution-log.js';
import { childController, Interrupt, interruptError, sleep } from './interrupts.js';
import { outputsAsJson } from './outputs.js';
import type { Redactor } from './redact.js';
import { retryDelayMs } from './retry.js';
import { hasTemplates, renderValue, type Scope } from './templates.js';
import { nowIso } from '../clock.js';
import type { StateWriter } from './state.js';

/** After an abort, how long an action may take to settle before the engine stops waiting for it. */
export const ABANDON_AFTER_ABORT_MS = 5000;

export interface StepDef {
  name: string;
  adapter: string;
  action: string;
  with?: Record<string, unknown>;
  timeoutSeconds?: number;
  retries?: RetryPolicy;
  /** Built from concrete values (a default compensation): not templated again. */
  literal?: boolean;
}

export interface StepTarget {
  executionId: string;
  /** The execution's workflow, for its journal events. */
  workflowId: string;
  phase: StepPhase;
  idx: number;
  dryRun: boolean;
  log: ExecutionLog;
  redactor: Redactor;
  /** Aborts on cancel, deadline or shutdown. */
  signal: AbortSignal;
  /** Epoch ms after which no retry starts (the whole-run deadline). */
  deadlineAt?: number;
  /** Called right before an action that may change something runs for real: commits what is recorded so far. */
  beforeSideEffect?: () => void;
  /** The first attempt's input, made when the execution started (prepareInputs). */
  prepared?: PreparedInput;
  /** Process groups the step's action started and that still run. */
  groups?: TrackedProcess[];
}

/** A step's action and first-attempt input, rendered, checked and scanned for credentials ahead of time. */
export interface PreparedInput {
  spec: ActionSpec;
  input: Record<string, unknown>;
  mutating: boolean;
  /** The credentials in the input (secretsIn), masked from the moment the step starts, as for any step. */
  secrets: unknown[];
}

export type StepResult =
  | { ok: true; input: Record<string, unknown>; outputs: Outputs; attempts: number }
  | { ok: false; error: AgentError; input?: Record<string, unknown>; attempts: number };

export interface StepRunnerDeps {
  registry: AdapterRegistry;
  state: StateWriter;
  metrics: Metrics;
  /** MAX_OUTPUT_BYTES: larger outputs fail the step with payload_too_large and are not stored. */
  maxOutputBytes: number;
  /** Told of each process group a step leaves running (the agent's own log says so). */
  onBackgroundStarted?: (p: BackgroundProcess) => void;
}

export async function runStep(
  deps: StepRunnerDeps,
  target: StepTarget,
  def: StepDef,
  scope: Scope,
): Promise<StepResult> {
  const { state, metrics } = deps;
  const ref = { id: target.executionId, workflowId: target.workflowId };
  const started = performance.now();
  const retries = def.retries?.count ?? 0;
  let input: Record<string, unknown> | undefined;
  let attempt = 0;
  for (;;) {
    attempt++;
    const startedAt = attempt === 1 ? nowIso() : undefined;
    state.stepStarted(
      ref,
      target.phase,
      target.idx,
      def.name,
      { status: 'running', startedAt, attempts: attempt },
      { deferred: true },
    );
    try {
      // Cancelled (or past the deadline) before this step began: the action is never called.
      if (target.signal.aborted) throw interruptError(target.signal)!;
      // A retry renders its input anew: the first attempt's may have been changed by the action.
      const ready = attempt === 1 ? target.prepared : undefined;
      const spec = ready?.spec ?? findAction(deps, def);
      input = ready?.input ?? prepareInput(deps, target, def, scope, spec);
      // Before anything logs or stores the input: credentials written into it are masked like secret parameters.
      if (ready) {
        if (ready.secrets.length > 0) target.redactor.add(ready.secrets);
      } else if (spec.secretsIn) target.redactor.add(spec.secretsIn(input));
      const mutating = ready ? ready.mutating : mutatesWith(spec, input);
      const { outputs, source } = await runAttempt(deps, spec, target, def, input, attempt, mutating);
      const outputsJson = outputsAsJson(target.redactor, outputs, deps.maxOutputBytes, def.name);
      finishStep(deps, target, def, 'succeeded', started, attempt, { input, outputsJson, source, mutating });
      return { ok: true, input, outputs, attempts: attempt };
    } catch (thrown) {
      const error = interruptError(target.signal) ?? toAgentError(thrown);
      const delay = retryDelayMs(def.retries ?? { count: 0 }, attempt);
      const canRetry = error.retryable && attempt <= retries && !target.signal.aborted;
      if (canRetry && (target.deadlineAt === undefined || Date.now() + delay < target.deadlineAt)) {
        target.log.write(
          'warn',
          `attempt ${attempt} failed (${error.type}: ${error.message}); retrying in ${delay} ms`,
          def.name,
        );
        metrics.stepRetries.inc({ adapter: def.adapter, action: def.action });
        state.stepRetrying(ref, target.phase, def.name, attempt, delay, errorRecord(target, error));
        try {
          await sleep(delay, target.signal);
          continue;
        } catch (slept) {
          const interrupted = toAgentError(slept);
          finishStep(deps, target, def, statusFor(interrupted, target.phase), started, attempt, {
            input,
            error: interrupted,
          });
          return { ok: false, error: interrupted, input, attempts: attempt };
        }
      }
      finishStep(deps, target, def, statusFor(error, target.phase), started, attempt, { input, error });
      return { ok: false, error, input, attempts: attempt };
    }
  }
}

/** A compensation a shutdown interrupted is abandoned: the rollback resumes with it on the next start. */
function statusFor(error: AgentError, phase: StepPhase): StepStatus {
  if (error.type === 'interrupted' && phase === 'rollback') return 'abandoned';
  return error.type === 'cancelled' ? 'cancelled' : 'failed';
}

function findAction(deps: StepRunnerDeps, def: StepDef): ActionSpec {
  const found = deps.registry.find(def.adapter, def.action);
  if (!found.ok) throw new AgentError('validation_error', found.message);
  return found.spec;
}

/**
 * The first-attempt inputs of the steps without templates, made when the execution starts: rendering,
 * the input check and the credential scan give the same result then as when the step runs, and done in
 * one batch they cost less than spread between the steps' I/O. Nothing here takes effect before the
 * step starts (its credentials are masked from then on, as for any step), and a step whose input would fail
 * the check, or whose scan throws, finds out when it runs, as any step does.
 */
export function prepareInputs(deps: StepRunnerDeps, defs: StepDef[]): Array<PreparedInput | undefined> {
  return defs.map((def) => {
    if (def.literal || hasTemplates(def.with)) return undefined;
    const found = deps.registry.find(def.adapter, def.action);
    if (!found.ok) return undefined;
    try {
      const input = renderValue(def.with ?? {}, {}) as Record<string, unknown>;
      if (deps.registry.checkInput(found.spec, input).length > 0) return undefined;
      const secrets = found.spec.secretsIn ? found.spec.secretsIn(input) : [];
      return { spec: found.spec, input, mutating: mutatesWith(found.spec, input), secrets };
    } catch {
      return undefined;
    }
  });
}

function prepareInput(
  deps: StepRunnerDeps,
  target: StepTarget,
  def: StepDef,
  scope: Scope,
  spec: ActionSpec,
): Record<string, unknown> {
  const onPlaceholder = (expr: string) =>
    target.log.write('warn', `dry run: \${{ ${expr} }} is unknown until a real run; using a placeholder`, def.name);
  const rendered = def.literal
    ? structuredClone(def.with ?? {})
    : renderValue(def.with ?? {}, scope, { dryRun: target.dryRun, onPlaceholder });
  if (rendered === null || typeof rendered !== 'object' || Array.isArray(rendered)) {
    throw new AgentError('template_error', `'with' of step '${def.name}' must render to an object`);
  }
  const problems = deps.registry.checkInput(spec, rendered, ['with']);
  if (problems.length) {
    throw new ValidationError(
      `input of ${def.adapter}.${def.action} is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
      problems,
    );
  }
  return rendered as Record<string, unknown>;
}

async function runAttempt(
  deps: StepRunnerDeps,
  spec: ActionSpec,
  target: StepTarget,
  def: StepDef,
  input: Record<string, unknown>,
  attempt: number,
  mutating: boolean,
): Promise<{ outputs: Outputs; source: 'run' | 'example' | 'dry_run' }> {
  // A step without its own timeout runs on the execution's signal; one with a timeout gets a child that also aborts on it.
  const timeoutMs = def.timeoutSeconds !== undefined ? def.timeoutSeconds * 1000 : undefined;
  const child = timeoutMs === undefined ? undefined : childController(target.signal);
  const signal = child ? child.controller.signal : target.signal;
  const timer =
    child === undefined
      ? undefined
      : setTimeout(
          () =>
            child.controller.abort(
              new Interrupt(
                'step_timeout',
                `step '${def.name}' attempt ${attempt} timed out after ${def.timeoutSeconds}s`,
              ),
            ),
          timeoutMs,
        );
  const ctx: StepContext = {
    signal,
    log: target.log.forStep(def.name),
    dryRun: target.dryRun,
    executionId: target.executionId,
    step: def.name,
    attempt,
    secret: (value) => target.redactor.add([value]),
    processGroupStarted: (pgid) => trackGroup(deps, target, pgid),
    backgroundGroupStarted: (pgid, command) => keepGroup(deps, target, def.name, pgid, command),
    progress: (data) => {
      if (signal.aborted) return;
      const ref = { id: target.executionId, workflowId: target.workflowId };
      try {
        deps.state.stepProgress(
          ref,
          target.phase,
          def.name,
          attempt,
          target.redactor.value(data) as Record<string, unknown>,
        );
      } catch (err) {
        target.log.write('warn', `progress report dropped: ${(err as Error).message}`, def.name);
      }
    },
  };
  try {
    if (target.dryRun && !spec.supportsDryRun && mutating) {
      ctx.log.info(`dry run: would run ${def.adapter}.${def.action} with ${JSON.stringify(input)}`);
      return exampleOf(spec);
    }
    if (mutating && !target.dryRun) target.beforeSideEffect?.();
    const out = await untilSettledOrAbandoned(spec.run(ctx, input), signal);
    if (out !== USE_EXAMPLE_OUTPUT)
      return { outputs: out, source: target.dryRun && spec.supportsDryRun ? 'dry_run' : 'run' };
    if (!target.dryRun)
      throw new AgentError(
        'adapter_error',
        `${def.adapter}.${def.action} asked for its example output outside a dry run`,
        {
          retryable: false,
        },
      );
    return exampleOf(spec);
  } catch (err) {
    throw interruptError(signal) ?? err;
  } finally {
    clearTimeout(timer);
    child?.dispose();
  }
}

/** The step's "succeeded" line says that these outputs are the example ones. */
function exampleOf(spec: ActionSpec): { outputs: Outputs; source: 'example' } {
  return { outputs: structuredClone(spec.exampleOutput), source: 'example' };
}

/** The action's own settlement, or an interrupt once it ignored an abort for ABANDON_AFTER_ABORT_MS. */
function untilSettledOrAbandoned<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(() => reject(interruptError(signal)), ABANDON_AFTER_ABORT_MS);
    };
    const waiting = !signal.aborted;
    if (waiting) addAbortCallback(signal, onAbort);
    else onAbort();
    const settle = () => {
      clearTimeout(timer);
      if (waiting) removeAbortCallback(signal, onAbort);
    };
    work.then(
      (v) => {
        settle();
        resolve(v);
      },
      (e) => {
        settle();
        reject(e);
      },
    );
  });
}

/**
 * Records a process group on its step, committed before this returns (recovery ends the groups a crash left
 * running); the returned function forgets it once it is gone.
 */
function trackGroup(deps: StepRunnerDeps, target: StepTarget, pgid: number): () => void {
  target.groups ??= [];
  const groups = target.groups;
  const group: TrackedProcess = { pid: pgid, startTicks: startTicksOf(pgid) ?? 0 };
  const ref = { id: target.executionId, workflowId: target.workflowId };
  groups.push(group);
  deps.state.processGroups(ref, target.phase, target.idx, groups, {});
  return () => {
    groups.splice(groups.indexOf(group), 1);
    deps.state.processGroups(ref, target.phase, target.idx, groups, { deferred: true });
  };
}

/** A group the step leaves running: recorded with the execution (its command masked) until it is gone. */
function keepGroup(deps: StepRunnerDeps, target: StepTarget, step: string, pgid: number, command: string[]) {
  const p: BackgroundProcess = {
    pid: pgid,
    startTicks: startTicksOf(pgid) ?? 0,
    executionId: target.executionId,
    step,
    command: command.map((arg) => target.redactor.text(arg)),
    startedAt: nowIso(),
  };
  deps.state.backgroundStarted(p);
  deps.onBackgroundStarted?.(p);
  return () => deps.state.backgroundGone(p);
}

/** An error as steps, events and records keep it: secrets masked. */
function errorRecord(target: StepTarget, error: AgentError): ErrorRecord {
  return {
    type: error.type,
    message: target.redactor.text(error.message),
    details: target.redactor.value(error.details),
  };
}

function finishStep(
  deps: StepRunnerDeps,
  target: StepTarget,
  def: StepDef,
  status: StepStatus,
  started: number,
  attempt: number,
  result: {
    input?: Record<string, unknown>;
    outputsJson?: string;
    source?: OutputsSource;
    error?: AgentError;
    mutating?: boolean;
  },
): void {
  const { redactor } = target;
  const error = result.error ? errorRecord(target, result.error) : undefined;
  const durationMs = performance.now() - started;
  // The outcome of a step that changed something, or failed, commits at the end of this turn (a rollback after
  // a crash needs it). A read-only step's outcome, and anything in a dry run (which changed nothing), may wait
  // a little for company. Everything pending commits before the next side effect starts (beforeSideEffect).
  // Recovery treats the step after the last finished one as in flight.
  deps.state.stepFinished(
    { id: target.executionId, workflowId: target.workflowId },
    target.phase,
    target.idx,
    def.name,
    { status, attempt, durationMs: Math.round(durationMs), error },
    {
      finishedAt: nowIso(),
      input: result.input ? redactor.value(result.input) : undefined,
      outputsJson: result.outputsJson,
      outputsSource: result.source,
      error,
    },
    { deferred: true, critical: !target.dryRun && (result.mutating !== false || result.error !== undefined) },
  );
  deps.metrics.stepDuration.observe({ adapter: def.adapter, action: def.action, status }, durationMs / 1000);
  if (error?.type === 'cancelled') target.log.write('warn', `step cancelled: ${error.message}`, def.name);
  else if (error) target.log.write('error', `step failed: ${error.type}: ${error.message}`, def.name);
  else
    target.log.write(
      'info',
      `step ${status}${result.source === 'example' ? ' (dry run, example outputs)' : ''}`,
      def.name,
    );
}

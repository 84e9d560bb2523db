/**
 * The adapter contract: an action is data (id, input schema, example output,
 * whether it mutates, its default compensation) plus one `run` function.
 *
 * The engine owns everything around `run`: templating, input validation,
 * retries, per-attempt timeouts, logging, dry-run fallbacks and rollback.
 * Adapters never import the engine or the HTTP layer.
 */
import type { AgentError, Problem } from './errors.js';
import type { PathSegment } from './shared/paths.js';

/** A JSON Schema (draft 2020-12 subset that Ajv understands). */
export type JsonSchema = Record<string, unknown>;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Writes to the execution's own log (what `GET /logs/{id}` returns). Secrets are masked by the engine. */
export interface StepLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** One line of a child process's or remote stream's output. */
  line(stream: 'stdout' | 'stderr', text: string): void;
}

/**
 * Everything a running action may use. Passed as an argument, never as `this`.
 *
 * Cancellation: `signal` aborts on cancel, on the per-attempt timeout, on the
 * whole-run deadline and on shutdown. An action must stop its work and settle
 * promptly when it fires (a shell action kills its process group). The engine
 * decides the error type from the reason, so an action may simply throw.
 * The signal may outlive the step (it can be the execution's own), so an
 * action removes every listener it adds to it before it settles.
 */
export interface StepContext {
  signal: AbortSignal;
  log: StepLog;
  dryRun: boolean;
  executionId: string;
  /** The step's name in the package (stable across retries and restarts). */
  step: string;
  /** 1 for the first attempt; retries count up. */
  attempt: number;
  /**
   * Registers a credential the action came across (a Set-Cookie value, a Kubernetes Secret's data):
   * from now on the execution masks it in its records, logs and errors, like a secret parameter.
   * The action may still use the value itself, and later steps may template it.
   */
  secret(value: string): void;
}

/** What a rollback runs: another action of the same adapter unless `adapter` says otherwise. */
export interface Compensation {
  adapter?: string;
  action: string;
  with: Record<string, unknown>;
}

export type Outputs = Record<string, unknown>;

/**
 * One action of an adapter.
 *
 * Retries: the engine retries a thrown AgentError unless its type is
 * validation_error, template_error, cancelled or interrupted, or it says
 * `retryable: false`. Actions never retry on their own.
 */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds actions of every input type
export interface ActionSpec<I = any, O extends Outputs = Outputs> {
  id: string;
  description: string;
  /** True when the action can change something outside the agent. */
  mutates: boolean;
  /**
   * Whether this particular input changes something (an HTTP GET does not), when that is narrower
   * than `mutates`. The engine commits what it recorded before every step that mutates, and warns
   * about mutating steps without compensation.
   */
  mutatesFor?(input: I): boolean;
  /**
   * Credentials in a rendered input that no secret parameter carries (an Authorization header written into
   * the package, a Secret's data in a manifest): the engine masks them before the input is logged or stored.
   */
  secretsIn?(input: I): string[];
  /** JSON Schema of the input (`with` after templating); validated before `run`. */
  input: JsonSchema;
  /**
   * Checks that the schema cannot state, made when a package is validated (`/validate`, `/execute`,
   * bundled packages) on a step's or rollback handler's raw `with`, before any template is rendered:
   * rules about which values may be templates, or that depend on the agent's configuration. Any string
   * holding `${{ }}` stands for a value not known yet. Called whether or not `with` matched the schema,
   * so it must accept any shape and never throw. Problem paths are absolute: extend `at` (the path of
   * `with`). Only what is certain before rendering belongs here; `run` still checks the rendered input.
   */
  checkStatic?(withRaw: Record<string, unknown>, at: PathSegment[]): Problem[];
  /** An output of a typical real run: documentation, and what a dry run returns where only a real run could know. */
  exampleOutput: O;
  /**
   * Dry run of this action. Return outputs, or undefined to let the engine use
   * `exampleOutput`. Without it the engine runs non-mutating actions for real
   * and, for mutating ones, only logs the rendered input.
   */
  dryRun?(ctx: StepContext, input: I): Promise<O | undefined> | O | undefined;
  /** The default compensation after a successful run (a step's own `rollback` overrides it). */
  compensate?(input: I, output: O): Compensation | undefined;
  run(ctx: StepContext, input: I): Promise<O>;
}

export interface AdapterHealth {
  ready: boolean;
  message?: string;
  details?: Record<string, unknown>;
}

/** An adapter: a name, its actions, and optional configuration and health. */
export interface Adapter {
  name: string;
  description: string;
  actions: Record<string, ActionSpec>;
  /** (Re)loads configuration (`POST /init`); must not throw for a missing optional config. */
  init?(config: Record<string, unknown>): Promise<void>;
  health?(): Promise<AdapterHealth>;
}

/** Identity helper that keeps the action's input and output types. */
export function defineAction<I, O extends Outputs>(spec: ActionSpec<I, O>): ActionSpec<I, O> {
  return spec;
}

export type { AgentError };

/**
 * The adapter contract: an action is data (id, input and output schemas, example output,
 * whether it mutates, whether it dry-runs, its default compensation) plus one `run` function.
 *
 * The engine owns everything around `run`: templating, input validation,
 * retries, per-attempt timeouts, logging, dry-run fallbacks and rollback.
 * Adapters never import the engine or the HTTP layer.
 */
import type { Static, TSchema } from '@sinclair/typebox';
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
  /**
   * Records a process group the action started (its leader's pid), durably, before the action lets it do
   * anything that matters: if the agent is killed while the group runs, the next start ends the group before
   * any rollback runs. Call the returned function once the group is gone.
   */
  processGroupStarted(pgid: number): () => void;
  /**
   * Records a process group the action leaves running after the step (a server that shell.start started),
   * durably and with this execution, before the action lets it do anything that matters. The agent ends the
   * group when this execution ends other than completed (after its rollback), when the agent shuts down, and
   * on the next start after the agent was killed. Call the returned function once the group is gone.
   */
  backgroundGroupStarted(pgid: number, command: string[]): () => void;
  /**
   * Reports where a long step stands (a distributed load run's fleet numbers, say): written to the event
   * journal as `step.progress` with the execution's secrets masked, so every surface can show it while
   * the step runs. Cheap, but meant for a few calls a second at most; never throws.
   */
  progress(data: Record<string, unknown>): void;
}

/** What a rollback runs: another action of the same adapter unless `adapter` says otherwise. */
export interface Compensation {
  adapter?: string;
  action: string;
  with: Record<string, unknown>;
}

export type Outputs = Record<string, unknown>;

/**
 * What `run` returns in a dry run to have the engine fill in `exampleOutput` (the step records
 * outputs_source `example`): for an action that can only know its outputs by really running.
 * Outputs returned in a dry run are recorded as outputs_source `dry_run`. Outside a dry run the engine
 * fails the step with adapter_error if an action returns it.
 */
export const USE_EXAMPLE_OUTPUT: unique symbol = Symbol('use example output');
export type UseExampleOutput = typeof USE_EXAMPLE_OUTPUT;

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
  /**
   * Whether the action can change something outside the agent; a function when that depends on the
   * input (an HTTP GET does not). The engine commits what it recorded before every step that mutates,
   * and warns about mutating steps without compensation. Read through the registry's `mutatesWith`.
   */
  mutates: boolean | ((input: I) => boolean);
  /**
   * Whether `run` honours `ctx.dryRun`: in a dry run it changes nothing (a server-side dry run, a plan
   * in the log) and returns its outputs, or USE_EXAMPLE_OUTPUT. Without it, in a dry run the engine
   * runs the action for real only when it does not mutate; a mutating one is only logged, and its
   * outputs are `exampleOutput`.
   */
  supportsDryRun: boolean;
  /**
   * Credentials in a rendered input that no secret parameter carries (an Authorization header written into
   * the package, a Secret's data in a manifest): the engine masks them before the input is logged or stored.
   */
  secretsIn?(input: I): string[];
  /** JSON Schema of the input (`with` after templating); validated before `run`. */
  input: JsonSchema;
  /** JSON Schema of the outputs `run` returns, and of `exampleOutput` (documentation: not checked at run time). */
  output: JsonSchema;
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
  /** The default compensation after a successful run (a step's own `rollback` overrides it). */
  compensate?(input: I, output: O): Compensation | undefined;
  /** Runs the action; with `ctx.dryRun` (only when `supportsDryRun`) it may answer USE_EXAMPLE_OUTPUT. */
  run(ctx: StepContext, input: I): Promise<O | UseExampleOutput>;
}

export interface AdapterHealth {
  ready: boolean;
  /** False when the adapter has no configuration to be ready with (k8s without a cluster); absent: configured. */
  configured?: boolean;
  message?: string;
  details?: Record<string, unknown>;
}

/** An adapter: a name, its actions, its readiness, and optional configuration and health. */
export interface Adapter {
  name: string;
  description: string;
  actions: Record<string, ActionSpec>;
  /** (Re)loads configuration (`POST /init`); must not throw for a missing optional config. */
  init?(config: Record<string, unknown>): Promise<void>;
  /**
   * Whether the adapter's configuration lets its steps run at all, decided at once from what the agent
   * already knows: no network, no loading of client libraries. `message` says what to configure.
   */
  readiness(): AdapterHealth;
  /** Whether what the adapter talks to answers (may use the network; bounded in time). */
  health?(): Promise<AdapterHealth>;
}

/** A TypeBox schema of an object: what an action outputs. */
export type OutputSchema = TSchema & { static: Outputs };

/** An action as written: its input and output are TypeBox schemas, which give `run` its static types. */
export type ActionDefinition<In extends TSchema, Out extends OutputSchema> = Omit<
  ActionSpec<Static<In>, Static<Out>>,
  'input' | 'output'
> & { input: In; output: Out };

/**
 * Declares an action once: the TypeBox schemas give the types of its input and output, and the spec
 * keeps them as plain JSON Schema (without TypeBox's symbol keys), which is what Ajv and the published
 * WPK schema read.
 */
export function defineAction<In extends TSchema, Out extends OutputSchema>(
  definition: ActionDefinition<In, Out>,
): ActionSpec<Static<In>, Static<Out>> {
  return { ...definition, input: plainJson(definition.input), output: plainJson(definition.output) };
}

/** One plain copy per schema: actions built from the same declaration share it. */
const plainCopies = new WeakMap<TSchema, JsonSchema>();

function plainJson(schema: TSchema): JsonSchema {
  let plain = plainCopies.get(schema);
  if (!plain) {
    plain = JSON.parse(JSON.stringify(schema)) as JsonSchema;
    plainCopies.set(schema, plain);
  }
  return plain;
}

export type { AgentError };

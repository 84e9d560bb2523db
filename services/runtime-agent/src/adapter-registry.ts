/** The adapters this agent runs, and their compiled input validators. */
import type { ActionSpec, Adapter, AdapterHealth } from '../../../adapters/contract.js';
import type { Problem } from '../../../adapters/errors.js';
import type { PathSegment } from '../../../adapters/shared/paths.js';
import { makeAjv, toProblems, type Ajv2020, type ValidateFunction } from './wpk/ajv.js';
import { allowTemplates } from './wpk/schema.js';

/**
 * Whether running `spec` with `input` can change something outside the agent; without an input,
 * whether some input can (an action whose answer depends on the input may).
 */
export function mutatesWith(spec: ActionSpec, input?: unknown): boolean {
  if (typeof spec.mutates === 'boolean') return spec.mutates;
  return input === undefined || spec.mutates(input);
}

export type ActionLookup = { ok: true; spec: ActionSpec } | { ok: false; message: string };

/** An action's input validators, each compiled when first needed. */
interface Validators {
  /** Rendered inputs (fills defaults in). */
  strict?: ValidateFunction;
  /** A package's `with` before rendering (templates stand in for any value). */
  lenient?: ValidateFunction;
}

export class AdapterRegistry {
  private readonly byName = new Map<string, Adapter>();
  /**
   * By spec: the engine checks every step's rendered input, and a lookup by a composed name would build and
   * hash a string each time. An action's validators are compiled when it is first checked, not at start:
   * an idle agent holds only those of the bundled workflows' actions (docs/operations.md#memory). That
   * every action's schema compiles is checked by the tests (tests/specs/adapters/action-schemas.spec.ts).
   */
  private readonly validators = new Map<ActionSpec, Validators>();
  private strictAjv?: Ajv2020;
  private lenientAjv?: Ajv2020;

  constructor(adapters: Adapter[]) {
    for (const adapter of adapters) {
      this.byName.set(adapter.name, adapter);
      for (const spec of Object.values(adapter.actions)) this.validators.set(spec, {});
    }
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  list(): Adapter[] {
    return [...this.byName.values()];
  }

  /** Whether this agent can run the adapter now (configured; checked without network). */
  readiness(adapter: string): AdapterHealth {
    const a = this.byName.get(adapter);
    if (!a)
      return { ready: false, message: `adapter '${adapter}' is not registered; known: ${this.names().join(', ')}` };
    return a.readiness();
  }

  find(adapter: string, action: string): ActionLookup {
    const a = this.byName.get(adapter);
    if (!a) return { ok: false, message: `adapter '${adapter}' is not registered; known: ${this.names().join(', ')}` };
    const spec = a.actions[action];
    if (!spec)
      return {
        ok: false,
        message: `adapter '${adapter}' has no action '${action}'; it has: ${Object.keys(a.actions).join(', ')}`,
      };
    return { ok: true, spec };
  }

  /**
   * Checks a package's `with` before templates are rendered (templates stand in for any value): against
   * the action's schema, and with the action's own `checkStatic` where it has one.
   */
  checkStatic(adapter: string, action: string, input: unknown, at: PathSegment[]): Problem[] {
    const actions = this.byName.get(adapter)?.actions;
    const spec = actions && Object.hasOwn(actions, action) ? actions[action] : undefined;
    const validators = spec && this.validators.get(spec);
    if (!spec || !validators) return [];
    const validate = validators.lenient ?? this.lenientValidator(spec, validators);
    const problems = validate(input ?? {}) ? [] : toProblems(validate.errors, at);
    const raw =
      input !== null && typeof input === 'object' && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
    if (spec.checkStatic) problems.push(...spec.checkStatic(raw, at));
    return problems;
  }

  /** Checks a rendered input and fills the action's defaults into it. */
  checkRuntime(adapter: string, action: string, input: unknown, at: PathSegment[] = []): Problem[] {
    const found = this.find(adapter, action);
    return found.ok ? this.checkInput(found.spec, input, at) : [];
  }

  /** checkRuntime for an action already found. */
  checkInput(spec: ActionSpec, input: unknown, at: PathSegment[] = []): Problem[] {
    const validators = this.validators.get(spec);
    if (!validators) return [];
    const validate = validators.strict ?? this.strictValidator(spec, validators);
    if (validate(input)) return [];
    return toProblems(validate.errors, at);
  }

  private strictValidator(spec: ActionSpec, validators: Validators): ValidateFunction {
    this.strictAjv ??= makeAjv(true);
    validators.strict = this.strictAjv.compile(spec.input);
    return validators.strict;
  }

  private lenientValidator(spec: ActionSpec, validators: Validators): ValidateFunction {
    this.lenientAjv ??= makeAjv(false);
    validators.lenient = this.lenientAjv.compile(allowTemplates(spec.input));
    return validators.lenient;
  }
}

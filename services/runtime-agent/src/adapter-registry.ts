/** The adapters this agent runs, and their compiled input validators. */
import type { ActionSpec, Adapter, AdapterHealth } from '../../../adapters/contract.js';
import type { Problem } from '../../../adapters/errors.js';
import type { PathSegment } from '../../../adapters/shared/paths.js';
import { makeAjv, toProblems, type ValidateFunction } from './wpk/ajv.js';
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

export class AdapterRegistry {
  private readonly byName = new Map<string, Adapter>();
  /** By spec: the engine checks every step's rendered input, and a lookup by a composed name would build and hash a string each time. */
  private readonly strict = new Map<ActionSpec, ValidateFunction>();
  private readonly lenient = new Map<string, ValidateFunction>();

  constructor(adapters: Adapter[]) {
    const strictAjv = makeAjv(true);
    const lenientAjv = makeAjv(false);
    for (const adapter of adapters) {
      this.byName.set(adapter.name, adapter);
      for (const [id, spec] of Object.entries(adapter.actions)) {
        this.strict.set(spec, strictAjv.compile(spec.input));
        this.lenient.set(`${adapter.name}.${id}`, lenientAjv.compile(allowTemplates(spec.input)));
      }
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
    const validate = this.lenient.get(`${adapter}.${action}`);
    const problems = !validate || validate(input ?? {}) ? [] : toProblems(validate.errors, at);
    const spec = this.byName.get(adapter)?.actions[action];
    const raw =
      input !== null && typeof input === 'object' && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
    if (spec?.checkStatic) problems.push(...spec.checkStatic(raw, at));
    return problems;
  }

  /** Checks a rendered input and fills the action's defaults into it. */
  checkRuntime(adapter: string, action: string, input: unknown, at: PathSegment[] = []): Problem[] {
    const found = this.find(adapter, action);
    return found.ok ? this.checkInput(found.spec, input, at) : [];
  }

  /** checkRuntime for an action already found. */
  checkInput(spec: ActionSpec, input: unknown, at: PathSegment[] = []): Problem[] {
    const validate = this.strict.get(spec);
    if (!validate || validate(input)) return [];
    return toProblems(validate.errors, at);
  }
}

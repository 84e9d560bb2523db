/**
 * Package validation shared by POST /validate and POST /execute: parse, schema,
 * actions, references, parameter definitions and limits — every problem at once.
 */
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { Problem } from '../../../../adapters/errors.js';
import { jsonPath, type PathSegment } from '../../../../adapters/shared/paths.js';
import type { AdapterRegistry } from '../adapter-registry.js';
import { makeAjv, toProblems, type ValidateFunction } from './ajv.js';
import { checkDefinitions } from './parameters.js';
import { checkTemplates, checkWhen, type RefContext } from './references.js';
import { envelopeSchema } from './schema.js';
import { PACKAGE_LIMITS, workflowIdOf, type Wpk, type WpkStep } from './types.js';

export interface ValidationReport {
  valid: boolean;
  workflow_id: string | null;
  errors: Problem[];
  warnings: Problem[];
}

export interface ValidationOutcome {
  report: ValidationReport;
  /** Present only when the package is valid. */
  wpk?: Wpk;
}

export class PackageValidator {
  private readonly envelope: ValidateFunction;

  constructor(private readonly registry: AdapterRegistry) {
    this.envelope = makeAjv(false).compile(envelopeSchema(registry.names()));
  }

  /** Accepts an object, or a string holding YAML or JSON. */
  parse(content: unknown): { value?: unknown; problems: Problem[] } {
    if (typeof content === 'string') {
      const bytes = Buffer.byteLength(content);
      if (bytes > PACKAGE_LIMITS.maxBytes) return { problems: [{ path: '$', message: `package is ${bytes} bytes; the limit is ${PACKAGE_LIMITS.maxBytes}` }] };
      try {
        return { value: parseYaml(content, { maxAliasCount: 100 }), problems: [] };
      } catch (err) {
        const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
        return { problems: [{ path: '$', message: `not valid YAML or JSON${where}: ${(err as Error).message.split('\n')[0]}` }] };
      }
    }
    if (content !== null && typeof content === 'object' && !Array.isArray(content)) {
      const bytes = Buffer.byteLength(JSON.stringify(content));
      if (bytes > PACKAGE_LIMITS.maxBytes) return { problems: [{ path: '$', message: `package is ${bytes} bytes; the limit is ${PACKAGE_LIMITS.maxBytes}` }] };
      return { value: content, problems: [] };
    }
    return { problems: [{ path: '$', message: 'a package must be an object, or a string holding YAML or JSON' }] };
  }

  validate(content: unknown): ValidationOutcome {
    const parsed = this.parse(content);
    if (parsed.problems.length) return { report: { valid: false, workflow_id: null, errors: parsed.problems, warnings: [] } };
    const doc = parsed.value as Wpk;
    const errors: Problem[] = this.envelope(doc) ? [] : toProblems(this.envelope.errors);
    const warnings: Problem[] = [];
    // Deeper checks need the envelope's shape; run them where it holds so all problems come at once.
    const spec = isObject(doc) && isObject(doc.spec) ? doc.spec : undefined;
    const handlers = Array.isArray(spec?.handlers) ? spec.handlers.filter(isObject) : [];
    const rollbackHandlers = isObject(spec?.rollback) && Array.isArray(spec.rollback.handlers) ? spec.rollback.handlers.filter(isObject) : [];
    const params = new Set(isObject(spec?.parameters) ? Object.keys(spec.parameters) : []);
    if (isObject(spec?.parameters)) errors.push(...checkDefinitions(spec.parameters as Wpk['spec']['parameters'] & object));

    const allSteps = new Set<string>();
    const seen = new Map<string, string>();
    const noteName = (step: WpkStep, at: PathSegment[]) => {
      if (typeof step.name !== 'string') return;
      const first = seen.get(step.name);
      if (first) errors.push({ path: jsonPath([...at, 'name']), message: `duplicate step name '${step.name}' (first used at ${first})` });
      else seen.set(step.name, jsonPath([...at, 'name']));
      allSteps.add(step.name);
    };
    handlers.forEach((s, i) => noteName(s, ['spec', 'handlers', i]));
    rollbackHandlers.forEach((s, i) => noteName(s, ['spec', 'rollback', 'handlers', i]));

    const earlier = new Set<string>();
    handlers.forEach((step, i) => {
      const at: PathSegment[] = ['spec', 'handlers', i];
      const ctx: RefContext = { params, allSteps, earlier: new Set(earlier), inRollback: false };
      this.checkStep(step, at, ctx, errors);
      if (step.when && isObject(step.when)) checkWhen(step.when, [...at, 'when'], ctx, errors);
      if (isObject(step.rollback)) {
        const rb = step.rollback;
        const rbCtx: RefContext = { ...ctx, earlier: new Set([...earlier, step.name]), inRollback: true };
        const adapter = typeof rb.adapter === 'string' ? rb.adapter : step.adapter;
        this.checkStep({ ...rb, adapter }, [...at, 'rollback'], rbCtx, errors);
      } else if (spec?.rollback?.enabled === true && step.rollback !== 'none') {
        const found = this.registry.find(step.adapter, step.action);
        if (found.ok && found.spec.mutates && !found.spec.compensate) {
          warnings.push({ path: jsonPath(at), message: `step '${step.name}' changes things but has no compensation; rollback will not undo it (add a rollback block, or rollback: none to silence this)` });
        }
      }
      earlier.add(step.name);
    });
    rollbackHandlers.forEach((step, i) => {
      const at: PathSegment[] = ['spec', 'rollback', 'handlers', i];
      const ctx: RefContext = { params, allSteps, earlier: new Set(earlier), inRollback: true };
      this.checkStep(step, at, ctx, errors);
      if (step.when && isObject(step.when)) checkWhen(step.when, [...at, 'when'], ctx, errors);
      earlier.add(step.name);
    });

    const valid = errors.length === 0;
    const workflowId = isObject(doc?.metadata) && typeof doc.metadata.name === 'string' && typeof doc.metadata.version === 'string' ? workflowIdOf(doc) : null;
    return { report: { valid, workflow_id: workflowId, errors, warnings }, wpk: valid ? doc : undefined };
  }

  private checkStep(step: Pick<WpkStep, 'adapter' | 'action' | 'with'>, at: PathSegment[], ctx: RefContext, errors: Problem[]): void {
    if (typeof step.adapter === 'string' && typeof step.action === 'string' && this.registry.names().includes(step.adapter)) {
      const found = this.registry.find(step.adapter, step.action);
      if (!found.ok) errors.push({ path: jsonPath([...at, 'action']), message: found.message });
      else if (step.with === undefined || isObject(step.with)) errors.push(...this.registry.checkStatic(step.adapter, step.action, step.with, [...at, 'with']));
    }
    checkTemplates(step.with, [...at, 'with'], ctx, errors);
  }
}

function isObject(v: unknown): v is Record<string, any> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

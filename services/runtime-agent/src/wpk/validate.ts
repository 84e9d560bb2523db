/**
 * Package validation shared by POST /validate and POST /execute: parse, schema,
 * actions, references, parameter definitions and limits — every problem at once.
 */
import { YAMLParseError } from 'yaml';
import type { Problem } from '../../../../adapters/errors.js';
import { jsonPath, type PathSegment } from '../../../../adapters/shared/paths.js';
import { mutatesWith, type AdapterRegistry } from '../adapter-registry.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../config.js';
import { makeAjv, toProblems, type ValidateFunction } from './ajv.js';
import { checkDefinitions } from './parameters.js';
import { checkTemplates, checkWhen, type RefContext } from './references.js';
import { envelopeSchema } from './schema.js';
import { PACKAGE_LIMITS, workflowIdOf, type Wpk, type WpkStep } from './types.js';
import { parseYamlWithin, valueTooDeep, YamlTooDeep } from './yaml-depth.js';

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
  /** The valid package as JSON text (what the store keeps), computed once. */
  json?: string;
}

/** Outcomes of recently validated package texts: a registry sends the same few packages again and again. */
const CACHED_OUTCOMES = 64;
/** Larger packages are validated every time rather than held in memory. */
const CACHED_TEXT_CHARS = 64 * 1024;

export interface ValidatorOptions {
  /** MAX_JSON_DEPTH: how deep a package sent as YAML text may nest (JSON bodies are measured as they arrive). */
  maxJsonDepth?: number;
}

export class PackageValidator {
  private readonly envelope: ValidateFunction;
  private readonly cache = new Map<string, ValidationOutcome>();
  private readonly maxJsonDepth: number;

  constructor(
    private readonly registry: AdapterRegistry,
    options: ValidatorOptions = {},
  ) {
    this.maxJsonDepth = options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
    this.envelope = makeAjv(false).compile(envelopeSchema(registry.names()));
  }

  /**
   * Validates a package. The same text validates the same way, so outcomes are cached by text; callers get
   * their own copy of the report (the package object itself is shared and never modified).
   */
  validate(content: unknown): ValidationOutcome {
    const text =
      typeof content === 'string'
        ? `y${content}`
        : content !== null && typeof content === 'object' && !Array.isArray(content)
          ? `j${JSON.stringify(content)}`
          : undefined;
    const cached = text === undefined ? undefined : this.cache.get(text);
    const outcome = cached ?? this.validateUncached(content, text?.startsWith('j') ? text.slice(1) : undefined);
    if (!cached && text !== undefined && text.length <= CACHED_TEXT_CHARS) {
      if (this.cache.size >= CACHED_OUTCOMES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(text, outcome);
    }
    const { report } = outcome;
    return { ...outcome, report: { ...report, errors: [...report.errors], warnings: [...report.warnings] } };
  }

  /** Accepts an object, or a string holding YAML or JSON. */
  parse(content: unknown, json?: string): { value?: unknown; problems: Problem[] } {
    if (typeof content === 'string') {
      const bytes = Buffer.byteLength(content);
      if (bytes > PACKAGE_LIMITS.maxBytes)
        return {
          problems: [{ path: '$', message: `package is ${bytes} bytes; the limit is ${PACKAGE_LIMITS.maxBytes}` }],
        };
      try {
        const value = parseYamlWithin(content, this.maxJsonDepth);
        // Aliases can nest deeper than the text does.
        const at = valueTooDeep(value, this.maxJsonDepth);
        if (at)
          return {
            problems: [
              { path: jsonPath(at), message: `is nested deeper than ${this.maxJsonDepth} levels (MAX_JSON_DEPTH)` },
            ],
          };
        return { value, problems: [] };
      } catch (err) {
        if (err instanceof YamlTooDeep) return { problems: [{ path: '$', message: err.message }] };
        const where =
          err instanceof YAMLParseError && err.linePos
            ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}`
            : '';
        return {
          problems: [
            { path: '$', message: `not valid YAML or JSON${where}: ${(err as Error).message.split('\n')[0]}` },
          ],
        };
      }
    }
    if (content !== null && typeof content === 'object' && !Array.isArray(content)) {
      const bytes = Buffer.byteLength(json ?? JSON.stringify(content));
      if (bytes > PACKAGE_LIMITS.maxBytes)
        return {
          problems: [{ path: '$', message: `package is ${bytes} bytes; the limit is ${PACKAGE_LIMITS.maxBytes}` }],
        };
      return { value: content, problems: [] };
    }
    return { problems: [{ path: '$', message: 'a package must be an object, or a string holding YAML or JSON' }] };
  }

  private validateUncached(content: unknown, json: string | undefined): ValidationOutcome {
    const parsed = this.parse(content, json);
    if (parsed.problems.length)
      return { report: { valid: false, workflow_id: null, errors: parsed.problems, warnings: [] } };
    const doc = parsed.value as Wpk;
    const errors: Problem[] = this.envelope(doc) ? [] : toProblems(this.envelope.errors);
    const warnings: Problem[] = [];
    // Deeper checks need the envelope's shape; run them where it holds so all problems come at once.
    const spec = isObject(doc) && isObject(doc.spec) ? doc.spec : undefined;
    const handlers = Array.isArray(spec?.handlers) ? spec.handlers.filter(isObject) : [];
    const rollbackHandlers =
      isObject(spec?.rollback) && Array.isArray(spec.rollback.handlers) ? spec.rollback.handlers.filter(isObject) : [];
    const params = new Set(isObject(spec?.parameters) ? Object.keys(spec.parameters) : []);
    if (isObject(spec?.parameters))
      errors.push(...checkDefinitions(spec.parameters as Wpk['spec']['parameters'] & object));

    const allSteps = new Set<string>();
    const seen = new Map<string, string>();
    const noteName = (step: WpkStep, at: PathSegment[]) => {
      if (typeof step.name !== 'string') return;
      const first = seen.get(step.name);
      if (first)
        errors.push({
          path: jsonPath([...at, 'name']),
          message: `duplicate step name '${step.name}' (first used at ${first})`,
        });
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
      this.warnLiteralCredentials(step, at, warnings);
      if (step.when && isObject(step.when)) checkWhen(step.when, [...at, 'when'], ctx, errors);
      if (isObject(step.rollback)) {
        const rb = step.rollback;
        const rbCtx: RefContext = { ...ctx, earlier: new Set([...earlier, step.name]), inRollback: true };
        const adapter = typeof rb.adapter === 'string' ? rb.adapter : step.adapter;
        this.checkStep({ ...rb, adapter }, [...at, 'rollback'], rbCtx, errors);
        this.warnLiteralCredentials({ ...rb, adapter }, [...at, 'rollback'], warnings);
      } else if (spec?.rollback?.enabled === true && step.rollback !== 'none') {
        const found = this.registry.find(step.adapter, step.action);
        if (found.ok && mutatesWith(found.spec, step.with ?? {}) && !found.spec.compensate) {
          warnings.push({
            path: jsonPath(at),
            message: `step '${step.name}' changes things but has no compensation; rollback will not undo it (add a rollback block, or rollback: none to silence this)`,
          });
        }
      }
      earlier.add(step.name);
    });
    rollbackHandlers.forEach((step, i) => {
      const at: PathSegment[] = ['spec', 'rollback', 'handlers', i];
      const ctx: RefContext = { params, allSteps, earlier: new Set(earlier), inRollback: true };
      this.checkStep(step, at, ctx, errors);
      this.warnLiteralCredentials(step, at, warnings);
      if (step.when && isObject(step.when)) checkWhen(step.when, [...at, 'when'], ctx, errors);
      earlier.add(step.name);
    });

    const valid = errors.length === 0;
    const workflowId =
      isObject(doc?.metadata) && typeof doc.metadata.name === 'string' && typeof doc.metadata.version === 'string'
        ? workflowIdOf(doc)
        : null;
    return {
      report: { valid, workflow_id: workflowId, errors, warnings },
      wpk: valid ? doc : undefined,
      json: valid ? (json ?? JSON.stringify(doc)) : undefined,
    };
  }

  /**
   * A credential written into the package itself is masked in records and logs, but the package text is
   * stored as sent: say so, and point at secret parameters.
   */
  private warnLiteralCredentials(
    step: Pick<WpkStep, 'adapter' | 'action' | 'with'>,
    at: PathSegment[],
    warnings: Problem[],
  ): void {
    if (typeof step.adapter !== 'string' || typeof step.action !== 'string' || !isObject(step.with)) return;
    const found = this.registry.find(step.adapter, step.action);
    if (!found.ok || !found.spec.secretsIn) return;
    let literal: string[];
    try {
      literal = found.spec.secretsIn(step.with).filter((v) => !v.includes('${{'));
    } catch {
      return; // an input of the wrong shape: the schema check reports it
    }
    if (literal.length) {
      warnings.push({
        path: jsonPath([...at, 'with']),
        message:
          'holds a credential written into the package (a header, env or query value such as Authorization or *_TOKEN); it is masked in records and logs, but the package is stored as sent: pass it as a secret: true parameter',
      });
    }
  }

  private checkStep(
    step: Pick<WpkStep, 'adapter' | 'action' | 'with'>,
    at: PathSegment[],
    ctx: RefContext,
    errors: Problem[],
  ): void {
    if (
      typeof step.adapter === 'string' &&
      typeof step.action === 'string' &&
      this.registry.names().includes(step.adapter)
    ) {
      const found = this.registry.find(step.adapter, step.action);
      if (!found.ok) errors.push({ path: jsonPath([...at, 'action']), message: found.message });
      else if (step.with === undefined || isObject(step.with))
        errors.push(...this.registry.checkStatic(step.adapter, step.action, step.with, [...at, 'with']));
    }
    checkTemplates(step.with, [...at, 'with'], ctx, errors);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: a package not yet validated is read field by field, each checked where it is used
function isObject(v: unknown): v is Record<string, any> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * What a package must pass before it runs, for `validate` and `submit` alike: where it comes from (inline,
 * or a known workflow_id), its signature when the agent requires one, the package's own validity, the
 * parameters, and whether this agent can run every adapter it uses.
 */
import { AgentError, type Problem, ValidationError } from '../../../../adapters/errors.js';
import { jsonPath } from '../../../../adapters/shared/paths.js';
import type { AdapterRegistry } from '../adapter-registry.js';
import type { Catalog } from '../wpk/catalog.js';
import { resolveParameters } from '../wpk/parameters.js';
import { SIGNATURE_HEADER, type SignatureVerifier } from '../wpk/signature.js';
import { packageActions, workflowIdOf, type Wpk } from '../wpk/types.js';
import type { PackageValidator, ValidationReport } from '../wpk/validate.js';

/** What names a package in a request: inline content, or the id of one the agent knows. */
export interface PackageRef {
  workflow_id?: string;
  wpk_content?: unknown;
}

export interface ResolvedPackage {
  wpk: Wpk;
  /** The package as JSON text (inline packages: as validated). */
  json?: string;
  /** Sent inline: it is registered under its workflow_id when it runs. */
  inline: boolean;
}

export class Submission {
  constructor(
    private readonly registry: AdapterRegistry,
    private readonly validator: PackageValidator,
    private readonly catalog: Catalog,
    private readonly signatures: SignatureVerifier,
  ) {}

  /**
   * A package the agent knows by workflow_id, or not_found naming the bundled ones. To run, a registered one
   * must carry a signature that verifies under the keys configured now: one registered before signing was
   * turned on, or under a key since retired, does not run.
   */
  known(id: string, toRun: boolean): Wpk {
    const known = this.catalog.get(id);
    if (!known) {
      throw new AgentError(
        'not_found',
        `workflow ${id} is not known; send wpk_content, or use a bundled one: ${this.catalog.bundledIds().join(', ')}`,
      );
    }
    if (toRun && known.registered && this.signatures.enabled) {
      try {
        this.signatures.verify(known.wpk, known.signature ?? undefined);
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        throw new AgentError(
          'forbidden',
          `workflow ${id} was registered without a signature that verifies under the keys configured now; send it again as wpk_content with ${SIGNATURE_HEADER}`,
          { details: { workflow_id: id } },
        );
      }
    }
    return known.wpk;
  }

  /**
   * An inline package's signature, when the agent requires one: checked before validation so that an unsigned
   * package learns nothing more than `forbidden`.
   */
  checkSignature(ref: PackageRef, signature: string | undefined): void {
    if (!this.signatures.enabled || ref.wpk_content === undefined) return;
    if (signature === undefined) this.signatures.verify(undefined, signature);
    const parsed = this.validator.parse(ref.wpk_content);
    if (parsed.problems.length) throw new ValidationError('the package is invalid', parsed.problems);
    this.signatures.verify(parsed.value, signature);
  }

  /** The report of POST /validate: the package, the parameters when given, and the adapters it needs. */
  report(ref: PackageRef, parameters: Record<string, unknown> | undefined): ValidationReport {
    requireRef(ref);
    const content = ref.wpk_content !== undefined ? ref.wpk_content : this.known(String(ref.workflow_id), false);
    const { report, wpk } = this.validator.validate(content);
    if (wpk) {
      report.errors.push(...this.idMismatch(ref, report.workflow_id));
      if (parameters !== undefined) {
        report.errors.push(...resolveParameters(wpk.spec.parameters ?? {}, parameters).problems);
      } else {
        report.warnings.push(...requiredWithoutDefault(wpk));
      }
      report.errors.push(...this.unreadyAdapters(wpk));
    }
    report.valid = report.errors.length === 0;
    return report;
  }

  /** The package a submission names, valid and runnable here, or the 4xx that says why not. */
  resolve(ref: PackageRef): ResolvedPackage {
    requireRef(ref);
    let resolved: ResolvedPackage;
    if (ref.wpk_content !== undefined) {
      const { report, wpk, json } = this.validator.validate(ref.wpk_content);
      const errors = [...report.errors, ...(wpk ? this.idMismatch(ref, report.workflow_id) : [])];
      if (errors.length || !wpk) {
        throw new ValidationError(`the package is invalid: ${errors.length} problem(s)`, errors, {
          details: { workflow_id: report.workflow_id },
        });
      }
      resolved = { wpk, json, inline: true };
    } else {
      resolved = { wpk: this.known(String(ref.workflow_id), true), inline: false };
    }
    this.checkRunnable(resolved.wpk);
    return resolved;
  }

  /** Every adapter the package uses is ready on this agent, or the 400 that names each one that is not. */
  checkRunnable(wpk: Wpk): void {
    const unready = this.unreadyAdapters(wpk);
    if (unready.length) {
      throw new ValidationError(
        `this agent cannot run the package: ${unready.map((p) => p.message).join('; ')}`,
        unready,
        { details: { workflow_id: workflowIdOf(wpk) } },
      );
    }
  }

  /**
   * A package stored with an execution, to run again (a retry). With signatures required, it must be the
   * package the agent knows by its workflow_id now, under a signature that verifies with today's keys.
   */
  checkRerun(wpk: Wpk): void {
    if (this.signatures.enabled) {
      const id = workflowIdOf(wpk);
      const known = this.known(id, true);
      if (JSON.stringify(known) !== JSON.stringify(wpk)) {
        throw new AgentError(
          'forbidden',
          `workflow ${id} has changed since this execution ran, and this agent requires signed packages: submit the package again with ${SIGNATURE_HEADER}`,
          { details: { workflow_id: id } },
        );
      }
    }
    this.checkRunnable(wpk);
  }

  /** A workflow_id given with the package must be the package's. */
  private idMismatch(ref: PackageRef, workflowId: string | null): Problem[] {
    if (ref.wpk_content === undefined || typeof ref.workflow_id !== 'string' || ref.workflow_id === workflowId)
      return [];
    return [{ path: '$.workflow_id', message: `does not match the package's ${workflowId}` }];
  }

  /** One problem per adapter the package uses that is not ready on this agent, at its first use. */
  private unreadyAdapters(wpk: Wpk): Problem[] {
    const problems: Problem[] = [];
    const seen = new Set<string>();
    for (const use of packageActions(wpk)) {
      if (seen.has(use.adapter)) continue;
      seen.add(use.adapter);
      const readiness = this.registry.readiness(use.adapter);
      if (!readiness.ready) {
        problems.push({
          path: jsonPath([...use.at, 'adapter']),
          message: `adapter '${use.adapter}' is not ready on this agent: ${readiness.message ?? 'not configured'}`,
        });
      }
    }
    return problems;
  }
}

/** Required parameters without a default: a run must be given them. */
function requiredWithoutDefault(wpk: Wpk): Problem[] {
  return Object.entries(wpk.spec.parameters ?? {})
    .filter(([, p]) => p.required && p.default === undefined)
    .map(([name]) => ({
      path: jsonPath(['parameters', name]),
      message: 'is required and has no default: a run must be given it (send parameters to check their values)',
    }));
}

function requireRef(ref: PackageRef): void {
  if (ref.wpk_content === undefined && ref.workflow_id === undefined) {
    throw new ValidationError('the request names no package', [
      { path: '$', message: 'give wpk_content (the package) or workflow_id (a known package)' },
    ]);
  }
}

/**
 * Packages the agent knows by `workflow_id`: the bundled ones in workflows/,
 * and those registered by an earlier POST /execute with `wpk_content` (the
 * latest registration of an id wins over the bundled one).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import type { Wpk } from './types.js';
import type { PackageValidator } from './validate.js';

export interface BundledProblem {
  file: string;
  errors: string[];
}

export class Catalog {
  private readonly bundled = new Map<string, Wpk>();
  readonly problems: BundledProblem[] = [];

  constructor(
    private readonly store: Store,
    validator: PackageValidator,
    dir: string,
  ) {
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.endsWith('.schema.json'));
    } catch {
      return;
    }
    for (const file of files.sort()) {
      const outcome = validator.validate(readFileSync(join(dir, file), 'utf8'));
      if (outcome.wpk && outcome.report.workflow_id) this.bundled.set(outcome.report.workflow_id, outcome.wpk);
      else this.problems.push({ file, errors: outcome.report.errors.map((e) => `${e.path}: ${e.message}`) });
    }
  }

  /** A known package; a registered one comes with the signature it was registered with (null: none). */
  get(workflowId: string): { wpk: Wpk; registered: boolean; signature: string | null } | undefined {
    const registered = this.store.getPackage(workflowId);
    if (registered)
      return { wpk: JSON.parse(registered.content) as Wpk, registered: true, signature: registered.signature };
    const bundled = this.bundled.get(workflowId);
    return bundled ? { wpk: bundled, registered: false, signature: null } : undefined;
  }

  /** Content registered by this process, so that sending the same package again writes nothing. */
  private readonly registered = new Map<string, string>();

  register(workflowId: string, wpk: Wpk, json = JSON.stringify(wpk), signature: string | null = null): void {
    const content = json;
    const key = `${signature ?? ''}\n${content}`;
    if (this.registered.get(workflowId) === key) return;
    this.store.putPackage(workflowId, content, signature);
    this.registered.set(workflowId, key);
  }

  bundledIds(): string[] {
    return [...this.bundled.keys()];
  }
}

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

/** A package of the catalog. */
export interface CatalogEntry {
  workflowId: string;
  wpk: Wpk;
  source: 'bundled' | 'registered';
  /** When it was last registered (registered packages only). */
  registeredAt: string | null;
  /** Registered with an X-WPK-Signature. */
  signed: boolean;
}

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
    const registered = this.store.packages.get(workflowId);
    if (registered) return { wpk: registered.wpk, registered: true, signature: registered.signature };
    const bundled = this.bundled.get(workflowId);
    return bundled ? { wpk: bundled, registered: false, signature: null } : undefined;
  }

  /** Content registered by this process, so that sending the same package again writes nothing. */
  private readonly registered = new Map<string, string>();

  register(workflowId: string, wpk: Wpk, json = JSON.stringify(wpk), signature: string | null = null): void {
    const content = json;
    const key = `${signature ?? ''}\n${content}`;
    if (this.registered.get(workflowId) === key) return;
    this.store.packages.put(workflowId, content, signature);
    this.registered.set(workflowId, key);
  }

  /** Every known package (a registration hides the bundled package of the same id), by name, newest version first. */
  list(): CatalogEntry[] {
    const entries = new Map<string, CatalogEntry>();
    for (const [workflowId, wpk] of this.bundled)
      entries.set(workflowId, { workflowId, wpk, source: 'bundled', registeredAt: null, signed: false });
    for (const p of this.store.packages.list()) {
      entries.set(p.workflowId, {
        workflowId: p.workflowId,
        wpk: p.wpk,
        source: 'registered',
        registeredAt: p.updatedAt,
        signed: p.signature !== null,
      });
    }
    return [...entries.values()].sort(
      (a, b) =>
        a.wpk.metadata.name.localeCompare(b.wpk.metadata.name) ||
        compareVersions(b.wpk.metadata.version, a.wpk.metadata.version),
    );
  }

  bundledIds(): string[] {
    return [...this.bundled.keys()];
  }
}

/** Semantic-version order: numbers compare as numbers, and a pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre = ''] = v.split('+')[0].split(/-(.*)/s);
    return { nums: core.split('.').map(Number), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
  if (x.pre === y.pre) return 0;
  if (x.pre === '') return 1;
  if (y.pre === '') return -1;
  return x.pre < y.pre ? -1 : 1;
}

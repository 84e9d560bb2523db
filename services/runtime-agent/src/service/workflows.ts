/**
 * The catalog as the API shows it: each package with its parameters. Secret defaults, and credentials
 * written into a package's steps, never leave the agent.
 */
import type { AdapterRegistry } from '../adapter-registry.js';
import { MASK, Redactor } from '../engine/redact.js';
import type { CatalogEntry } from '../wpk/catalog.js';
import { packageActions, type Wpk, type WpkParam } from '../wpk/types.js';

/** Parameter definitions with the value of every secret default masked (the definition says `secret: true`). */
function parameters(wpk: Wpk): Record<string, WpkParam> {
  const out: Record<string, WpkParam> = {};
  for (const [name, p] of Object.entries(wpk.spec.parameters ?? {})) {
    out[name] = p.secret && p.default !== undefined ? { ...p, default: MASK } : p;
  }
  return out;
}

function adaptersOf(wpk: Wpk): string[] {
  return [...new Set(packageActions(wpk).map((a) => a.adapter))];
}

export function workflowSummary(e: CatalogEntry) {
  const { metadata, spec } = e.wpk;
  return {
    workflow_id: e.workflowId,
    name: metadata.name,
    version: metadata.version,
    description: metadata.description ?? null,
    labels: metadata.labels ?? {},
    source: e.source,
    registered_at: e.registeredAt,
    signed: e.signed,
    parameters: parameters(e.wpk),
    steps: spec.handlers.map((h) => h.name),
    adapters: adaptersOf(e.wpk),
    rollback_enabled: spec.rollback?.enabled === true,
    timeout_seconds: spec.timeoutSeconds ?? null,
  };
}

/**
 * The credentials written into a package's steps and rollback handlers: the values each action names as
 * such (an Authorization header, a *_TOKEN env value, …), as the validator warns about them. Templates
 * are not credentials: they name a parameter.
 */
function literalCredentials(wpk: Wpk, registry: AdapterRegistry): string[] {
  const found: string[] = [];
  for (const step of packageActions(wpk)) {
    const action = registry.find(step.adapter, step.action);
    if (!action.ok || !action.spec.secretsIn || step.with === null || typeof step.with !== 'object') continue;
    try {
      found.push(...action.spec.secretsIn(step.with).filter((v) => !v.includes('${{')));
    } catch {
      // an input of the wrong shape holds no credential the action knows of
    }
  }
  return found;
}

/** One package, as stored, with secret defaults and credentials written into its steps masked. */
export function workflowDetail(e: CatalogEntry, registry: AdapterRegistry) {
  let pkg: Wpk = { ...e.wpk, spec: { ...e.wpk.spec } };
  if (e.wpk.spec.parameters) pkg.spec.parameters = parameters(e.wpk);
  const credentials = literalCredentials(e.wpk, registry);
  if (credentials.length) pkg = JSON.parse(new Redactor(credentials).text(JSON.stringify(pkg))) as Wpk;
  return { ...workflowSummary(e), package: pkg };
}

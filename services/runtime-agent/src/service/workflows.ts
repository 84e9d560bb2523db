/** The catalog as the API shows it: each package with its parameters; secret defaults never leave the agent. */
import { MASK } from '../engine/redact.js';
import type { CatalogEntry } from '../wpk/catalog.js';
import type { Wpk, WpkParam } from '../wpk/types.js';

/** Parameter definitions with the value of every secret default masked (the definition says `secret: true`). */
function parameters(wpk: Wpk): Record<string, WpkParam> {
  const out: Record<string, WpkParam> = {};
  for (const [name, p] of Object.entries(wpk.spec.parameters ?? {})) {
    out[name] = p.secret && p.default !== undefined ? { ...p, default: MASK } : p;
  }
  return out;
}

function adaptersOf(wpk: Wpk): string[] {
  const names = new Set<string>();
  for (const h of wpk.spec.handlers) {
    names.add(h.adapter);
    if (h.rollback && h.rollback !== 'none' && h.rollback.adapter) names.add(h.rollback.adapter);
  }
  for (const h of wpk.spec.rollback?.handlers ?? []) names.add(h.adapter);
  return [...names];
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

/** One package, as stored (secret defaults masked). */
export function workflowDetail(e: CatalogEntry) {
  const pkg: Wpk = { ...e.wpk, spec: { ...e.wpk.spec } };
  if (e.wpk.spec.parameters) pkg.spec.parameters = parameters(e.wpk);
  return { ...workflowSummary(e), package: pkg };
}

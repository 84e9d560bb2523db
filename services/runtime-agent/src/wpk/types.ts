/** The WPK v1 package as the engine reads it after validation (docs/wpk-format.md). */
import type { Operator } from '../../../../adapters/shared/conditions.js';
import type { PathSegment } from '../../../../adapters/shared/paths.js';

export type ParamType = 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object';

export interface WpkParam {
  type: ParamType;
  required?: boolean;
  default?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  secret?: boolean;
  description?: string;
}

export interface WhenClause {
  variable: string;
  operator: Operator;
  value?: unknown;
}

export interface RetryPolicy {
  count: number;
  delayMs?: number;
  backoff?: number;
  maxDelayMs?: number;
}

/** A compensation written in the package (a step's `rollback` block). */
export interface StepRollback {
  adapter?: string;
  action: string;
  with?: Record<string, unknown>;
  timeoutSeconds?: number;
  retries?: RetryPolicy;
  /** false: must not run twice (after a crash that interrupted it, it is not run again). */
  idempotent?: boolean;
}

export interface WpkStep {
  name: string;
  adapter: string;
  action: string;
  with?: Record<string, unknown>;
  when?: WhenClause;
  timeoutSeconds?: number;
  retries?: RetryPolicy;
  onFailure?: 'stop' | 'continue';
  rollback?: StepRollback | 'none';
  /** Rollback handlers only: false when the handler must not run twice (see StepRollback). */
  idempotent?: boolean;
}

export interface Wpk {
  apiVersion: 'wpk/v1';
  kind: 'Workflow';
  metadata: { name: string; version: string; description?: string; labels?: Record<string, string> };
  spec: {
    parameters?: Record<string, WpkParam>;
    timeoutSeconds?: number;
    handlers: WpkStep[];
    rollback?: { enabled?: boolean; handlers?: WpkStep[] };
  };
}

export const PACKAGE_LIMITS = {
  maxBytes: 1024 * 1024,
  maxHandlers: 200,
  maxRollbackHandlers: 200,
  maxParameters: 64,
} as const;

export function workflowIdOf(wpk: Pick<Wpk, 'metadata'>): string {
  return `${wpk.metadata.name}-${wpk.metadata.version}`;
}

/** One action a package can run: a step, a step's compensation or a rollback handler, and where it is written. */
export interface PackageAction {
  adapter: string;
  action: string;
  with?: Record<string, unknown>;
  at: PathSegment[];
}

/**
 * Every action a package can run, in package order: each step, then its compensation, then the rollback
 * handlers. A compensation without an adapter uses its step's.
 */
export function packageActions(wpk: Wpk): PackageAction[] {
  const out: PackageAction[] = [];
  wpk.spec.handlers.forEach((h, i) => {
    out.push({ adapter: h.adapter, action: h.action, with: h.with, at: ['spec', 'handlers', i] });
    if (h.rollback && h.rollback !== 'none') {
      const { adapter = h.adapter, action, with: input } = h.rollback;
      out.push({ adapter, action, with: input, at: ['spec', 'handlers', i, 'rollback'] });
    }
  });
  (wpk.spec.rollback?.handlers ?? []).forEach((h, i) =>
    out.push({ adapter: h.adapter, action: h.action, with: h.with, at: ['spec', 'rollback', 'handlers', i] }),
  );
  return out;
}

/**
 * `${{ expr }}` templates (docs/wpk-format.md, Templates). An expression is a path, never code.
 * A string that is exactly one expression takes the value's own type; otherwise
 * values are stringified into the string. `{{ … }}` without `$` is left alone.
 */
import { AgentError } from '../../../../adapters/errors.js';
import { lookup, parsePath, type PathSegment } from '../../../../adapters/shared/paths.js';

const OPEN = '${{';
const CLOSE = '}}';
/** What an expression may be: a path of names and [indexes], never code. */
const EXPRESSION = /^[A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*$/;

export interface TemplatePart {
  /** The raw expression text between the braces, trimmed. */
  expr: string;
  /** Parsed path, or undefined when the expression is malformed. */
  path: PathSegment[] | undefined;
}

export interface Scan {
  parts: TemplatePart[];
  /** Set when a `${{` has no closing `}}`. */
  unterminated: boolean;
}

/** Finds every `${{ … }}` in a string. */
export function scanTemplates(s: string): Scan {
  const parts: TemplatePart[] = [];
  let from = 0;
  for (;;) {
    const start = s.indexOf(OPEN, from);
    if (start < 0) return { parts, unterminated: false };
    const end = s.indexOf(CLOSE, start + OPEN.length);
    if (end < 0) return { parts, unterminated: true };
    const expr = s.slice(start + OPEN.length, end).trim();
    parts.push({ expr, path: EXPRESSION.test(expr) ? parsePath(expr) : undefined });
    from = end + CLOSE.length;
  }
}

/** What templates can read: params, steps, execution, workflow, and in rollback steps error. */
export type Scope = Record<string, unknown>;

/**
 * In a dry run, step outputs are example outputs, so a path into them may not
 * exist; such a reference renders as a visible placeholder instead of failing.
 */
export interface RenderOptions {
  dryRun?: boolean;
  onPlaceholder?: (expr: string) => void;
}

function resolve(expr: string, path: PathSegment[] | undefined, scope: Scope, options: RenderOptions): unknown {
  if (!path)
    throw new AgentError(
      'template_error',
      `malformed expression \${{ ${expr} }}: expected a path like params.name or steps.step.outputs.key`,
    );
  const found = lookup(scope, path);
  if (found.found) return found.value;
  if (options.dryRun && path[0] === 'steps' && path[2] === 'outputs') {
    options.onPlaceholder?.(expr);
    return `<dry run: ${expr}>`;
  }
  throw new AgentError('template_error', `\${{ ${expr} }} does not resolve: nothing at ${found.at}`);
}

function stringify(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function renderString(s: string, scope: Scope, options: RenderOptions = {}): unknown {
  if (!s.includes(OPEN)) return s;
  const trimmed = s.trim();
  const scan = scanTemplates(s);
  if (scan.unterminated) throw new AgentError('template_error', `unterminated \${{ in ${JSON.stringify(s)}`);
  if (scan.parts.length === 1 && trimmed.startsWith(OPEN) && trimmed.endsWith(CLOSE) && trimmed.indexOf(OPEN, 1) < 0) {
    return resolve(scan.parts[0].expr, scan.parts[0].path, scope, options);
  }
  let out = '';
  let from = 0;
  let i = 0;
  for (;;) {
    const start = s.indexOf(OPEN, from);
    if (start < 0) break;
    const end = s.indexOf(CLOSE, start + OPEN.length);
    const part = scan.parts[i++];
    out += s.slice(from, start) + stringify(resolve(part.expr, part.path, scope, options));
    from = end + CLOSE.length;
  }
  return out + s.slice(from);
}

/** True when a string inside `value` holds a `${{`: only then can rendering make it differ from a copy. */
export function hasTemplates(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(OPEN);
  if (Array.isArray(value)) return value.some(hasTemplates);
  if (value !== null && typeof value === 'object') {
    for (const k in value) if (hasTemplates((value as Record<string, unknown>)[k])) return true;
  }
  return false;
}

/** Renders every string inside `value` (objects and arrays are copied, never mutated). */
export function renderValue(value: unknown, scope: Scope, options: RenderOptions = {}): unknown {
  if (typeof value === 'string') return renderString(value, scope, options);
  if (Array.isArray(value)) return value.map((v) => renderValue(v, scope, options));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderValue(v, scope, options);
    return out;
  }
  return value;
}

/** Calls `visit` for every string in `value` with its path segments. */
export function walkStrings(value: unknown, at: PathSegment[], visit: (s: string, at: PathSegment[]) => void): void {
  if (typeof value === 'string') visit(value, at);
  else if (Array.isArray(value)) value.forEach((v, i) => walkStrings(v, [...at, i], visit));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) walkStrings(v, [...at, k], visit);
}

/**
 * FlowRunner substitution (docs/flowrunner.md#flowmaps): `{{path}}` (dots and `[i]`) in
 * URLs, headers and bodies, a missing value becoming the empty string;
 * `##VAR:string:name##` (the value as text) and `##VAR:unquoted:name##` (the
 * raw JSON value: a number, object, array or null stays one). A malformed
 * marker is left as it is. Templates are compiled once per string.
 */
import { lookup, parsePath, type PathSegment } from '../../shared/paths.js';

type Part = string | { kind: 'var' | 'string' | 'unquoted'; path: PathSegment[] };

export interface Template {
  /** No markers: the text as is. */
  constant: boolean;
  parts: Part[];
  /** The whole string is one `##VAR:unquoted:…##` marker: the value keeps its type. */
  whole?: PathSegment[];
}

const MARKER = /\{\{\s*([^{}]*?)\s*\}\}|##VAR:(string|unquoted):([^#\s]+)##/g;
const cache = new Map<string, Template>();
const CACHE_LIMIT = 10_000;
/** The cache holds template texts; past this many characters in all it starts over (bounded memory across runs). */
const CACHE_CHARS = 4 * 1024 * 1024;
let cachedChars = 0;

export function compile(text: string): Template {
  let t = cache.get(text);
  if (t) return t;
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    const path = parsePath((m[1] ?? m[3])!.trim());
    // A marker whose path is not a path stays literal text.
    if (!path) continue;
    if (m.index! > last) parts.push(text.slice(last, m.index));
    parts.push({ kind: m[1] !== undefined ? 'var' : (m[2] as 'string' | 'unquoted'), path });
    last = m.index! + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  const only =
    parts.length === 1 && typeof parts[0] === 'object' && parts[0].kind === 'unquoted' ? parts[0].path : undefined;
  t = { constant: parts.every((p) => typeof p === 'string'), parts, whole: only };
  if (text.length > CACHE_CHARS / 16) return t;
  if (cache.size >= CACHE_LIMIT || cachedChars + text.length > CACHE_CHARS) {
    cache.clear();
    cachedChars = 0;
  }
  cache.set(text, t);
  cachedChars += text.length;
  return t;
}

function asText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A string with every marker replaced by text. Inside a string, an unquoted value is its JSON text. */
export function renderString(text: string, ctx: Record<string, unknown>): string {
  const t = compile(text);
  return t.constant ? text : render(t, ctx);
}

/** `text` compiled once, as a function of the context (what renderString gives, without the cache lookup). */
export function textRenderer(text: string): (ctx: Record<string, unknown>) => string {
  const t = compile(text);
  return t.constant ? () => text : (ctx) => render(t, ctx);
}

function render(t: Template, ctx: Record<string, unknown>): string {
  let out = '';
  for (const p of t.parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    const found = lookup(ctx, p.path);
    const value = found.found ? found.value : undefined;
    out += p.kind === 'unquoted' ? (value === undefined ? 'null' : JSON.stringify(value)) : asText(value);
  }
  return out;
}

/** A body (or any JSON value): strings rendered, a string that is exactly an unquoted marker replaced by the raw value. */
export function renderValue(v: unknown, ctx: Record<string, unknown>): unknown {
  if (typeof v === 'string') {
    const t = compile(v);
    if (t.constant) return v;
    if (t.whole) {
      const found = lookup(ctx, t.whole);
      return found.found && found.value !== undefined ? found.value : null;
    }
    return renderString(v, ctx);
  }
  if (Array.isArray(v)) return v.map((x) => renderValue(x, ctx));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = renderValue(x, ctx);
    return out;
  }
  return v;
}

/** Whether a value has any marker at all (a constant body is serialized once). */
export function isConstant(v: unknown): boolean {
  if (typeof v === 'string') return compile(v).constant;
  if (Array.isArray(v)) return v.every(isConstant);
  if (v !== null && typeof v === 'object') return Object.values(v).every(isConstant);
  return true;
}

/** A loop source: a path, or one `{{path}}`. */
export function sourcePath(source: string): PathSegment[] | undefined {
  const m = /^\s*\{\{\s*([^{}]*?)\s*\}\}\s*$/.exec(source);
  return parsePath((m ? m[1] : source).trim());
}

/**
 * A flowmap's steps compiled once: everything a step renders or decides from a flow instance's
 * context becomes a function of that context, with its templates, paths and constant parts
 * prepared up front. The run loop and the dry-run plan call the same functions.
 */
import { evaluateCondition } from '../../shared/conditions.js';
import { lookup, type PathSegment, parsePath } from '../../shared/paths.js';
import type { ConditionData, ConditionStep, Flowmap, LoopStep, RequestStep, Step } from './flowmap.js';
import { isConstant, renderString, renderValue, sourcePath, textRenderer } from './substitute.js';

export type Context = Record<string, unknown>;

/** Where a step's warnings go: `key` groups those that many users would repeat. */
export type Warn = (key: string, message: string) => void;

/** Whether a condition holds in a context. */
export type Check = (ctx: Context) => boolean;

export interface CompiledRequest {
  type: 'request';
  step: RequestStep;
  /** The context keys the response goes to. */
  keys: { status: string; headers: string; body: string; error: string };
  /**
   * Whether anything can read the response's headers or body: the step extracts, or the flowmap mentions
   * the context key of either. Without, the client leaves them undecoded.
   */
  readsResponse: boolean;
  /** The step URL, rendered. */
  url(ctx: Context): string;
  /** The body as sent (an object as JSON); undefined without one. */
  body(ctx: Context): string | undefined;
  /**
   * The headers to send: the instance's own (`base`, lower-case names), then the flowmap's and the
   * step's rendered, then Host under a DNS override, and a JSON content type for an object body
   * that sets none. `base` itself when nothing is added (it is only read).
   */
  headers(
    base: Record<string, string>,
    ctx: Context,
    host: string | undefined,
    body: string | undefined,
  ): Record<string, string>;
  assertions: Array<{ data: ConditionData; holds: Check }>;
}

export interface CompiledCondition {
  type: 'condition';
  step: ConditionStep;
  /** False for a legacy `condition` string, which is never evaluated. */
  holds: Check;
  then: CompiledStep[];
  else: CompiledStep[];
}

export interface CompiledLoop {
  type: 'loop';
  step: LoopStep;
  /** The list the loop runs over, or, when the source is not one, what is there instead (for the warning). */
  items(ctx: Context): { list: unknown[] } | { not: string };
  /** The context of one iteration: the item and its index added to a copy (so nothing leaks out). */
  iteration(ctx: Context, item: unknown, index: number): Context;
  steps: CompiledStep[];
}

export type CompiledStep = CompiledRequest | CompiledCondition | CompiledLoop;

/** Compiles every step; conditions report what they cannot compare through `warn`. */
export function compileSteps(flowmap: Flowmap, warn: Warn): CompiledStep[] {
  const flowHeaders = Object.entries(flowmap.headers).map(([k, v]) => [k.toLowerCase(), textRenderer(v)] as const);
  const text = flowmapText(flowmap);
  const compileList = (steps: Step[]): CompiledStep[] =>
    steps.map((s): CompiledStep => {
      if (s.type === 'request') return compileRequest(s, flowHeaders, warn, text);
      if (s.type === 'condition')
        return {
          type: 'condition',
          step: s,
          holds: s.conditionData ? compileCondition(s.conditionData, s.id, warn) : () => false,
          then: compileList(s.then),
          else: compileList(s.else),
        };
      return compileLoop(s, compileList(s.steps));
    });
  return compileList(flowmap.steps);
}

type Render = (ctx: Context) => string;

/**
 * Every string of the flowmap, keys and values, joined. The context is only ever read through paths
 * written in the flowmap (templates, conditions, loop sources), and a path starts with a context key
 * written out in full, so a key this text does not contain is never read.
 */
function flowmapText(flowmap: Flowmap): string {
  const parts: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        parts.push(k);
        walk(x);
      }
  };
  walk(flowmap);
  return parts.join('\n');
}

function compileRequest(
  step: RequestStep,
  flowHeaders: ReadonlyArray<readonly [string, Render]>,
  warn: Warn,
  flowmapText: string,
): CompiledRequest {
  const id = step.id;
  const extracts = Object.keys(step.extract).length > 0;
  const headersKey = `response_${id}_headers`;
  const bodyKey = `response_${id}_body`;
  const hasBody = step.body !== undefined && step.body !== null;
  const constantBody = !hasBody
    ? undefined
    : isConstant(step.body)
      ? typeof step.body === 'string'
        ? step.body
        : JSON.stringify(step.body)
      : undefined;
  const jsonBody = hasBody && typeof step.body === 'object';
  const stepHeaders = Object.entries(step.headers).map(([k, v]) => [k.toLowerCase(), textRenderer(v)] as const);
  // Without flowmap or step headers of its own, and without a body, a step sends the instance's headers as they are.
  const plain = flowHeaders.length === 0 && stepHeaders.length === 0 && !hasBody;
  return {
    type: 'request',
    step,
    keys: {
      status: `response_${id}_status`,
      headers: headersKey,
      body: bodyKey,
      error: `response_${id}_error`,
    },
    readsResponse: extracts || flowmapText.includes(headersKey) || flowmapText.includes(bodyKey),
    // Rendered through the template cache when a user needs it: a step without a URL (never one the parser
    // gives) fails the users that run it, as other unexpected errors do, instead of the start.
    url: (ctx) => renderString(step.url, ctx),
    body(ctx) {
      if (!hasBody) return undefined;
      if (constantBody !== undefined) return constantBody;
      const rendered = renderValue(step.body, ctx);
      return typeof rendered === 'string' ? rendered : JSON.stringify(rendered);
    },
    headers(base, ctx, host, body) {
      if (host === undefined && plain) return base;
      const headers: Record<string, string> = { ...base };
      for (const [k, render] of flowHeaders) headers[k] = render(ctx);
      for (const [k, render] of stepHeaders) headers[k] = render(ctx);
      if (host) headers.host = host;
      if (body !== undefined && jsonBody && headers['content-type'] === undefined)
        headers['content-type'] = 'application/json';
      return headers;
    },
    assertions: step.assertions.map((data) => ({ data, holds: compileCondition(data, id, warn) })),
  };
}

/** A condition on the context: its variable's path and its value's template are prepared once. */
function compileCondition(c: ConditionData, stepId: string, warn: Warn): Check {
  const path = parsePath(c.variable.replace(/^\{\{\s*|\s*\}\}$/g, ''));
  const expected: (ctx: Context) => unknown = typeof c.value === 'string' ? textRenderer(c.value) : () => c.value;
  const key = `condition:${stepId}`;
  const onWarning = (message: string) => warn(key, `step ${stepId}: ${message}`);
  return (ctx) => {
    const found = path ? lookup(ctx, path) : undefined;
    const value = found?.found ? found.value : undefined;
    return evaluateCondition(
      c.operator,
      value,
      expected(ctx),
      found?.found === true && value !== null && value !== undefined,
      onWarning,
    );
  };
}

function compileLoop(step: LoopStep, steps: CompiledStep[]): CompiledLoop {
  const path: PathSegment[] | undefined = sourcePath(step.source);
  const item = step.loopVariable;
  const index = `${step.loopVariable}_index`;
  return {
    type: 'loop',
    step,
    items(ctx) {
      const found = path ? lookup(ctx, path) : undefined;
      if (found?.found && Array.isArray(found.value)) return { list: found.value };
      return { not: found?.found ? typeof found.value : 'missing' };
    },
    // The engine only ever sets top-level keys, so a shallow copy isolates an iteration.
    iteration: (ctx, value, i) => ({ ...ctx, [item]: value, [index]: i }),
    steps,
  };
}

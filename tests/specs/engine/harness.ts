/**
 * The real Engine and Store (in a temporary directory) with one small fake
 * adapter, `fake`, whose actions record every call so tests can assert what
 * ran, in which order, with which input and when.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Adapter, type StepContext, USE_EXAMPLE_OUTPUT } from '../../../adapters/contract.js';
import { AgentError, type ErrorType } from '../../../adapters/errors.js';
import { AdapterRegistry } from '../../../services/runtime-agent/src/adapter-registry.js';
import { Engine, type EngineOptions, type SubmitRequest } from '../../../services/runtime-agent/src/engine/engine.js';
import { toRecord } from '../../../services/runtime-agent/src/engine/record.js';
import { Metrics } from '../../../services/runtime-agent/src/metrics.js';
import { Store } from '../../../services/runtime-agent/src/store/store.js';
import { TERMINAL_STATUSES } from '../../../services/runtime-agent/src/store/types.js';
import type { Wpk } from '../../../services/runtime-agent/src/wpk/types.js';
import { testAdapter } from '../support/test-adapter.js';
import { waitFor } from '../support/wait.js';

export interface Call {
  /** `action` for run(), `action:dry` for run() in a dry run. */
  action: string;
  step: string;
  input: any;
  dryRun: boolean;
  attempt: number;
  executionId: string;
  at: number;
  /** Set by actions that wait for the abort signal: when it fired. */
  abortedAt?: number;
  /** Set by actions that run for a while: when they returned. */
  endedAt?: number;
}

/** Resolves after `ms`, rejects at once when the signal aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted before the pause'));
    const timer = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(timer), reject(new Error('aborted during the pause')));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The fake adapter. Actions (all record into `calls`):
 * - ok (read-only): returns `{ value: input.value }`, after `input.delayMs` if given.
 * - fail (read-only): throws AgentError(`type`, `message`) for the first `times` calls of `key`, then returns.
 * - hang (read-only): waits for the abort signal, then throws; with `hangAttempts`, only that many attempts hang.
 * - stubborn (read-only): waits `ms` and ignores the abort signal.
 * - record (mutating, no dry-run support, no compensation): returns `{ value: input.value }`.
 * - create (mutating, default compensation `delete { id }`): returns `{ id: 'id-' + name }`.
 * - delete (mutating, supports dry run: then records `delete:dry` and asks for the example output).
 * - dryable (mutating, supports dry run: then records `dryable:dry` and returns `{ value: 'from-dry-run' }`).
 * - leak (read-only): logs and returns its `token` (also as numbers with `numeric: true`), reports it as progress with `progress: true`, and with `fail: true` throws with it in the message.
 * - strict (read-only): input must be `{ n: integer }`.
 */
export function fakeAdapter(calls: Call[], failures = new Map<string, number>()): Adapter {
  const note = (action: string, ctx: StepContext, input: any): Call => {
    const call: Call = {
      action,
      step: ctx.step,
      input: structuredClone(input),
      dryRun: ctx.dryRun,
      attempt: ctx.attempt,
      executionId: ctx.executionId,
      at: Date.now(),
    };
    calls.push(call);
    return call;
  };
  return testAdapter('fake', 'test double', {
    ok: {
      description: 'returns its value',
      exampleOutput: { value: 'example' },
      async run(ctx, input) {
        const call = note('ok', ctx, input);
        if (input.delayMs) await pause(input.delayMs, ctx.signal);
        call.endedAt = Date.now();
        return { value: input.value };
      },
    },
    fail: {
      description: 'fails a given number of times',
      exampleOutput: { value: 'example' },
      async run(ctx, input) {
        note('fail', ctx, input);
        const key = String(input.key ?? ctx.executionId + ctx.step);
        const seen = (failures.get(key) ?? 0) + 1;
        failures.set(key, seen);
        if (seen <= (input.times ?? Infinity)) {
          const opts = input.retryable === undefined ? {} : { retryable: input.retryable as boolean };
          throw new AgentError(
            (input.type ?? 'adapter_error') as ErrorType,
            input.message ?? `planned failure ${seen}`,
            opts,
          );
        }
        return { value: 'recovered', attempts: seen };
      },
    },
    hang: {
      description: 'waits for the abort signal',
      exampleOutput: { value: 'example' },
      run(ctx, input) {
        const call = note('hang', ctx, input);
        if (input.hangAttempts !== undefined && ctx.attempt > input.hangAttempts)
          return Promise.resolve({ value: 'did not hang' });
        return new Promise((_, reject) => {
          const onAbort = () => {
            call.abortedAt = Date.now();
            reject(new Error('hang was aborted'));
          };
          if (ctx.signal.aborted) onAbort();
          else ctx.signal.addEventListener('abort', onAbort, { once: true });
        });
      },
    },
    stubborn: {
      description: 'waits input.ms whatever happens: a step that does not stop when aborted',
      exampleOutput: { value: 'example' },
      async run(ctx, input) {
        note('stubborn', ctx, input);
        await new Promise((resolve) => setTimeout(resolve, Number(input.ms)));
        return { value: 'finally done' };
      },
    },
    record: {
      description: 'records its input (mutating)',
      mutates: true,
      exampleOutput: { value: 'example' },
      async run(ctx, input) {
        note('record', ctx, input);
        return { value: input.value };
      },
    },
    create: {
      description: 'creates a thing; compensated by delete',
      mutates: true,
      exampleOutput: { id: 'id-example' },
      compensate: (_input: any, out: any) => ({ action: 'delete', with: { id: out.id } }),
      async run(ctx, input) {
        note('create', ctx, input);
        return { id: `id-${input.name}` };
      },
    },
    delete: {
      description: 'deletes a thing',
      mutates: true,
      supportsDryRun: true,
      exampleOutput: { deleted: 'id-example' },
      async run(ctx, input) {
        if (ctx.dryRun) {
          note('delete:dry', ctx, input);
          return USE_EXAMPLE_OUTPUT;
        }
        note('delete', ctx, input);
        return { deleted: input.id };
      },
    },
    dryable: {
      description: 'mutating, with a dry-run hook',
      mutates: true,
      supportsDryRun: true,
      exampleOutput: { value: 'example' },
      async run(ctx, input) {
        if (ctx.dryRun) {
          note('dryable:dry', ctx, input);
          return { value: 'from-dry-run' };
        }
        note('dryable', ctx, input);
        return { value: 'for-real' };
      },
    },
    leak: {
      description: 'logs, returns and throws its token',
      async run(ctx, input) {
        note('leak', ctx, input);
        ctx.log.info(`using token ${input.token}`);
        ctx.log.line('stdout', `token=${input.token}`);
        if (input.progress) ctx.progress({ seen: input.token, done: 1 });
        if (input.fail)
          throw new AgentError('adapter_error', `login failed for token ${input.token}`, {
            details: { token: input.token },
            retryable: false,
          });
        // With `numeric`, outputs also carry the token as numbers (as an API might echo a PIN).
        const numbers = input.numeric ? { port: Number(input.token), ts: Number(`16${input.token}000`) } : {};
        return { echo: input.token, nested: { note: input.note }, ...numbers };
      },
    },
    strict: {
      description: 'input must be { n: integer }',
      input: { type: 'object', additionalProperties: false, required: ['n'], properties: { n: { type: 'integer' } } },
      async run(ctx, input) {
        note('strict', ctx, input);
        return {};
      },
    },
  });
}

/** A WPK package of fake steps. */
export function wpk(handlers: unknown[], spec: Partial<Wpk['spec']> = {}, name = 'engine-test'): Wpk {
  return {
    apiVersion: 'wpk/v1',
    kind: 'Workflow',
    metadata: { name, version: '1.0.0' },
    spec: { ...spec, handlers: handlers as Wpk['spec']['handlers'] },
  };
}

export function step(
  name: string,
  action: string,
  withInput: Record<string, unknown> = {},
  more: Record<string, unknown> = {},
) {
  return { name, adapter: 'fake', action, with: withInput, ...more };
}

export type ExecutionRecord = ReturnType<typeof toRecord>;

export interface Harness {
  dir: string;
  store: Store;
  engine: Engine;
  metrics: Metrics;
  calls: Call[];
  callsOf(action: string, executionId?: string): Call[];
  submit(req: Partial<SubmitRequest> & { wpk: Wpk }): string;
  /** Resolves with the record once the execution ended (`end:<id>` on the bus). */
  finished(id: string, timeoutMs?: number): Promise<ExecutionRecord>;
  /** Submits and waits for the end. */
  run(req: Partial<SubmitRequest> & { wpk: Wpk }, timeoutMs?: number): Promise<ExecutionRecord>;
  record(id: string): ExecutionRecord;
  logs(id: string): string[];
  /** Stops the engine and closes the store (idempotent); `remove` deletes the directory too. */
  close(remove?: boolean): Promise<void>;
}

/**
 * `dir`: open the store of an earlier harness (as an agent restarting on the same data directory would).
 * `adapters`: registered beside the fake one.
 */
export function startEngine(
  options: Partial<EngineOptions> = {},
  dir = mkdtempSync(join(tmpdir(), 'engine-spec-')),
  adapters: Adapter[] = [],
): Harness {
  // Two harnesses on one directory stand for an agent and its restart, so the process-wide lock is off.
  const store = new Store(dir, { exclusive: false });
  const calls: Call[] = [];
  const registry = new AdapterRegistry([fakeAdapter(calls), ...adapters]);
  const metrics = new Metrics();
  const engine = new Engine(store, registry, metrics, {
    maxConcurrent: 4,
    maxQueued: 100,
    shutdownGraceMs: 100,
    ...options,
  });
  const internalErrors: unknown[] = [];
  engine.bus.on('internal_error', (err) => internalErrors.push(err));
  let closed = false;
  const record = (id: string) => toRecord(store.executions.get(id)!, store.steps.of(id));
  const h: Harness = {
    dir,
    store,
    engine,
    metrics,
    calls,
    callsOf: (action, executionId) =>
      calls.filter((c) => c.action === action && (executionId === undefined || c.executionId === executionId)),
    submit: (req) => engine.submit({ params: {}, dryRun: false, ...req }).execution.id,
    finished(id, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          if (internalErrors.length) reject(internalErrors[0]);
          else resolve(record(id));
        };
        const timer = setTimeout(() => {
          engine.bus.off(`end:${id}`, done);
          reject(
            new Error(`execution ${id} did not end within ${timeoutMs} ms; it is ${store.executions.get(id)?.status}`),
          );
        }, timeoutMs);
        engine.bus.once(`end:${id}`, done);
        if (!engine.isLive(id) && TERMINAL_STATUSES.has(store.executions.get(id)!.status)) {
          engine.bus.off(`end:${id}`, done);
          done();
        }
      });
    },
    async run(req, timeoutMs) {
      return h.finished(h.submit(req), timeoutMs);
    },
    record,
    logs: (id) =>
      store.logs.page(id, { since: 0, limit: 10_000 }).map((l) => `${l.level} ${l.step ?? '-'} ${l.message}`),
    async close(remove = true) {
      if (!closed) {
        closed = true;
        await engine.shutdown();
        store.close();
      }
      if (remove) rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** Waits until `count` calls of `action` were made. */
export function callsMade(h: Harness, action: string, count = 1, executionId?: string): Promise<Call[]> {
  return waitFor(() => {
    const found = h.callsOf(action, executionId);
    return found.length >= count ? found : undefined;
  }, `${count} call(s) of fake.${action}`);
}

/** Current value of a counter for the given labels (0 when never incremented). */
export async function counterValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return hit?.value ?? 0;
}

/** A harness that a test may replace: `restart` closes the current one and starts another on a fresh directory. */
export type HarnessHandle = Harness & {
  restart(options?: Partial<EngineOptions>, adapters?: Adapter[]): Promise<void>;
};

/**
 * One harness per test of the enclosing describe block (started before each test, closed after it). The
 * returned object forwards to the current one.
 */
export function useEngine(options: Partial<EngineOptions> = {}): HarnessHandle {
  let current: Harness | undefined;
  beforeEach(() => {
    current = startEngine(options);
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  const restart = async (more: Partial<EngineOptions> = {}, adapters: Adapter[] = []) => {
    await current?.close();
    current = startEngine({ ...options, ...more }, undefined, adapters);
  };
  return new Proxy({} as HarnessHandle, {
    get(_target, prop) {
      if (prop === 'restart') return restart;
      if (!current) throw new Error('the engine harness is only there inside a test of its describe block');
      const value = (current as unknown as Record<PropertyKey, unknown>)[prop];
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
}

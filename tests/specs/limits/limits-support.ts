/**
 * The real Engine and Store with one small adapter, `chatty`, that logs as
 * many lines and returns outputs as large as a test asks for.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Adapter } from '../../../adapters/contract.js';
import type { EngineOptions } from '../../../services/runtime-agent/src/engine/engine.js';
import type { LogLine } from '../../../services/runtime-agent/src/store/store.js';
import type { Wpk } from '../../../services/runtime-agent/src/wpk/types.js';
import { startEngine, type Harness } from '../engine/harness.js';
import { testAdapter } from '../support/test-adapter.js';

interface TalkInput {
  /** Lines to log, each `text` (default `line`) and its number. */
  lines?: number;
  text?: string;
  /** Characters of `blob` in the outputs. */
  outputChars?: number;
  outputChar?: string;
}

function talk(ctx: { log: { info(m: string): void } }, input: TalkInput) {
  for (let i = 0; i < (input.lines ?? 0); i++) ctx.log.info(`${input.text ?? 'line'} ${i}`);
  return { blob: (input.outputChar ?? 'x').repeat(input.outputChars ?? 0) };
}

/**
 * - talk (read-only): logs `lines` lines and returns `blob` of `outputChars` characters.
 * - change (mutating): like talk; compensated by talk with `undoLines` lines.
 * - hang (read-only): waits for the abort signal.
 */
export function chattyAdapter(): Adapter {
  return testAdapter('chatty', 'test double that logs and returns on demand', {
    talk: {
      description: 'logs and returns',
      exampleOutput: { blob: '' },
      run: async (ctx, input: TalkInput) => talk(ctx, input),
    },
    change: {
      description: 'logs, returns, and is undone by talk',
      mutates: true,
      exampleOutput: { blob: '' },
      compensate: (input: { undoLines?: number }) => ({
        action: 'talk',
        with: { lines: input.undoLines ?? 0, text: 'undo' },
      }),
      run: async (ctx, input: TalkInput) => talk(ctx, input),
    },
    hang: {
      description: 'waits for the abort signal',
      run: (ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
        ),
    },
  });
}

export function chattyPackage(
  handlers: Array<{ name: string; action: string; with?: Record<string, unknown>; retries?: { count: number } }>,
  spec: Partial<Wpk['spec']> = {},
): Wpk {
  return {
    apiVersion: 'wpk/v1',
    kind: 'Workflow',
    metadata: { name: 'limits-test', version: '1.0.0' },
    spec: { ...spec, handlers: handlers.map((h) => ({ adapter: 'chatty', ...h })) as Wpk['spec']['handlers'] },
  };
}

/** The engine harness with `chatty` registered. `dir`: the data directory of an earlier one (an agent restarting). */
export function startChatty(
  options: Partial<EngineOptions>,
  dir = mkdtempSync(join(tmpdir(), 'limits-spec-')),
): Harness {
  return startEngine(options, dir, [chattyAdapter()]);
}

/** An execution's stored log lines, whole. */
export function logRows(h: Harness, id: string): LogLine[] {
  return h.store.logs.page(id, { since: 0, limit: 10_000 });
}

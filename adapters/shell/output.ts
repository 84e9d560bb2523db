import { type Static, Type } from '@sinclair/typebox';
import type { StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { CappedBuffer } from './capped-buffer.js';
import { LineSplitter } from './line-splitter.js';
import type { RunInput } from './run-input.js';

/** stdout and stderr each keep at most this much (the tail) in the outputs. */
export const OUTPUT_LIMIT_BYTES = 1024 * 1024;
/** One logged line is cut at this size. */
export const LOG_LINE_LIMIT_BYTES = 8 * 1024;
/** How much of stdout and stderr an error's details carry. */
export const DETAIL_TAIL_BYTES = 4 * 1024;

export const RunOutput = Type.Object(
  {
    exitCode: Type.Integer(),
    stdout: Type.String({ description: 'the tail of stdout (at most OUTPUT_LIMIT_BYTES)' }),
    stderr: Type.String({ description: 'the tail of stderr (at most OUTPUT_LIMIT_BYTES)' }),
    json: Type.Optional(Type.Unknown({ description: "stdout parsed as JSON (parse: 'json')" })),
    lines: Type.Optional(Type.Array(Type.String(), { description: "the lines of stdout (parse: 'lines')" })),
  },
  { additionalProperties: false },
);
export type RunOutput = Static<typeof RunOutput>;

/** Tees one output stream into the capped output and, line by line, into the execution log. */
export function capture(ctx: StepContext, stream: 'stdout' | 'stderr') {
  const buffer = new CappedBuffer(stream, OUTPUT_LIMIT_BYTES);
  const lines = new LineSplitter((text) => ctx.log.line(stream, text), LOG_LINE_LIMIT_BYTES);
  return {
    buffer,
    lines,
    onData: (chunk: Buffer) => {
      buffer.push(chunk);
      lines.push(chunk);
    },
  };
}

export function parseStdout(stdout: string, parse: RunInput['parse'], truncated: boolean): Partial<RunOutput> {
  if (parse === 'lines') {
    const lines = stdout.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return { lines: lines.map((line) => line.replace(/\r$/, '')) };
  }
  if (parse !== 'json') return {};
  try {
    return { json: JSON.parse(stdout) };
  } catch (err) {
    const why = truncated
      ? `stdout exceeded ${OUTPUT_LIMIT_BYTES} bytes and only its tail was kept`
      : (err as Error).message;
    throw new AgentError('command_failed', `stdout is not valid JSON: ${why}`, {
      cause: err,
      details: { stdout: stdout.slice(-DETAIL_TAIL_BYTES) },
    });
  }
}

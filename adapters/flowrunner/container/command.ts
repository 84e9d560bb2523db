/**
 * Runs one argv for the container control (tc, pre_start, post_stop) under the shell adapter's process
 * rules: never through a shell, in a process group of its own that a timeout stops whole (SIGTERM, then
 * SIGKILL), killed if the agent exits first, and every output line written to the agent's log.
 */
import { AgentError } from '../../errors.js';
import { CappedBuffer } from '../../shell/capped-buffer.js';
import { LineSplitter } from '../../shell/line-splitter.js';
import { DETAIL_TAIL_BYTES, LOG_LINE_LIMIT_BYTES } from '../../shell/output.js';
import { terminateGroup, trackGroup } from '../../shell/process-group.js';
import { DEFAULT_SHELL } from '../../shell/settings.js';
import { spawnInGroup } from '../../shell/spawn.js';
import type { FlowLog } from '../control.js';

/** How long one command may run before its process group is stopped. */
export const COMMAND_TIMEOUT_MS = 30_000;

export interface CommandResult {
  exitCode: number | undefined;
  /** The tail of stdout and stderr together, in the order they came (at most DETAIL_TAIL_BYTES). */
  output: string;
  timedOut: boolean;
}

/** Runs `argv`; resolves whatever its exit code (a program that cannot start rejects with command_failed). */
export async function runArgv(
  argv: string[],
  log: FlowLog,
  label: string,
  timeoutMs: number = COMMAND_TIMEOUT_MS,
): Promise<CommandResult> {
  const { subprocess, pid } = await spawnInGroup(DEFAULT_SHELL, { command: argv }, new AbortController().signal);
  const tail = new CappedBuffer(label, DETAIL_TAIL_BYTES);
  const lines = (stream: string) =>
    new LineSplitter((text) => log('info', `${label} ${stream}: ${text}`), LOG_LINE_LIMIT_BYTES);
  const out = lines('stdout');
  const err = lines('stderr');
  const tee = (lines: LineSplitter) => (chunk: Buffer) => {
    tail.push(chunk);
    lines.push(chunk);
  };
  subprocess.stdout?.on('data', tee(out));
  subprocess.stderr?.on('data', tee(err));
  let timedOut = false;
  let stopping: { done(): void } | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    log('warn', `${label} timed out after ${timeoutMs / 1000}s: stopping process group ${pid}`);
    stopping = terminateGroup(pid);
  }, timeoutMs);
  const untrack = trackGroup(pid);
  try {
    const result = await subprocess;
    return { exitCode: result.exitCode, output: tail.tail(DETAIL_TAIL_BYTES).trim(), timedOut };
  } finally {
    clearTimeout(timer);
    stopping?.done();
    untrack();
    out.flush();
    err.flush();
  }
}

/** A command that did not succeed, as one sentence with its output. */
export function commandFailure(label: string, argv: string[], r: CommandResult, timeoutMs = COMMAND_TIMEOUT_MS) {
  const how = r.timedOut
    ? `timed out after ${timeoutMs / 1000}s`
    : r.exitCode === undefined
      ? 'was killed by a signal'
      : `exited with code ${r.exitCode}`;
  return new AgentError(
    'command_failed',
    `${label} ${JSON.stringify(argv)} ${how}${r.output ? `: ${r.output.replace(/\s*\n\s*/g, ' | ')}` : ' (no output)'}`,
    { retryable: false, details: { argv, exitCode: r.exitCode ?? null, output: r.output } },
  );
}

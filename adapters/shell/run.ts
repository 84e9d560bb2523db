import { defineAction } from '../contract.js';
import { sensitiveValues } from '../shared/sensitive.js';
import { AgentError } from '../errors.js';
import { DETAIL_TAIL_BYTES, OUTPUT_LIMIT_BYTES, capture, parseStdout, RunOutput } from './output.js';
import { terminateGroup, trackGroup } from './process-group.js';
import { dryRun } from './dry-run.js';
import { RunInput } from './run-input.js';
import { DEFAULT_SHELL, type ShellSettings } from './settings.js';
import { spawnInGroup } from './spawn.js';
import { checkRunStatic } from './static-check.js';

export { SIGKILL_GRACE_MS } from './process-group.js';
export { LOG_LINE_LIMIT_BYTES, OUTPUT_LIMIT_BYTES, RunOutput } from './output.js';
export { RunInput } from './run-input.js';

/** The `run` action under a shell policy (what the agent's configuration allows). */
export function createRunAction(settings: ShellSettings) {
  return defineAction({
    id: 'run',
    description:
      'Runs a program with arguments (argv; a /bin/sh script only where the agent allows shell: true) in its own process group; ' +
      'streams its output into the log and returns exit code, stdout and stderr (tail-capped at 1 MiB each).',
    mutates: true,
    supportsDryRun: true,
    input: RunInput,
    output: RunOutput,
    exampleOutput: { exitCode: 0, stdout: '', stderr: '' },
    checkStatic: checkRunStatic(settings),
    secretsIn: (input) => sensitiveValues(input.env),

    async run(ctx, input) {
      if (ctx.dryRun) return dryRun(settings, ctx, input);
      const { subprocess, pid, argv } = await spawnInGroup(settings, input, ctx.signal);
      ctx.log.debug(`started pid ${pid}: ${JSON.stringify(argv)}`);

      const out = capture(ctx, 'stdout');
      const err = capture(ctx, 'stderr');
      subprocess.stdout.on('data', out.onData);
      subprocess.stderr.on('data', err.onData);
      if (input.stdin !== undefined && subprocess.stdin !== null) {
        subprocess.stdin.on('error', () => {}); // EPIPE when the command exits without reading it all
        subprocess.stdin.end(input.stdin);
      }

      let stoppedBy: 'cancelled' | 'timeout' | undefined;
      let stopping: { done(): void } | undefined;
      const stop = (reason: 'cancelled' | 'timeout') => {
        if (stoppedBy !== undefined) return;
        stoppedBy = reason;
        ctx.log.warn(`${reason === 'timeout' ? 'timed out' : 'cancelled'}: stopping process group ${pid}`);
        stopping = terminateGroup(pid);
      };
      const onAbort = () => stop('cancelled');
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      const timer =
        input.timeoutSeconds === undefined ? undefined : setTimeout(() => stop('timeout'), input.timeoutSeconds * 1000);
      const untrack = trackGroup(pid);
      const forget = ctx.processGroupStarted(pid);

      let result: Awaited<typeof subprocess>;
      try {
        result = await subprocess;
      } finally {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onAbort);
        stopping?.done();
        untrack();
        forget();
        out.lines.flush();
        err.lines.flush();
      }

      const tails = { stdout: out.buffer.tail(DETAIL_TAIL_BYTES), stderr: err.buffer.tail(DETAIL_TAIL_BYTES) };
      if (stoppedBy === 'cancelled') {
        throw new AgentError('cancelled', `command was cancelled; process group ${pid} was stopped`, {
          details: tails,
        });
      }
      if (stoppedBy === 'timeout') {
        throw new AgentError('timeout', `command timed out after ${input.timeoutSeconds}s`, {
          details: { timeoutSeconds: input.timeoutSeconds, ...tails },
        });
      }
      if (result.exitCode === undefined) {
        const message = result.signal
          ? `command was killed by ${result.signal} (not sent by the agent)`
          : `command failed: ${result.originalMessage ?? result.shortMessage}`;
        throw new AgentError('command_failed', message, {
          cause: result,
          details: { signal: result.signal ?? null, ...tails },
        });
      }
      const exitCode = result.exitCode;
      if (!(input.successExitCodes ?? [0]).includes(exitCode)) {
        throw new AgentError('command_failed', `command exited with code ${exitCode}`, {
          details: { exitCode, ...tails },
        });
      }

      const stdout = out.buffer.toString();
      const truncated = out.buffer.totalBytes > OUTPUT_LIMIT_BYTES;
      return { exitCode, stdout, stderr: err.buffer.toString(), ...parseStdout(stdout, input.parse, truncated) };
    },
  });
}

/** `run` as the default configuration allows it (no shell, no allowlist, no work root). */
export const run = createRunAction(DEFAULT_SHELL);

/**
 * The one fake StepContext, for calling an action directly: it keeps every line the action logs, the
 * credentials it registers and the process groups it says it started or leaves running.
 */
import type { StepContext } from '../../../adapters/contract.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'stdout' | 'stderr';

export interface LogLine {
  level: LogLevel;
  message: string;
  /** Epoch ms it was logged. */
  at: number;
}

export interface StepContextOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
  attempt?: number;
  executionId?: string;
  step?: string;
  /** Where the lines go (default: a new array). */
  logs?: LogLine[];
  /** Where registered credentials go (default: a new array). */
  secrets?: string[];
}

export interface FakeStepContext {
  ctx: StepContext;
  /** Aborts `ctx.signal` (unless a signal was given). */
  controller: AbortController;
  logs: LogLine[];
  /** The messages logged at `level`, in order. */
  texts(level: LogLevel): string[];
  /** What the action registered with `ctx.secret`. */
  secrets: string[];
  /** Process groups the action reported and has not reported gone yet. */
  groups: Set<number>;
  /** Groups the action said it leaves running after the step (pid → command), until it reports them gone. */
  background: Map<number, string[]>;
  /** What the action reported with ctx.progress, in order. */
  progress: Array<Record<string, unknown>>;
}

export function stepContext(options: StepContextOptions = {}): FakeStepContext {
  const controller = new AbortController();
  const logs = options.logs ?? [];
  const secrets = options.secrets ?? [];
  const groups = new Set<number>();
  const background = new Map<number, string[]>();
  const progress: Array<Record<string, unknown>> = [];
  const log = (level: LogLevel) => (message: string) => void logs.push({ level, message, at: Date.now() });
  const ctx: StepContext = {
    signal: options.signal ?? controller.signal,
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), line: (s, t) => log(s)(t) },
    dryRun: options.dryRun ?? false,
    executionId: options.executionId ?? 'test-execution',
    step: options.step ?? 'test-step',
    attempt: options.attempt ?? 1,
    secret: (value) => void secrets.push(value),
    processGroupStarted: (pgid) => {
      groups.add(pgid);
      return () => groups.delete(pgid);
    },
    backgroundGroupStarted: (pgid, command) => {
      background.set(pgid, command);
      return () => background.delete(pgid);
    },
    progress: (data) => void progress.push(data),
  };
  return {
    ctx,
    controller,
    logs,
    texts: (level) => logs.filter((l) => l.level === level).map((l) => l.message),
    secrets,
    groups,
    background,
    progress,
  };
}

/** A StepContext for calling an action directly, keeping the lines it logs. */
import type { StepContext } from '../../../adapters/contract.js';

export interface LogLine {
  level: string;
  message: string;
}

export function stepContext(): { ctx: StepContext; logs: LogLine[]; controller: AbortController } {
  const logs: LogLine[] = [];
  const controller = new AbortController();
  const log = (level: string) => (message: string) => void logs.push({ level, message });
  const ctx: StepContext = {
    signal: controller.signal,
    log: {
      debug: log('debug'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      line: (stream, text) => log(stream)(text),
    },
    dryRun: false,
    executionId: 'test',
    step: 's',
    attempt: 1,
    secret: () => undefined,
  };
  return { ctx, logs, controller };
}

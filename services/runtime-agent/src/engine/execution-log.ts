/** The execution's own log: numbered lines, secrets masked, stored and published to followers. */
import type { EventEmitter } from 'node:events';
import type { LogLevel, StepLog } from '../../../../adapters/contract.js';
import type { LogRow, Store } from '../store/store.js';
import type { Redactor } from './redact.js';

/** A logged line longer than this is cut, so one chatty step cannot bloat the store. */
export const MAX_LOG_LINE_CHARS = 16 * 1024;

export class ExecutionLog {
  private seq: number;

  constructor(
    private readonly store: Store,
    private readonly bus: EventEmitter,
    readonly executionId: string,
    private readonly redactor: Redactor,
    lastSeq = 0,
  ) {
    this.seq = lastSeq;
  }

  write(level: LogLevel, message: string, step: string | null = null, stream: string | null = null): void {
    let text = this.redactor.text(message);
    if (text.length > MAX_LOG_LINE_CHARS) text = `${text.slice(0, MAX_LOG_LINE_CHARS)} …[${text.length - MAX_LOG_LINE_CHARS} chars cut]`;
    const row: LogRow = { seq: ++this.seq, ts: new Date().toISOString(), level, step, stream, message: text };
    this.store.appendLog(this.executionId, row);
    this.bus.emit(`log:${this.executionId}`, row);
  }

  /** The StepLog handed to an adapter action. */
  forStep(step: string): StepLog {
    return {
      debug: (m) => this.write('debug', m, step),
      info: (m) => this.write('info', m, step),
      warn: (m) => this.write('warn', m, step),
      error: (m) => this.write('error', m, step),
      line: (stream, text) => this.write(stream === 'stderr' ? 'warn' : 'info', text, step, stream),
    };
  }
}

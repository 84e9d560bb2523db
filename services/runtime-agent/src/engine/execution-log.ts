/**
 * The execution's own log: numbered lines, secrets masked, stored and
 * published to followers, and bounded per execution (lines and bytes).
 */
import type { EventEmitter } from 'node:events';
import type { LogLevel, StepLog } from '../../../../adapters/contract.js';
import type { Store } from '../store/store.js';
import type { LogLine, LogTally } from '../store/types.js';
import type { Redactor } from './redact.js';
import { nowIso } from '../clock.js';

/** A logged line longer than this is cut, so one chatty step cannot bloat the store. */
export const MAX_LOG_LINE_CHARS = 16 * 1024;

/** The stream of lines the agent writes about the log itself (the truncation marker). */
export const AGENT_STREAM = 'agent';

/** MAX_LOG_LINES_PER_EXECUTION and MAX_LOG_BYTES_PER_EXECUTION (bytes of message text, UTF-8). */
export interface LogLimits {
  maxLines: number;
  maxBytes: number;
}

export const UNLIMITED_LOG: LogLimits = { maxLines: Infinity, maxBytes: Infinity };

const EMPTY: LogTally = { lines: 0, bytes: 0, dropped: 0 };

export class ExecutionLog {
  /** Lines stored so far (the marker included); also the last seq. */
  private seq: number;
  private bytes: number;
  /** Lines refused since the log was truncated. */
  private dropped: number;
  private truncated: boolean;
  /** The bus event followers listen on, made once (every line is published). */
  private readonly event: string;

  /** `start`: what an earlier life of this execution logged (the store's tally), so limits hold across restarts. */
  constructor(
    private readonly store: Store,
    private readonly bus: EventEmitter,
    readonly executionId: string,
    private readonly redactor: Redactor,
    private readonly limits: LogLimits = UNLIMITED_LOG,
    start: LogTally = EMPTY,
  ) {
    this.event = `log:${executionId}`;
    this.seq = start.lines;
    this.bytes = start.bytes;
    this.dropped = start.dropped;
    // Only the marker goes past a limit: a stored log past one was truncated even if its drop count was not
    // committed yet when the agent stopped.
    this.truncated = start.dropped > 0 || start.lines > limits.maxLines || start.bytes > limits.maxBytes;
  }

  write(level: LogLevel, message: string, step: string | null = null, stream: string | null = null): void {
    // Past the limit a line costs a count, not a redaction or a timestamp.
    if (this.truncated) return this.drop();
    if (this.seq >= this.limits.maxLines)
      return this.truncate(`${this.limits.maxLines} lines (MAX_LOG_LINES_PER_EXECUTION)`);
    let text = this.redactor.text(message);
    if (text.length > MAX_LOG_LINE_CHARS)
      text = `${text.slice(0, MAX_LOG_LINE_CHARS)} …[${text.length - MAX_LOG_LINE_CHARS} chars cut]`;
    const bytes = Buffer.byteLength(text);
    if (this.bytes + bytes > this.limits.maxBytes)
      return this.truncate(`${this.limits.maxBytes} bytes (MAX_LOG_BYTES_PER_EXECUTION)`);
    this.bytes += bytes;
    this.append(level, text, step, stream);
  }

  /** The StepLog handed to an adapter action. */
  forStep(step: string): StepLog {
    return new StepLogger(this, step);
  }

  private append(level: LogLevel, message: string, step: string | null, stream: string | null): void {
    const row: LogLine = { seq: ++this.seq, ts: nowIso(), level, step, stream, message };
    this.store.logs.append(this.executionId, row);
    this.bus.emit(this.event, row);
  }

  /** One marker line, beyond the limits, and then every later line is dropped and counted. */
  private truncate(limit: string): void {
    this.truncated = true;
    const marker = `log truncated: this execution reached its limit of ${limit}; further lines are dropped and counted in the execution record (dropped_log_lines)`;
    this.bytes += Buffer.byteLength(marker);
    this.append('warn', marker, null, AGENT_STREAM);
    this.drop();
  }

  /** The count is a coalesced deferred write: many drops in one flush window cost one UPDATE. */
  private drop(): void {
    this.store.executions.patch(this.executionId, { droppedLogLines: ++this.dropped }, { deferred: true });
  }
}

/** One step's view of the execution log (a class: every step gets one, and its methods are shared). */
class StepLogger implements StepLog {
  constructor(
    private readonly log: ExecutionLog,
    private readonly step: string,
  ) {}

  debug(m: string): void {
    this.log.write('debug', m, this.step);
  }

  info(m: string): void {
    this.log.write('info', m, this.step);
  }

  warn(m: string): void {
    this.log.write('warn', m, this.step);
  }

  error(m: string): void {
    this.log.write('error', m, this.step);
  }

  line(stream: 'stdout' | 'stderr', text: string): void {
    this.log.write(stream === 'stderr' ? 'warn' : 'info', text, this.step, stream);
  }
}

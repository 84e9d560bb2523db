import { previousCharBoundary } from './capped-buffer.js';

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into lines as it arrives and hands each to `emit`,
 * holding back the unfinished last line until more comes or `flush()`.
 * A line longer than `maxLineBytes` is cut with a marker; the held-back part
 * never grows past that either, so a newline-free flood costs no memory.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private droppedBytes = 0;

  constructor(
    private readonly emit: (text: string) => void,
    private readonly maxLineBytes: number,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      this.hold(chunk.subarray(start, nl));
      this.emitPending();
      start = nl + 1;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
  }

  /** Emits the unfinished last line, if any (call when the stream ends). */
  flush(): void {
    if (this.pendingBytes > 0 || this.droppedBytes > 0) this.emitPending();
  }

  private hold(part: Buffer): void {
    const room = this.maxLineBytes - this.pendingBytes;
    if (part.length > room) {
      this.droppedBytes += part.length - room;
      part = part.subarray(0, room);
    }
    if (part.length > 0) {
      this.pending.push(part);
      this.pendingBytes += part.length;
    }
  }

  private emitPending(): void {
    const bytes = Buffer.concat(this.pending, this.pendingBytes);
    let text: string;
    if (this.droppedBytes > 0) {
      const cut = previousCharBoundary(bytes, bytes.length);
      const dropped = this.droppedBytes + bytes.length - cut;
      text = `${bytes.subarray(0, cut).toString('utf8')} [runtime-agent: line cut, ${dropped} more bytes dropped]`;
    } else {
      text = bytes.toString('utf8').replace(/\r$/, '');
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.droppedBytes = 0;
    this.emit(text);
  }
}

/** Byte-level UTF-8 helpers: cuts made on raw output must not split a character. */
function isContinuationByte(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

/** Index of the first character boundary at or after `start`. */
export function nextCharBoundary(bytes: Buffer, start: number): number {
  let i = start;
  while (i < bytes.length && isContinuationByte(bytes[i]!)) i++;
  return i;
}

/** Index of the last character boundary at or before `end`. */
export function previousCharBoundary(bytes: Buffer, end: number): number {
  let i = Math.min(end, bytes.length);
  while (i > 0 && i < bytes.length && isContinuationByte(bytes[i]!)) i--;
  return i;
}

/**
 * Keeps the last `limitBytes` of a stream of chunks. Output of a failing
 * command is most useful at its end, so the head is what gets dropped, and a
 * marker line says how much.
 */
export class CappedBuffer {
  private chunks: Buffer[] = [];
  private retainedBytes = 0;
  private seenBytes = 0;

  constructor(
    private readonly label: string,
    private readonly limitBytes: number,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.retainedBytes += chunk.length;
    this.seenBytes += chunk.length;
    // Drop whole chunks only while what remains still covers the limit.
    while (this.chunks.length > 1 && this.retainedBytes - this.chunks[0]!.length >= this.limitBytes) {
      this.retainedBytes -= this.chunks.shift()!.length;
    }
  }

  /** Total bytes pushed, including those dropped. */
  get totalBytes(): number {
    return this.seenBytes;
  }

  /** The kept tail as text, preceded by a marker line when anything was dropped. */
  toString(): string {
    const all = Buffer.concat(this.chunks, this.retainedBytes);
    const overflow = Math.max(0, all.length - this.limitBytes);
    const start = nextCharBoundary(all, overflow);
    const dropped = this.seenBytes - (all.length - start);
    const text = all.subarray(start).toString('utf8');
    return dropped > 0 ? `[runtime-agent: ${dropped} earlier bytes of ${this.label} dropped]\n${text}` : text;
  }

  /** The last `bytes` bytes as text (for error details), without a marker. */
  tail(bytes: number): string {
    const all = Buffer.concat(this.chunks, this.retainedBytes);
    return all.subarray(nextCharBoundary(all, Math.max(0, all.length - bytes))).toString('utf8');
  }
}

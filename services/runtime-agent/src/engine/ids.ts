/**
 * Execution ids: UUIDv7 (RFC 9562), a millisecond timestamp followed by random bits. They are unique as
 * v4 ids are, and they sort by creation time, so every index of the store keyed by execution id (the
 * executions, steps, logs and journal tables) grows at its end instead of touching a random page per new
 * execution: each commit writes fewer pages.
 */
import { randomFillSync } from 'node:crypto';

/** Random bytes fetched 256 ids at a time (one system call each). */
const pool = Buffer.alloc(16 * 256);
let next = pool.length;

export function newExecutionId(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const at = next;
  next += 16;
  pool.writeUIntBE(Date.now(), at, 6);
  pool[at + 6] = (pool[at + 6]! & 0x0f) | 0x70; // version 7
  pool[at + 8] = (pool[at + 8]! & 0x3f) | 0x80; // variant 10
  const hex = pool.toString('hex', at, at + 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

import assert from 'node:assert/strict';
import { newExecutionId } from '../../../services/runtime-agent/src/engine/ids.js';

describe('engine: execution ids', () => {
  it('are UUIDv7: unique, version 7 with the RFC 9562 variant, and in creation order across milliseconds', async () => {
    const ids = Array.from({ length: 10_000 }, () => newExecutionId());
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const before = newExecutionId();
    const at = Date.now();
    while (Date.now() === at) {
      // the next millisecond
    }
    const after = newExecutionId();
    assert.ok(before < after, `${before} sorts before ${after}`);
    const ms = Number.parseInt(after.replace(/-/g, '').slice(0, 12), 16);
    assert.ok(Math.abs(ms - Date.now()) < 1000, 'the first 48 bits are the creation time in ms');
  });
});

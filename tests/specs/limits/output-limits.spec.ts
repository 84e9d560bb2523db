import assert from 'node:assert/strict';
import { agentsPerTest } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { assertServing, executeUntil, uniqueName } from '../http/http-support.js';
import { chattyPackage, startChatty } from './limits-support.js';
import type { Harness } from '../engine/harness.js';

/** `{"blob":"…"}` is 11 characters around the blob. */
const JSON_AROUND_BLOB = '{"blob":""}'.length;

describe('limits: step outputs size (engine and store)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('fails a step whose outputs pass MAX_OUTPUT_BYTES with payload_too_large, once, without storing them', async () => {
    h = startChatty({ maxOutputBytes: 4096 });
    const id = h.submit({
      wpk: chattyPackage([
        { name: 'big', action: 'talk', with: { outputChars: 5000 }, retries: { count: 2 } },
        { name: 'after', action: 'talk' },
      ]),
    });
    const record = await h.finished(id);
    assert.equal(record.status, 'failed');
    const [big, after] = record.steps;
    const error = big.error as { type: string; message: string; details: unknown };
    assert.equal(big.status, 'failed');
    assert.equal(big.attempts, 1, 'not retried: the same call would answer the same');
    assert.equal(big.outputs, null);
    assert.equal(error.type, 'payload_too_large');
    assert.match(
      error.message,
      new RegExp(
        `outputs of step 'big' are ${5000 + JSON_AROUND_BLOB} bytes as JSON; the limit is 4096 bytes \\(MAX_OUTPUT_BYTES\\)`,
      ),
    );
    assert.deepEqual(error.details, {
      size_bytes: 5000 + JSON_AROUND_BLOB,
      limit_bytes: 4096,
      setting: 'MAX_OUTPUT_BYTES',
    });
    assert.equal((record.error as { type: string }).type, 'payload_too_large');
    assert.equal(after.status, 'not_run');
    const stored = h.store.steps.of(id).find((s) => s.name === 'big')!;
    assert.equal(stored.outputs, null);
  });

  it('keeps outputs exactly at the limit', async () => {
    h = startChatty({ maxOutputBytes: 4096 });
    const record = await h.finished(
      h.submit({
        wpk: chattyPackage([{ name: 'edge', action: 'talk', with: { outputChars: 4096 - JSON_AROUND_BLOB } }]),
      }),
    );
    assert.equal(record.status, 'completed');
    assert.equal(JSON.stringify(record.steps[0].outputs).length, 4096);
  });

  it('measures UTF-8 bytes, not characters', async () => {
    h = startChatty({ maxOutputBytes: 4096 });
    // 2100 characters of two bytes each: 4211 bytes, though only 2111 characters.
    const record = await h.finished(
      h.submit({
        wpk: chattyPackage([{ name: 'wide', action: 'talk', with: { outputChars: 2100, outputChar: 'é' } }]),
      }),
    );
    const error = record.steps[0].error as unknown as { type: string; details: { size_bytes: number } };
    assert.equal(error.type, 'payload_too_large');
    assert.equal(error.details.size_bytes, 4200 + JSON_AROUND_BLOB);
  });
});

describe('limits: step outputs size through the agent', () => {
  const startAgentForTest = agentsPerTest();

  it('fails a shell step printing more than MAX_OUTPUT_BYTES with payload_too_large and serves on', async () => {
    const agent = await startAgentForTest({ env: { MAX_OUTPUT_BYTES: '1024' } });
    const record = await executeUntil(agent, {
      wpk_content: pkg(uniqueName('loud'), [shellStep('print', ['printf', '%02000d', '7'])]),
    });
    assert.equal(record.status, 'failed');
    assert.equal(record.error.type, 'payload_too_large');
    assert.match(record.error.message, /the limit is 1024 bytes \(MAX_OUTPUT_BYTES\)/);
    assert.equal(record.steps[0].outputs, null);
    await assertServing(agent);
  });
});

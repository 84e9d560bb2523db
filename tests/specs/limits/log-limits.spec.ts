import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AGENT_STREAM, ExecutionLog } from '../../../services/runtime-agent/src/engine/execution-log.js';
import { Redactor } from '../../../services/runtime-agent/src/engine/redact.js';
import { Store, STORE_FILE } from '../../../services/runtime-agent/src/store/store.js';
import { agentsPerTest } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { assertServing, call, executeUntil, uniqueName } from '../http/http-support.js';
import { chattyPackage, logRows, startChatty } from './limits-support.js';
import type { Harness } from '../engine/harness.js';

const isMarker = (l: { stream: string | null; message: string }) =>
  l.stream === AGENT_STREAM && l.message.startsWith('log truncated');

describe('limits: log lines and bytes per execution (engine and store)', () => {
  let h: Harness | undefined;
  let restarted: Harness | undefined;
  afterEach(async () => {
    await restarted?.close();
    await h?.close();
    restarted = h = undefined;
  });

  it('keeps the first lines, writes one marker past the line limit, and drops and counts every later line', async () => {
    h = startChatty({ logLimits: { maxLines: 100, maxBytes: Infinity } });
    const id = h.submit({ wpk: chattyPackage([{ name: 'talk', action: 'talk', with: { lines: 300 } }]) });
    const record = await h.finished(id);
    assert.equal(record.status, 'completed', 'a truncated log does not fail the execution');
    const logs = logRows(h, id);
    assert.equal(logs.length, 101);
    assert.deepEqual(
      logs.map((l) => l.seq),
      Array.from({ length: 101 }, (_, i) => i + 1),
    );
    assert.equal(logs.filter(isMarker).length, 1);
    const marker = logs[100];
    assert.ok(isMarker(marker), marker.message);
    assert.equal(marker.level, 'warn');
    assert.match(marker.message, /limit of 100 lines \(MAX_LOG_LINES_PER_EXECUTION\); further lines are dropped/);
    // "execution started", 300 lines, "step succeeded", "execution completed": 303 offered, 100 kept.
    assert.equal(record.logs_truncated, true);
    assert.equal(record.dropped_log_lines, 303 - 100);
  });

  it('counts bytes of UTF-8 message text: the line that would pass the byte limit is the one replaced by the marker', async () => {
    h = startChatty({ logLimits: { maxLines: Infinity, maxBytes: 2000 } });
    // 600 characters, 1200 bytes: counted as characters, a second line would still fit.
    const id = h.submit({
      wpk: chattyPackage([{ name: 'talk', action: 'talk', with: { lines: 5, text: 'é'.repeat(600) } }]),
    });
    const record = await h.finished(id);
    const logs = logRows(h, id);
    const kept = logs.filter((l) => !isMarker(l));
    assert.equal(kept.filter((l) => l.step === 'talk').length, 1);
    assert.ok(kept.reduce((n, l) => n + Buffer.byteLength(l.message), 0) <= 2000);
    assert.match(logs[logs.length - 1].message, /limit of 2000 bytes \(MAX_LOG_BYTES_PER_EXECUTION\)/);
    assert.equal(record.logs_truncated, true);
    assert.equal(record.dropped_log_lines, 4 + 2, 'four more talk lines, step succeeded, execution completed');
  });

  it('shows an untruncated log as logs_truncated: false, dropped_log_lines: 0', async () => {
    h = startChatty({ logLimits: { maxLines: 100, maxBytes: 64 * 1024 } });
    const record = await h.finished(
      h.submit({ wpk: chattyPackage([{ name: 'talk', action: 'talk', with: { lines: 10 } }]) }),
    );
    assert.equal(record.logs_truncated, false);
    assert.equal(record.dropped_log_lines, 0);
  });

  it('goes on from the stored tally after a restart: no second marker, the drop count continues', async () => {
    const limits = { maxLines: 5, maxBytes: Infinity };
    h = startChatty({ logLimits: limits });
    const id = h.submit({ wpk: chattyPackage([{ name: 'talk', action: 'talk', with: { lines: 20 } }]) });
    const dropped = (await h.finished(id)).dropped_log_lines;
    await h.close(false);
    const store = new Store(h.dir, { exclusive: false });
    try {
      const tally = store.logs.tally(id);
      assert.deepEqual({ lines: tally.lines, dropped: tally.dropped }, { lines: 6, dropped });
      assert.equal(
        tally.bytes,
        store.logs.page(id, { since: 0, limit: 10 }).reduce((n, l) => n + Buffer.byteLength(l.message), 0),
      );
      new ExecutionLog(store, new EventEmitter(), id, new Redactor([]), limits, tally).write(
        'info',
        'after the restart',
      );
      const logs = store.logs.page(id, { since: 0, limit: 100 });
      assert.equal(logs.length, 6, 'five lines and the marker');
      assert.equal(logs.filter(isMarker).length, 1);
      assert.equal(store.executions.get(id)!.droppedLogLines, dropped + 1);
    } finally {
      store.close();
    }
  });

  it('opens a store file written before dropped_log_lines existed, reading 0 for its executions', async () => {
    h = startChatty({});
    const id = h.submit({ wpk: chattyPackage([{ name: 'talk', action: 'talk', with: { lines: 1 } }]) });
    await h.finished(id);
    await h.close(false);
    const raw = new Database(join(h.dir, STORE_FILE));
    raw.exec('ALTER TABLE executions DROP COLUMN dropped_log_lines');
    raw.close();
    const store = new Store(h.dir, { exclusive: false });
    try {
      assert.equal(store.executions.get(id)!.droppedLogLines, 0);
      assert.equal(store.executions.get(id)!.status, 'completed');
    } finally {
      store.close();
    }
  });

  it('keeps the limit across a restart: a recovered rollback logs on from where the execution stopped', async () => {
    const limits = { logLimits: { maxLines: 100, maxBytes: Infinity } };
    h = startChatty(limits);
    const wpk = chattyPackage(
      [
        { name: 'change', action: 'change', with: { lines: 60, undoLines: 80 } },
        { name: 'hang', action: 'hang' },
      ],
      { rollback: { enabled: true } },
    );
    const id = h.submit({ wpk });
    await waitFor(
      () => h!.store.steps.of(id).find((s) => s.name === 'hang')?.status === 'running',
      'the second step to run',
    );
    await h.close(false); // SIGTERM: the running step is interrupted and the rollback waits for the next start
    restarted = startChatty(limits, h.dir);
    h = undefined;
    const store = restarted.store;
    const beforeRestart = store.logs.tally(id);
    assert.ok(
      beforeRestart.lines >= 60 && beforeRestart.lines < 90,
      `logged before the restart: ${beforeRestart.lines}`,
    );
    assert.equal(beforeRestart.dropped, 0);
    assert.equal((await restarted.engine.recover()).rollbacks, 1);
    const record = await restarted.finished(id);
    assert.equal(record.status, 'rolled_back');
    const logs = logRows(restarted, id);
    // Counted from zero after the restart, the rollback's 80 lines would all have fit.
    assert.equal(logs.length, 101);
    assert.equal(logs.filter(isMarker).length, 1);
    assert.ok(isMarker(logs[100]));
    assert.ok(
      logs.some((l) => l.message.startsWith('undo')),
      'the rollback logged until the limit',
    );
    assert.equal(record.logs_truncated, true);
    assert.ok(record.dropped_log_lines > 0);
  });
});

describe('limits: log limits through the agent', () => {
  const startAgentForTest = agentsPerTest();

  it('ends a long shell log with one marker at MAX_LOG_LINES_PER_EXECUTION and shows the drop in the record', async () => {
    const agent = await startAgentForTest({ env: { MAX_LOG_LINES_PER_EXECUTION: '100' } });
    const record = await executeUntil(agent, {
      wpk_content: pkg(uniqueName('chatty'), [shellStep('count', ['seq', '1', '500'])]),
    });
    assert.equal(record.status, 'completed');
    assert.equal(record.logs_truncated, true);
    assert.ok(record.dropped_log_lines >= 400, `dropped_log_lines: ${record.dropped_log_lines}`);
    const logs = (await call(agent, 'GET', `/logs/${record.execution_id}?limit=1000`)).body.logs;
    assert.equal(logs.length, 101);
    assert.ok(isMarker(logs[100]), JSON.stringify(logs[100]));
    assert.match(logs[100].message, /MAX_LOG_LINES_PER_EXECUTION/);
    await assertServing(agent);
  });

  it('ends a log at MAX_LOG_BYTES_PER_EXECUTION with a marker naming it', async () => {
    const agent = await startAgentForTest({ env: { MAX_LOG_BYTES_PER_EXECUTION: String(64 * 1024) } });
    // 100 lines of 1000 digits each: about 100 KB.
    const numbers = Array.from({ length: 100 }, (_, i) => String(i));
    const record = await executeUntil(agent, {
      wpk_content: pkg(uniqueName('wide'), [shellStep('print', ['printf', '%01000d\\n', ...numbers])]),
    });
    assert.equal(record.logs_truncated, true);
    const logs = (await call(agent, 'GET', `/logs/${record.execution_id}?limit=1000`)).body.logs as Array<{
      stream: string | null;
      message: string;
    }>;
    const marker = logs[logs.length - 1];
    assert.ok(isMarker(marker));
    assert.match(marker.message, /65536 bytes \(MAX_LOG_BYTES_PER_EXECUTION\)/);
    assert.ok(logs.filter((l) => !isMarker(l)).reduce((n, l) => n + Buffer.byteLength(l.message), 0) <= 64 * 1024);
    await assertServing(agent);
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { pendingStep } from '../../../services/runtime-agent/src/store/steps.js';
import { Store } from '../../../services/runtime-agent/src/store/store.js';
import type { JournalEvent } from '../../../services/runtime-agent/src/store/types.js';
import { logLine, newExecution } from '../support/store-rows.js';
import { waitFor } from '../support/wait.js';

/**
 * While a step waits for its action's I/O, the writes queued so far run in a transaction left open, and commit
 * when they would have committed anyway. A store that holds its file exclusively (as the agent's does) cannot be
 * read from a second connection, so "not committed yet" shows as the open transaction and as journal
 * subscribers that have heard nothing yet (they hear an event only once it is committed).
 */
describe('store: writes run while a step waits', () => {
  let dir: string;
  let store: Store;
  let heard: JournalEvent[];
  const db = () => (store as unknown as { db: Database.Database }).db;

  /** An execution with one running step, and the writes a step's outcome queues (none of them critical). */
  async function stepFinishedPending(id: string): Promise<void> {
    await store.executions.insert(newExecution(id), [
      pendingStep(id, 'main', 0, { name: 's', adapter: 'a', action: 'x' }),
    ]);
    store.steps.patch(id, 'main', 0, { status: 'succeeded', outputs: { n: 1 } }, { deferred: true });
    store.journal.append(
      { type: 'step.finished', execution_id: id, workflow_id: 'w-1.0.0', step: 's', data: { status: 'succeeded' } },
      { deferred: true },
    );
    store.logs.append(id, logLine(1, 'step succeeded', { step: 's' }));
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-ahead-'));
    store = new Store(dir);
    heard = [];
    store.journal.subscribe((e) => heard.push(e));
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the queued writes after this turn without committing them, and commits them within the cosmetic delay', async () => {
    await stepFinishedPending('a');
    heard = [];
    store.writeWhileWaiting();
    assert.equal(db().inTransaction, false, 'nothing runs in the turn that asked');
    await nextTurn();
    assert.equal(db().inTransaction, true, 'the writes ran in a transaction left open');
    const row = db().prepare("SELECT status FROM steps WHERE execution_id = 'a'").get() as { status: string };
    assert.equal(row.status, 'succeeded', 'the step row is written');
    assert.equal(heard.length, 0, 'the event is not committed yet, so nobody has heard it');
    await waitFor(() => !db().inTransaction, 'the open transaction to commit', 2000);
    assert.deepEqual(
      heard.map((e) => e.type),
      ['step.finished'],
      'committed once, then heard once',
    );
    store.close();
    store = new Store(dir);
    assert.equal(store.steps.of('a')[0].status, 'succeeded');
    assert.deepEqual(
      store.logs.page('a', { since: 0, limit: 10 }).map((l) => l.message),
      ['step succeeded'],
    );
    assert.equal(store.journal.page({ since: 0, limit: 10 }).filter((e) => e.type === 'step.finished').length, 1);
  });

  it('commits what ran ahead before a read and before a side effect', async () => {
    await stepFinishedPending('r');
    store.writeWhileWaiting();
    await nextTurn();
    assert.equal(db().inTransaction, true);
    assert.equal(store.steps.of('r')[0].status, 'succeeded');
    assert.equal(db().inTransaction, false, 'a read commits first');

    store.steps.patch('r', 'main', 0, { attempts: 2 }, { deferred: true });
    store.writeWhileWaiting();
    await nextTurn();
    assert.equal(db().inTransaction, true);
    store.flushBeforeSideEffect();
    assert.equal(db().inTransaction, false, 'nothing stays uncommitted when an action with side effects starts');
  });

  it('runs nothing ahead of a write someone waits for', async () => {
    await stepFinishedPending('w');
    const inserted = store.executions.insert(newExecution('w2'), []);
    store.writeWhileWaiting();
    await nextTurn();
    await inserted;
    assert.equal(db().inTransaction, false, 'the waited-for insert committed with everything queued before it');
    assert.equal(store.steps.of('w')[0].status, 'succeeded');
  });

  it('queues the writes again when their commit fails (a full disk, say), and publishes each event once', async () => {
    await stepFinishedPending('f');
    heard = [];
    store.writeWhileWaiting();
    await nextTurn();
    const queue = (store as unknown as { queue: { end: { run(): void } } }).queue;
    const real = queue.end;
    queue.end = {
      run() {
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      },
    };
    assert.throws(() => store.steps.of('f'), /disk is full/);
    queue.end = real;
    assert.equal(db().inTransaction, false, 'the failed transaction was rolled back');
    assert.equal(heard.length, 0, 'nothing was published from the failed transaction');
    assert.equal(store.steps.of('f')[0].status, 'succeeded', 'the writes were kept and landed with the next commit');
    assert.deepEqual(
      heard.map((e) => e.type),
      ['step.finished'],
    );
    assert.equal(store.journal.page({ since: 0, limit: 10 }).filter((e) => e.type === 'step.finished').length, 1);
  });

  it('holds no transaction open on a file it shares (exclusive: false)', async () => {
    store.close();
    store = new Store(dir, { exclusive: false });
    await stepFinishedPending('s');
    store.writeWhileWaiting();
    await nextTurn();
    assert.equal(db().inTransaction, false);
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pendingStep } from '../../../services/runtime-agent/src/store/steps.js';
import { Store, STORE_FILE } from '../../../services/runtime-agent/src/store/store.js';
import type { Step } from '../../../services/runtime-agent/src/store/types.js';
import { logLine, newExecution } from '../support/store-rows.js';
import { waitFor } from '../support/wait.js';

function stepRow(id: string): Step {
  return pendingStep(id, 'main', 0, { name: 's', adapter: 'a', action: 'x' });
}

describe('store', () => {
  let dir: string;
  let store: Store;
  let other: Database.Database;
  /** What another process would see in the file: only committed data. */
  const committedStatus = (id: string) =>
    (other.prepare('SELECT status FROM executions WHERE id = ?').get(id) as { status: string } | undefined)?.status;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-store-'));
    store = new Store(dir, { exclusive: false });
    other = new Database(join(dir, STORE_FILE), { readonly: true });
  });
  afterEach(() => {
    other.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits inserts of one turn together and resolves each only once it is committed', async () => {
    const a = store.executions.insert(newExecution('a'), [stepRow('a')]);
    const b = store.executions.insert(newExecution('b'), [stepRow('b')]);
    assert.equal(committedStatus('a'), undefined, 'not committed yet');
    await Promise.all([a, b]);
    assert.equal(committedStatus('a'), 'pending');
    assert.equal(committedStatus('b'), 'pending');
  });

  it('lets its own reads see deferred writes at once', async () => {
    await store.executions.insert(newExecution('r'), [stepRow('r')]);
    store.executions.patch('r', { status: 'running' }, { deferred: true });
    assert.equal(committedStatus('r'), 'pending');
    assert.equal(store.executions.get('r')!.status, 'running');
    assert.equal(committedStatus('r'), 'running', 'a read flushes first');
  });

  it('commits pending critical writes before a side effect, and batches log lines apart', async () => {
    await store.executions.insert(newExecution('c'), [stepRow('c')]);
    store.logs.append('c', logLine(1, 'hello'));
    store.flushBeforeSideEffect();
    assert.equal(
      (other.prepare('SELECT COUNT(*) AS n FROM logs').get() as { n: number }).n,
      0,
      'a log line alone does not force a commit',
    );
    store.executions.patch('c', { status: 'running' }, { deferred: true, critical: true });
    store.flushBeforeSideEffect();
    assert.equal(committedStatus('c'), 'running');
    assert.equal(
      (other.prepare('SELECT COUNT(*) AS n FROM logs').get() as { n: number }).n,
      0,
      'log lines are batched apart from state',
    );
    assert.equal(store.logs.page('c', { since: 0, limit: 10 }).length, 1, 'and a read sees them at once');
  });

  it('stores a burst of log lines whole and in order (batched many to a statement)', async () => {
    await store.executions.insert(newExecution('b'), [stepRow('b')]);
    for (let seq = 1; seq <= 70; seq++)
      store.logs.append('b', logLine(seq, `line ${seq}`, { step: 's', stream: 'stdout' }));
    const logs = store.logs.page('b', { since: 0, limit: 100 });
    assert.deepEqual(
      logs.map((l) => l.message),
      Array.from({ length: 70 }, (_, i) => `line ${i + 1}`),
    );
    assert.equal(logs[69].stream, 'stdout');
  });

  it('stores the pending steps of a large package whole and in order (inserted many to a statement)', async () => {
    // 70 = two full groups of 32 and a remainder of 6, each a different statement.
    const steps = Array.from({ length: 70 }, (_, idx) => ({
      ...stepRow('big'),
      idx,
      name: `s${idx}`,
      input: idx === 69 ? { last: true } : null,
    }));
    await store.executions.insert(newExecution('big'), steps);
    const stored = other
      .prepare("SELECT idx, name, status, input FROM steps WHERE execution_id = 'big' ORDER BY idx")
      .all() as Array<{ name: string; status: string; input: string | null }>;
    assert.deepEqual(
      stored.map((r) => r.name),
      steps.map((r) => r.name),
      'committed, every one, in order',
    );
    assert.ok(stored.every((r) => r.status === 'pending'));
    assert.equal(stored[69].input, '{"last":true}', 'columns land in their own places in the remainder too');
  });

  it('keeps the deferred patches of an execution, its main steps and its rollback steps apart, and merges those of one row', async () => {
    await store.executions.insert(newExecution('p'), [
      stepRow('p'),
      { ...stepRow('p'), phase: 'rollback', forStep: 's' },
      { ...stepRow('p'), idx: 1, name: 't' },
    ]);
    store.executions.patch('p', { status: 'running' }, { deferred: true });
    store.steps.patch('p', 'main', 0, { status: 'running', attempts: 1 }, { deferred: true });
    store.steps.patch('p', 'rollback', 0, { status: 'skipped' }, { deferred: true });
    store.steps.patch('p', 'main', 1, { status: 'failed' }, { deferred: true });
    store.steps.patch('p', 'main', 0, { status: 'succeeded', outputs: {}, attempts: undefined }, { deferred: true });
    const steps = store.steps.of('p');
    const row = (phase: string, idx: number) => steps.find((s) => s.phase === phase && s.idx === idx)!;
    assert.equal(store.executions.get('p')!.status, 'running');
    assert.deepEqual(
      [row('main', 0).status, row('main', 0).attempts, row('main', 0).outputs],
      ['succeeded', 1, {}],
      'a later patch of the same row merges; undefined leaves a column alone',
    );
    assert.equal(row('rollback', 0).status, 'skipped');
    assert.equal(row('main', 1).status, 'failed');
  });

  it('commits log lines on its own within a short while when nothing else is written', async () => {
    await store.executions.insert(newExecution('l'), [stepRow('l')]);
    store.logs.append('l', logLine(1, 'later'));
    await waitFor(
      () => (other.prepare('SELECT COUNT(*) AS n FROM logs').get() as { n: number }).n === 1,
      'the log line to be committed',
      2000,
    );
  });

  it('keeps state writes queued when a commit fails (a full disk, say) and commits them with the next one', async () => {
    await store.executions.insert(newExecution('f'), [stepRow('f')]);
    store.executions.patch('f', { status: 'running' }, { deferred: true, critical: true });
    const db = (store as unknown as { db: Database.Database }).db;
    const real = db.transaction.bind(db);
    db.transaction = (() => () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    }) as never;
    assert.throws(() => store.executions.get('f'), /disk is full/);
    db.transaction = real;
    assert.equal(store.executions.get('f')!.status, 'running', 'the write was kept and landed with the next commit');
    assert.equal(committedStatus('f'), 'running');
  });

  it('rejects the insert that failed without failing the others in its commit', async () => {
    await store.executions.insert(newExecution('dup'), [stepRow('dup')], { key: 'k', bodyHash: 'h' });
    // The execution and step rows go in, then the idempotency key collides: none of it may remain.
    const half = store.executions.insert(newExecution('half'), [stepRow('half')], { key: 'k', bodyHash: 'h2' });
    const again = store.executions.insert(newExecution('dup'), [], undefined);
    const fine = store.executions.insert(newExecution('fine'), [stepRow('fine')]);
    await assert.rejects(again, /UNIQUE/);
    await assert.rejects(half, /UNIQUE/);
    await fine;
    assert.equal(committedStatus('half'), undefined, 'a failed insert leaves nothing behind');
    assert.equal(store.steps.of('half').length, 0);
    assert.equal(committedStatus('fine'), 'pending');
  });
});

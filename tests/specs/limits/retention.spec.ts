import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { createAgent, type Agent } from '../../../services/runtime-agent/src/app.js';
import { loadConfig } from '../../../services/runtime-agent/src/config.js';
import {
  Retention,
  type PruneSummary,
  type RetentionOptions,
} from '../../../services/runtime-agent/src/engine/retention.js';
import { Metrics } from '../../../services/runtime-agent/src/metrics.js';
import { pendingStep } from '../../../services/runtime-agent/src/store/steps.js';
import { Store, STORE_FILE } from '../../../services/runtime-agent/src/store/store.js';
import type { ExecutionStatus, RollbackStatus, Step } from '../../../services/runtime-agent/src/store/types.js';
import { agentsPerTest, freshDataDir } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { newExecution } from '../support/store-rows.js';
import { waitFor } from '../support/wait.js';
import { call, executeUntil, parseMetrics, sampleValue, uniqueName } from '../http/http-support.js';
import { counterValue } from '../engine/harness.js';

const DAY_MS = 24 * 60 * 60 * 1000;

interface Seed {
  id: string;
  status?: ExecutionStatus;
  /** When it ended (or was created, when it has not ended), in days before the real now. */
  daysAgo?: number;
  rollbackStatus?: RollbackStatus;
  /** Package text (default: one of its own): executions with the same text share one package_contents row. */
  pkg?: string;
  logLines?: number;
  idempotencyKey?: string;
}

/** Stores an execution as the engine would have left it, with one step and some log lines. */
function seed(store: Store, s: Seed): Promise<void> {
  const at = new Date(Date.now() - (s.daysAgo ?? 0) * DAY_MS).toISOString();
  const status = s.status ?? 'completed';
  const ended = !['pending', 'running', 'rolling_back'].includes(status);
  const step: Step = {
    ...pendingStep(s.id, 'main', 0, { name: 'a', adapter: 'shell', action: 'run' }),
    status: 'succeeded',
    attempts: 1,
    input: {},
    outputs: {},
    outputsSource: 'run',
    startedAt: at,
    finishedAt: at,
  };
  const stored = store.executions.insert(
    newExecution(s.id, {
      packageJson: s.pkg ?? JSON.stringify(pkg(`seeded-${s.id}`, [shellStep('a', ['true'])])),
      createdAt: at,
    }),
    [step],
    s.idempotencyKey ? { key: s.idempotencyKey, bodyHash: 'h' } : undefined,
  );
  // Committed with the insert: the same queue, the same turn.
  store.executions.patch(
    s.id,
    { status, rollbackStatus: s.rollbackStatus ?? null, startedAt: at, finishedAt: ended ? at : null },
    { deferred: true },
  );
  for (let seq = 1; seq <= (s.logLines ?? 2); seq++)
    store.logs.append(s.id, { seq, ts: at, level: 'info', step: null, stream: null, message: `line ${seq}` });
  return stored;
}

const options = (o: Partial<RetentionOptions>): RetentionOptions => ({
  maxAgeDays: 0,
  maxExecutions: 0,
  intervalSeconds: 300,
  ...o,
});

describe('limits: retention of ended executions (store and pruning)', () => {
  let dir: string;
  let store: Store;
  let metrics: Metrics;
  const live = new Set<string>();
  const retention = (o: Partial<RetentionOptions>) =>
    new Retention({ store, isLive: (id) => live.has(id), metrics }, options(o));
  /** Package texts as the file holds them. */
  const packageTexts = () => {
    const db = new Database(join(dir, STORE_FILE), { readonly: true });
    try {
      return (db.prepare('SELECT content FROM package_contents').all() as Array<{ content: string }>)
        .map((r) => r.content)
        .sort();
    } finally {
      db.close();
    }
  };
  const exists = (id: string) => store.executions.get(id) !== undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'retention-spec-'));
    store = new Store(dir, { exclusive: false });
    metrics = new Metrics();
    live.clear();
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prunes executions that ended before the age limit with their steps, logs, idempotency keys and unused package texts', async () => {
    await Promise.all([
      seed(store, { id: 'old-completed', daysAgo: 40, idempotencyKey: 'k-old', pkg: '{"shared":1}' }),
      seed(store, { id: 'old-failed', status: 'failed', daysAgo: 31 }),
      seed(store, { id: 'old-rolled-back', status: 'rolled_back', daysAgo: 60 }),
      seed(store, { id: 'recent', daysAgo: 29, pkg: '{"shared":1}', idempotencyKey: 'k-recent' }),
    ]);
    const summary = await retention({ maxAgeDays: 30 }).runOnce();
    assert.deepEqual(
      { pruned: summary.pruned, by_age: summary.by_age, by_count: summary.by_count },
      { pruned: 3, by_age: 3, by_count: 0 },
    );
    for (const id of ['old-completed', 'old-failed', 'old-rolled-back']) {
      assert.equal(exists(id), false, id);
      assert.deepEqual(store.steps.of(id), [], `${id} steps`);
      assert.deepEqual(store.logs.page(id, { since: 0, limit: 10 }), [], `${id} logs`);
    }
    assert.equal(store.executions.findIdempotency('k-old'), undefined);
    assert.equal(store.executions.findIdempotency('k-recent')?.executionId, 'recent');
    assert.equal(store.logs.page('recent', { since: 0, limit: 10 }).length, 2);
    assert.deepEqual(packageTexts(), ['{"shared":1}'], 'the text the recent one shares stays, the unused ones go');
    assert.equal(await counterValue(metrics, 'workflow_pruned_executions_total', { reason: 'age' }), 3);
  });

  it('never prunes pending, running or rolling-back executions, nor a failed one whose rollback waits, however old', async () => {
    await Promise.all([
      seed(store, { id: 'pending', status: 'pending', daysAgo: 400 }),
      seed(store, { id: 'running', status: 'running', daysAgo: 400 }),
      seed(store, { id: 'rolling-back', status: 'rolling_back', daysAgo: 400, rollbackStatus: 'running' }),
      seed(store, { id: 'rollback-waits', status: 'failed', daysAgo: 400, rollbackStatus: 'pending' }),
      seed(store, { id: 'gone', daysAgo: 400 }),
      seed(store, { id: 'newest', daysAgo: 0 }),
    ]);
    const summary = await retention({ maxAgeDays: 1, maxExecutions: 1 }).runOnce();
    assert.equal(summary.pruned, 1);
    assert.equal(exists('gone'), false);
    for (const id of ['pending', 'running', 'rolling-back', 'rollback-waits', 'newest']) assert.ok(exists(id), id);
  });

  it('never prunes an execution the engine is still working on', async () => {
    await Promise.all([
      seed(store, { id: 'ended-but-live', daysAgo: 90 }),
      seed(store, { id: 'ended', daysAgo: 90 }),
      seed(store, { id: 'newest' }),
    ]);
    live.add('ended-but-live');
    await retention({ maxAgeDays: 30 }).runOnce();
    assert.ok(exists('ended-but-live'));
    assert.equal(exists('ended'), false);
  });

  it('keeps the newest RETENTION_MAX_EXECUTIONS ended executions and prunes the older ones', async () => {
    for (let i = 0; i < 10; i++) await seed(store, { id: `e${i}` });
    await seed(store, { id: 'running', status: 'running' });
    const summary = await retention({ maxExecutions: 3 }).runOnce();
    assert.deepEqual({ pruned: summary.pruned, by_count: summary.by_count }, { pruned: 7, by_count: 7 });
    assert.deepEqual(
      store.executions.list({ limit: 100 }).map((r) => r.id),
      ['running', 'e9', 'e8', 'e7'],
    );
    assert.equal(await counterValue(metrics, 'workflow_pruned_executions_total', { reason: 'count' }), 7);
  });

  it('reads the age against the injected clock', async () => {
    await Promise.all([seed(store, { id: 'today' }), seed(store, { id: 'newest' })]);
    assert.equal((await retention({ maxAgeDays: 30, now: () => Date.now() + 29 * DAY_MS }).runOnce()).pruned, 0);
    assert.equal((await retention({ maxAgeDays: 30, now: () => Date.now() + 31 * DAY_MS }).runOnce()).pruned, 1);
    assert.equal(exists('today'), false);
  });

  it('prunes audit lines older than the age limit too, keeping recent ones and the newest row', async () => {
    const line = (ts: string, path: string) => ({
      ts,
      actor: 'ci',
      role: 'executor',
      method: 'POST',
      path,
      status: 202,
      execution_id: null,
      remote: null,
      detail: null,
    });
    store.audit.append(line(new Date(Date.now() - 40 * DAY_MS).toISOString(), '/old-1'));
    store.audit.append(line(new Date(Date.now() - 35 * DAY_MS).toISOString(), '/old-2'));
    store.audit.append(line(new Date(Date.now() - 1 * DAY_MS).toISOString(), '/recent'));
    const summary = await retention({ maxAgeDays: 30 }).runOnce();
    assert.equal(summary.audit_entries, 2);
    assert.deepEqual(
      store.audit.list({ since: 0, limit: 10 }).map((e) => e.path),
      ['/recent'],
    );
  });

  it('never prunes the newest row, so a seq (a list cursor) is never given out twice', async () => {
    await Promise.all([seed(store, { id: 'a', daysAgo: 90 }), seed(store, { id: 'b', daysAgo: 90 })]);
    const newestSeq = store.executions.get('b')!.seq;
    assert.equal((await retention({ maxAgeDays: 30 }).runOnce()).pruned, 1);
    assert.ok(exists('b'));
    await seed(store, { id: 'c' });
    assert.ok(store.executions.get('c')!.seq > newestSeq);
  });

  it('stores a package again after its text was pruned (the store forgets it had it)', async () => {
    const text = '{"same":"package"}';
    await seed(store, { id: 'first', daysAgo: 90, pkg: text });
    await seed(store, { id: 'newest', pkg: '{"other":1}' });
    await retention({ maxAgeDays: 30 }).runOnce();
    assert.ok(!packageTexts().includes(text));
    await seed(store, { id: 'again', pkg: text });
    assert.equal(JSON.stringify(store.executions.packageOf('again')), text);
  });

  it('removes a log too long for one transaction a chunk at a time', async () => {
    await seed(store, { id: 'long', daysAgo: 90, logLines: 2500 });
    await seed(store, { id: 'newest' });
    const summary = await retention({ maxAgeDays: 30, batchLogLines: 1000 }).runOnce();
    assert.equal(summary.pruned, 1);
    assert.ok(summary.batches >= 3, `batches: ${summary.batches}`);
    assert.deepEqual(store.logs.page('long', { since: 0, limit: 10 }), []);
  });

  it('stops after the transaction in progress when stopped, and runs no more', async () => {
    for (let i = 0; i < 50; i++) await seed(store, { id: `old${i}`, daysAgo: 90 });
    await seed(store, { id: 'newest' });
    const r = retention({ maxAgeDays: 30, batchExecutions: 5 });
    r.events.once('batch', () => void r.stop());
    const summary = await r.runOnce();
    assert.equal(summary.stopped, true);
    assert.equal(summary.pruned, 5);
    assert.equal(store.executions.list({ limit: 100 }).length, 46);
  });
});

describe('limits: retention yields to requests', () => {
  let dir: string;
  let agent: Agent;
  let server: Server;

  before(async () => {
    dir = freshDataDir();
    agent = createAgent(loadConfig({ DATA_DIR: dir, PORT: '0' }, []), pino({ level: 'silent' }));
    const seeds: Array<Promise<void>> = [];
    for (let i = 0; i < 6000; i++) seeds.push(seed(agent.store, { id: `old-${i}`, daysAgo: 90 }));
    seeds.push(seed(agent.store, { id: 'keep' }));
    await Promise.all(seeds);
    server = agent.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  after(async () => {
    server.close();
    await agent.shutdown();
    agent.store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a request sent during a large prune before the prune finishes', async () => {
    const retention = new Retention(
      { store: agent.store, isLive: (id) => agent.engine.isLive(id), metrics: new Metrics() },
      options({ maxAgeDays: 30, batchExecutions: 20 }),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/execute/keep`;
    let progress: PruneSummary | undefined;
    let finished = false;
    let answered: { status: number; atBatch: number; pruneFinished: boolean } | undefined;
    retention.events.on('batch', (s: PruneSummary) => (progress = s));
    retention.events.once('batch', () => {
      void fetch(url).then(async (r) => {
        await r.arrayBuffer();
        answered = { status: r.status, atBatch: progress!.batches, pruneFinished: finished };
      });
    });
    const summary = await retention.runOnce();
    finished = true;
    const reply = await waitFor(() => answered, 'the answer');
    assert.equal(summary.pruned, 6000);
    assert.equal(reply.status, 200);
    assert.equal(reply.pruneFinished, false, 'answered while the prune was still running');
    assert.ok(reply.atBatch < summary.batches, `answered after batch ${reply.atBatch} of ${summary.batches}`);
  });
});

describe('limits: retention through the agent', () => {
  const startAgentForTest = agentsPerTest();

  it('prunes executions older than RETENTION_MAX_AGE_DAYS in the background: GET /execute/{id} then answers 404', async () => {
    const dataDir = freshDataDir();
    const store = new Store(dataDir);
    await seed(store, { id: 'old-1', daysAgo: 45 });
    await seed(store, { id: 'old-2', status: 'failed', daysAgo: 31 });
    await seed(store, { id: 'old-running', status: 'running', daysAgo: 45 });
    await seed(store, { id: 'recent', daysAgo: 1 });
    store.close();
    // The old running one is failed as interrupted by recovery at start; it then ended now, not 45 days ago.
    const agent = await startAgentForTest({ dataDir, env: { RETENTION_INTERVAL_SECONDS: '1' } });
    for (const id of ['old-1', 'old-2'])
      await waitFor(async () => (await call(agent, 'GET', `/execute/${id}`)).status === 404, `${id} to be pruned`);
    const gone = await call(agent, 'GET', '/execute/old-1');
    assert.equal(gone.body.error_type, 'not_found');
    assert.equal((await call(agent, 'GET', '/execute/recent')).status, 200);
    assert.equal((await call(agent, 'GET', '/execute/old-running')).status, 200);
    assert.equal((await call(agent, 'GET', '/logs/old-1')).status, 404);
    const samples = parseMetrics((await call(agent, 'GET', '/metrics')).text);
    assert.equal(sampleValue(samples, 'workflow_pruned_executions_total', { reason: 'age' }), 2);
    const line = agent.logLines().find((l) => String(l.msg).startsWith('retention: pruned'));
    assert.ok(line, 'a summary line in the agent log');
    assert.equal(line.pruned, 2);
  });

  it('keeps only the newest RETENTION_MAX_EXECUTIONS ended executions', async () => {
    const agent = await startAgentForTest({
      env: { RETENTION_INTERVAL_SECONDS: '1', RETENTION_MAX_EXECUTIONS: '2', RETENTION_MAX_AGE_DAYS: '0' },
    });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const record = await executeUntil(
        agent,
        { wpk_content: pkg(uniqueName('kept'), [shellStep('a', ['true'])]), dry_run: true },
        ['completed'],
      );
      ids.push(record.execution_id);
    }
    for (const id of ids.slice(0, 2))
      await waitFor(async () => (await call(agent, 'GET', `/execute/${id}`)).status === 404, `${id} to be pruned`);
    for (const id of ids.slice(2)) assert.equal((await call(agent, 'GET', `/execute/${id}`)).status, 200);
    const listed = (await call(agent, 'GET', '/executions')).body.executions.map(
      (e: { execution_id: string }) => e.execution_id,
    );
    assert.deepEqual(listed, ids.slice(2).reverse());
  });
});

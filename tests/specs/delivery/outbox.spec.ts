/**
 * The outbox and the delivery loop without HTTP: which status changes become deliveries (the real engine and
 * store with the fake adapter), and how the loop orders, retries, gives up and resumes (a scripted sender).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttemptResult, Sender } from '../../../services/runtime-agent/src/delivery/callback-sender.js';
import { type DeliveryHooks, DeliveryWorker } from '../../../services/runtime-agent/src/delivery/worker.js';
import { Store } from '../../../services/runtime-agent/src/store/store.js';
import type { Delivery, DeliveryState } from '../../../services/runtime-agent/src/store/types.js';
import { type Harness, startEngine, step, wpk } from '../engine/harness.js';
import { waitFor } from '../support/wait.js';

const URL_ = 'http://127.0.0.1:9/results';

describe('outbox: which status changes become deliveries', () => {
  let h: Harness;
  afterEach(() => h.close(true));

  const events = (id: string) => h.store.outbox.ofExecution(id).map((d) => d.event);

  it('one delivery per terminal status, its body the record as committed with that status', async () => {
    h = startEngine({ results: { events: 'terminal', url: URL_ } });
    const ok = (await h.run({ wpk: wpk([step('a', 'ok')]) })).execution_id;
    const failed = (await h.run({ wpk: wpk([step('a', 'fail')]) })).execution_id;
    assert.deepEqual(events(ok), ['execution.completed']);
    assert.deepEqual(events(failed), ['execution.failed']);
    const [d] = h.store.outbox.ofExecution(ok);
    const body = JSON.parse(d.body);
    assert.equal(body.delivery_id, d.deliveryId);
    assert.deepEqual(body.execution, { ...h.record(ok), status: 'completed' });
    assert.equal(d.state, 'pending');
    assert.equal(d.target, URL_);
  });

  it('a failure with rollback on failure is delivered as its final outcome: the rollback, or failed when there was nothing to undo', async () => {
    h = startEngine({ results: { events: 'terminal', url: URL_ } });
    const undone = (
      await h.run({ wpk: wpk([step('a', 'create'), step('b', 'fail')], { rollback: { enabled: true } }) })
    ).execution_id;
    const nothing = (await h.run({ wpk: wpk([step('a', 'ok'), step('b', 'fail')], { rollback: { enabled: true } }) }))
      .execution_id;
    assert.deepEqual(events(undone), ['execution.rolled_back']);
    assert.deepEqual(events(nothing), ['execution.failed']);
    assert.equal(JSON.parse(h.store.outbox.ofExecution(nothing)[0].body).execution.rollback.status, 'nothing_to_do');
  });

  it("events 'all': every status change; without any URL: nothing", async () => {
    h = startEngine({ results: { events: 'all', url: URL_ } });
    const id = (await h.run({ wpk: wpk([step('a', 'create'), step('b', 'fail')], { rollback: { enabled: true } }) }))
      .execution_id;
    assert.deepEqual(events(id), [
      'execution.running',
      'execution.failed',
      'execution.rolling_back',
      'execution.rolled_back',
    ]);
    await h.close(true);
    h = startEngine({ results: { events: 'all' } });
    const none = (await h.run({ wpk: wpk([step('a', 'ok')]) })).execution_id;
    assert.deepEqual(events(none), []);
  });
});

describe('delivery loop: order, retries, maximum age and leases', () => {
  let dir: string;
  let store: Store;
  let worker: DeliveryWorker | undefined;
  const seen: Array<{ id: string; state: DeliveryState }> = [];
  const hooks: DeliveryHooks = {
    attempted: (d, _r, state) => seen.push({ id: d.deliveryId, state }),
    failed: (err) => {
      throw err;
    },
  };
  const settings = { maxAgeMs: 60_000, baseDelayMs: 10, maxDelayMs: 50, timeoutMs: 200, concurrency: 4 };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-spec-'));
    store = new Store(dir);
    seen.length = 0;
  });
  afterEach(async () => {
    await worker?.stop(0);
    worker = undefined;
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const add = (executionId: string, event: string) => {
    store.outbox.stage(
      { kind: 'callback', executionId, event, render: (id) => ({ target: URL_, body: JSON.stringify({ id, event }) }) },
      { deferred: true, critical: true },
    );
    store.flush();
  };
  const scripted = (answer: (d: Delivery, n: number) => AttemptResult | Promise<AttemptResult>) => {
    const sent: Delivery[] = [];
    const send: Sender = async (d) => {
      sent.push(d);
      return answer(d, sent.filter((s) => s.deliveryId === d.deliveryId).length);
    };
    return { sent, send };
  };
  const ok: AttemptResult = { outcome: 'delivered', status: 200, error: null };
  const fail: AttemptResult = { outcome: 'http_error', status: 503, error: 'answered HTTP 503' };

  it("sends an execution's deliveries one at a time, in order: a later one waits while an earlier one is retried", async () => {
    add('e1', 'execution.running');
    add('e1', 'execution.completed');
    add('e2', 'execution.completed');
    const { sent, send } = scripted((d, n) => (d.event === 'execution.running' && n < 3 ? fail : ok));
    worker = new DeliveryWorker(store.outbox, { callback: send }, settings, hooks);
    worker.start();
    await waitFor(() => seen.filter((s) => s.state === 'delivered').length === 3, 'three delivered');
    const e1 = sent.filter((d) => d.executionId === 'e1').map((d) => d.event);
    assert.deepEqual(e1, ['execution.running', 'execution.running', 'execution.running', 'execution.completed']);
    const rows = store.outbox.ofExecution('e1');
    assert.deepEqual(
      rows.map((r) => [r.state, r.attempts]),
      [
        ['delivered', 3],
        ['delivered', 1],
      ],
    );
    assert.equal(new Set(sent.filter((d) => d.event === 'execution.running').map((d) => d.body)).size, 1);
  });

  it('gives a delivery up once a retry would fall past the maximum age', async () => {
    add('e1', 'execution.completed');
    const { sent, send } = scripted(() => fail);
    worker = new DeliveryWorker(store.outbox, { callback: send }, { ...settings, maxAgeMs: 300 }, hooks);
    worker.start();
    await waitFor(() => seen.some((s) => s.state === 'dead'), 'dead');
    const [row] = store.outbox.ofExecution('e1');
    assert.equal(row.state, 'dead');
    assert.equal(row.attempts, sent.length);
    assert.match(row.lastError ?? '', /maximum age; last error: answered HTTP 503/);
    assert.equal(store.outbox.backlog('callback').dead, 1);
  });

  it('an attempt cut short by stop keeps its lease: the next worker retries it after the lease, under the same id', async () => {
    add('e1', 'execution.completed');
    // Answers only when aborted, as the real sender does when the agent stops.
    const first: Delivery[] = [];
    const hang: Sender = (d, signal) => {
      first.push(d);
      return new Promise((resolve) =>
        signal.addEventListener('abort', () =>
          resolve({ outcome: 'network_error', status: null, error: 'the agent stopped during the attempt' }),
        ),
      );
    };
    worker = new DeliveryWorker(store.outbox, { callback: hang }, settings, hooks);
    worker.start();
    await waitFor(() => first.length === 1, 'the first attempt');
    await worker.stop(0);
    const [leased] = store.outbox.ofExecution('e1');
    assert.equal(leased.state, 'pending');
    assert.equal(leased.attempts, 1, 'the interrupted attempt counts');
    assert.ok(leased.nextAttemptAt >= leased.createdMs + settings.timeoutMs, 'not before the lease ends');
    const second = scripted(() => ok);
    worker = new DeliveryWorker(store.outbox, { callback: second.send }, settings, hooks);
    worker.start();
    await waitFor(() => seen.some((s) => s.state === 'delivered'), 'delivered by the next worker');
    assert.equal(second.sent[0].deliveryId, first[0].deliveryId);
    assert.ok(Date.now() >= leased.nextAttemptAt);
    assert.equal(store.outbox.ofExecution('e1')[0].attempts, 2);
  });
});

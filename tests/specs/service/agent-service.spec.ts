/**
 * The service layer without HTTP: every rule a surface relies on (roles, ownership, validation, idempotency,
 * filters, the journal) holds when the operations are called directly.
 */
import assert from 'node:assert/strict';
import { testAdapter } from '../support/test-adapter.js';
import type { JournalEvent } from '../../../services/runtime-agent/src/store/types.js';
import { step, wpk } from '../engine/harness.js';
import { ACTORS, type ServiceHarness, startService } from '../support/service-harness.js';
import { waitFor } from '../support/wait.js';

/** An adapter this agent has but cannot run (as k8s without a cluster). */
const unready = testAdapter(
  'offline',
  'never ready',
  { poke: { description: 'would poke', mutates: true, run: () => Promise.resolve({}) } },
  () => ({ ready: false, message: 'no offline cluster is configured: set OFFLINE_URL' }),
);

async function rejects(work: () => unknown, type: string, re?: RegExp) {
  await assert.rejects(
    async () => work(),
    (err: { type?: string; message: string }) => {
      assert.equal(err.type, type, err.message);
      if (re) assert.match(err.message, re);
      return true;
    },
  );
}

describe('service layer (no HTTP)', () => {
  let h: ServiceHarness;
  beforeEach(async () => {
    h = await startService({ adapters: [unready] });
  });
  afterEach(() => h.close());

  it('refuses each operation to a role below the one it needs, naming that role', async () => {
    const { service } = h.agent;
    const pkg = wpk([step('a', 'ok')]);
    await rejects(() => service.submit(ACTORS.viewer, { wpk_content: pkg }), 'forbidden', /needs the executor role/);
    await rejects(() => service.validate(ACTORS.viewer, { wpk_content: pkg }), 'forbidden');
    await rejects(() => service.rollback(ACTORS.alice, 'x'), 'forbidden', /needs the operator role/);
    await rejects(() => service.audit(ACTORS.operator, {}), 'forbidden', /needs the admin role/);
    await rejects(() => service.init(ACTORS.operator, {}), 'forbidden');
    assert.deepEqual(service.list(ACTORS.viewer, {}).executions, []);
  });

  it('submits, records who did, and lets only the owner or an operator cancel', async () => {
    const { service } = h.agent;
    const pkg = wpk([step('wait', 'hang')]);
    const a = await service.submit(ACTORS.alice, { wpk_content: pkg });
    assert.equal(a.created, true);
    const id = a.execution.execution_id;
    assert.equal(service.get(ACTORS.viewer, id).submitted_by, 'alice');
    await rejects(() => service.cancel(ACTORS.bob, id), 'forbidden', /submitted by alice/);
    assert.equal(service.cancel(ACTORS.operator, id).execution_id, id);
    const rec = await h.settled(id);
    assert.equal(rec.status, 'cancelled');
  });

  it('answers the same execution for a repeated Idempotency-Key with the same request, and 409 with another', async () => {
    const { service } = h.agent;
    const req = { wpk_content: wpk([step('a', 'ok')]) };
    const first = await service.submit(ACTORS.alice, req, { idempotencyKey: 'k1' });
    const again = await service.submit(ACTORS.alice, req, { idempotencyKey: 'k1' });
    assert.equal(again.created, false);
    assert.equal(again.execution.execution_id, first.execution.execution_id);
    await rejects(
      () => service.submit(ACTORS.alice, { ...req, dry_run: true }, { idempotencyKey: 'k1' }),
      'conflict',
      /different body/,
    );
    assert.equal(service.list(ACTORS.viewer, {}).executions.length, 1);
  });

  it('refuses a package whose adapter is not ready before anything is queued, and /validate says which', async () => {
    const { service } = h.agent;
    const pkg = wpk([step('a', 'ok'), { name: 'b', adapter: 'offline', action: 'poke', with: {} }]);
    await rejects(
      () => service.submit(ACTORS.alice, { wpk_content: pkg, dry_run: true }),
      'validation_error',
      /offline/,
    );
    assert.equal(h.agent.store.executions.count(), 0, 'nothing stored');
    assert.equal(h.calls.length, 0, 'nothing ran');
    const report = service.validate(ACTORS.alice, { wpk_content: pkg });
    assert.equal(report.valid, false);
    assert.deepEqual(report.errors, [
      {
        path: '$.spec.handlers[1].adapter',
        message: "adapter 'offline' is not ready on this agent: no offline cluster is configured: set OFFLINE_URL",
      },
    ]);
  });

  it('validates the parameters it is given, and warns about required ones without a default when given none', () => {
    const { service } = h.agent;
    const pkg = wpk([step('a', 'ok', { value: '${{ params.name }}' })], {
      parameters: { name: { type: 'string', required: true }, size: { type: 'integer', default: 1 } },
    });
    const none = service.validate(ACTORS.alice, { wpk_content: pkg });
    assert.equal(none.valid, true);
    assert.deepEqual(
      none.warnings.map((w) => w.path),
      ['$.parameters.name'],
    );
    assert.match(none.warnings[0].message, /required and has no default/);
    const bad = service.validate(ACTORS.alice, { wpk_content: pkg, parameters: { size: 'big' } });
    assert.equal(bad.valid, false);
    assert.deepEqual(bad.errors.map((e) => e.path).sort(), ['$.parameters.name', '$.parameters.size']);
    assert.equal(service.validate(ACTORS.alice, { wpk_content: pkg, parameters: { name: 'x' } }).valid, true);
  });

  it('lists by several statuses at once, by workflow and by time, newest first, and refuses bad filters', async () => {
    const { service } = h.agent;
    const ok = await service.submit(ACTORS.alice, { wpk_content: wpk([step('a', 'ok')], {}, 'list-ok') });
    const failed = await service.submit(ACTORS.alice, {
      wpk_content: wpk([step('a', 'fail', { retryable: false })], {}, 'list-fail'),
    });
    const cancelled = await service.submit(ACTORS.alice, { wpk_content: wpk([step('a', 'hang')], {}, 'list-hang') });
    await waitFor(() => h.calls.some((c) => c.action === 'hang'), 'the hang step to start');
    service.cancel(ACTORS.alice, cancelled.execution.execution_id);
    for (const r of [ok, failed, cancelled]) await h.settled(r.execution.execution_id);

    const ids = (q: Parameters<typeof service.list>[1]) =>
      service.list(ACTORS.viewer, q).executions.map((e) => e.execution_id);
    assert.deepEqual(ids({ status: ['failed', 'cancelled'] }), [
      cancelled.execution.execution_id,
      failed.execution.execution_id,
    ]);
    assert.deepEqual(ids({ status: 'failed,cancelled' }), ids({ status: ['failed', 'cancelled'] }));
    assert.deepEqual(ids({ status: 'completed' }), [ok.execution.execution_id]);
    assert.deepEqual(ids({ workflow_id: 'list-fail-1.0.0' }), [failed.execution.execution_id]);
    assert.equal(ids({ since: '1h' }).length, 3);
    assert.deepEqual(ids({ until: '2000-01-01T00:00:00Z' }), []);
    assert.deepEqual(ids({ since: new Date(Date.now() + 60_000).toISOString() }), []);
    assert.deepEqual(ids({ status: 'failed', limit: 1 }), [failed.execution.execution_id]);
    await assert.rejects(
      async () => service.list(ACTORS.viewer, { status: 'done', since: 'yesterday', limit: 0 }),
      (err: { details: { errors: Array<{ path: string }> } }) => {
        assert.deepEqual(err.details.errors.map((e) => e.path).sort(), ['query.limit', 'query.since', 'query.status']);
        return true;
      },
    );
  });

  it('follows the journal from any seq: stored events, then live ones, each once and in order', async () => {
    const { service } = h.agent;
    const first = await service.submit(ACTORS.alice, { wpk_content: wpk([step('a', 'ok'), step('b', 'ok')]) });
    await h.settled(first.execution.execution_id);
    const stored = service.events(ACTORS.viewer, {}).events;
    assert.deepEqual(
      stored.map((e) => e.type),
      [
        'execution.created',
        'execution.status_changed',
        'step.started',
        'step.finished',
        'step.started',
        'step.finished',
        'execution.status_changed',
      ],
    );
    assert.deepEqual(
      stored.map((e) => e.seq),
      stored.map((_, i) => stored[0].seq + i),
      'seqs are consecutive',
    );

    const seen: JournalEvent[] = [];
    const stop = service.followEvents(ACTORS.viewer, { since: stored[2].seq }, () => (e) => seen.push(e));
    const second = await service.submit(ACTORS.alice, { wpk_content: wpk([step('c', 'ok')]) });
    await h.settled(second.execution.execution_id);
    await waitFor(
      () => seen.at(-1)?.data.to === 'completed' && seen.at(-1)?.execution_id === second.execution.execution_id,
      'the second run to be followed to its end',
    );
    stop();
    const all = service.events(ACTORS.viewer, { since: stored[2].seq }).events;
    assert.deepEqual(
      seen.map((e) => e.seq),
      all.map((e) => e.seq),
      'exactly the stored events after the given seq, in order, none twice',
    );

    const onlyOne = service.events(ACTORS.viewer, {
      execution_id: second.execution.execution_id,
      types: 'step.finished',
    }).events;
    assert.deepEqual(
      onlyOne.map((e) => [e.type, e.step, e.data.status]),
      [['step.finished', 'c', 'succeeded']],
    );
  });

  it('counts running executions and rollbacks once: /health and the active_workflows gauge agree', async () => {
    const { service, engine } = h.agent;
    const gauge = async () => {
      const text = (await service.metricsText(undefined)).text;
      return Number(/^active_workflows (\d+)$/m.exec(text)?.[1]);
    };
    const undoHangs = wpk([step('a', 'ok', {}, { rollback: { action: 'hang' } })], {}, 'slow-undo');
    const done = await service.submit(ACTORS.alice, { wpk_content: undoHangs });
    await h.settled(done.execution.execution_id);
    const running = await service.submit(ACTORS.alice, { wpk_content: wpk([step('wait', 'hang')]) });
    await waitFor(() => h.calls.some((c) => c.action === 'hang'), 'the execution to run');
    service.rollback(ACTORS.operator, done.execution.execution_id);
    await waitFor(() => h.calls.filter((c) => c.action === 'hang').length === 2, 'the rollback to run');
    assert.equal((await service.health()).active_executions, 2, 'an execution and a rollback');
    assert.equal(await gauge(), 2);
    assert.equal(engine.activeCount, 2);
    service.cancel(ACTORS.alice, running.execution.execution_id);
    await h.settled(running.execution.execution_id);
    assert.equal((await service.health()).active_executions, 1);
    assert.equal(await gauge(), 1);
  });

  it('shows the catalog with parameters, masking secret defaults, and one package as stored', async () => {
    const { service } = h.agent;
    const pkg = wpk(
      [step('a', 'ok')],
      {
        parameters: { token: { type: 'string', secret: true, default: 's3cr3t-default' }, n: { type: 'integer' } },
      },
      'catalog-demo',
    );
    await service.submit(ACTORS.alice, { wpk_content: pkg, dry_run: true });
    const list = service.workflows(ACTORS.viewer).workflows;
    const mine = list.find((w) => w.workflow_id === 'catalog-demo-1.0.0')!;
    assert.equal(mine.source, 'registered');
    assert.deepEqual(mine.parameters.token, { type: 'string', secret: true, default: '***' });
    assert.ok(
      list.some((w) => w.source === 'bundled'),
      'bundled packages are listed too',
    );
    const one = service.workflow(ACTORS.viewer, 'catalog-demo-1.0.0');
    assert.equal(one.package.spec.handlers[0].name, 'a');
    assert.ok(!JSON.stringify(one).includes('s3cr3t-default'));
    await rejects(() => service.workflow(ACTORS.viewer, 'nope-1.0.0'), 'not_found');
  });

  it("masks credentials written into a package's steps and compensations, and leaves templates alone", async () => {
    const { service } = h.agent;
    const pkg = wpk([], {}, 'literal-creds');
    pkg.spec.handlers = [
      {
        name: 'call',
        adapter: 'api',
        action: 'request',
        with: {
          url: 'http://127.0.0.1:9/x',
          headers: { Authorization: 'Bearer lit-credential-123', 'X-Trace': 'trace-1' },
        },
        rollback: {
          action: 'request',
          with: { url: 'http://127.0.0.1:9/undo', headers: { 'X-Api-Key': 'undo-key-456' } },
        },
      },
      {
        name: 'env',
        adapter: 'shell',
        action: 'run',
        with: { command: ['true'], env: { DEPLOY_TOKEN: 'env-token-789', TOKEN_FROM: '${{ params.x }}' } },
      },
    ];
    pkg.spec.parameters = { x: { type: 'string', default: 'd' } };
    const report = service.validate(ACTORS.alice, { wpk_content: pkg });
    assert.equal(report.valid, true, JSON.stringify(report.errors));
    await service.submit(ACTORS.alice, { wpk_content: pkg, dry_run: true });
    const one = service.workflow(ACTORS.viewer, 'literal-creds-1.0.0');
    const text = JSON.stringify(one);
    for (const secret of ['lit-credential-123', 'undo-key-456', 'env-token-789'])
      assert.ok(!text.includes(secret), `${secret} is not shown`);
    const [call, env] = one.package.spec.handlers;
    assert.equal((call.with as { headers: Record<string, string> }).headers['X-Trace'], 'trace-1');
    assert.match(JSON.stringify(call.with), /\*\*\*/);
    assert.equal((env.with as { env: Record<string, string> }).env.TOKEN_FROM, '${{ params.x }}');
  });

  it('keeps committing and telling the other subscribers when one journal subscriber throws', async () => {
    const { service, store } = h.agent;
    const seen: JournalEvent[] = [];
    const offThrowing = store.journal.subscribe(() => {
      throw new Error('a broken subscriber');
    });
    const offSeen = store.journal.subscribe((e) => void seen.push(e));
    try {
      const a = await service.submit(ACTORS.alice, { wpk_content: wpk([step('a', 'ok')], {}, 'sub-throws') });
      await waitFor(
        () => seen.some((e) => e.execution_id === a.execution.execution_id && e.type === 'step.finished'),
        'the other subscriber hears the step finish',
      );
      const b = await service.submit(ACTORS.alice, { wpk_content: wpk([step('a', 'ok')], {}, 'sub-throws') });
      assert.ok(b.created, 'a later submission is still answered once stored');
    } finally {
      offThrowing();
      offSeen();
    }
  });
});

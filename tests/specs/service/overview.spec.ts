/**
 * The operations behind the console's Overview and its role display: counts by status and p50/p95 durations
 * per workflow over a window, and what the caller's role may do. Through the service layer, no HTTP.
 */
import assert from 'node:assert/strict';
import { overviewOf, percentile } from '../../../services/runtime-agent/src/service/overview.js';
import { ANONYMOUS } from '../../../services/runtime-agent/src/auth/roles.js';
import { step, wpk } from '../engine/harness.js';
import { ACTORS, type ServiceHarness, startService } from '../support/service-harness.js';

describe('service layer: overview and whoami', () => {
  let h: ServiceHarness;
  before(async () => {
    h = await startService();
  });
  after(() => h.close());

  it('counts executions by status and measures each workflow from the ended runs', async () => {
    const { service } = h.agent;
    const ids: string[] = [];
    for (const [name, action] of [
      ['fast', 'ok'],
      ['fast', 'ok'],
      ['fast', 'fail'],
      ['slow', 'ok'],
    ] as const) {
      const input = action === 'ok' ? { value: 1, delayMs: name === 'slow' ? 150 : 0 } : { retryable: false };
      const r = await service.submit(ACTORS.alice, { wpk_content: wpk([step('only', action, input)], {}, name) });
      ids.push(r.execution.execution_id);
    }
    for (const id of ids) await h.settled(id);

    const o = service.overview(ACTORS.viewer, {});
    assert.equal(o.total, 4);
    assert.equal(o.by_status.completed, 3);
    assert.equal(o.by_status.failed, 1);
    assert.equal(o.by_status.running, 0, 'every status is listed, zero or not');
    assert.equal(Date.parse(o.until) - Date.parse(o.since), 24 * 3600_000, 'the last 24 hours by default');
    const fast = o.by_workflow.find((w) => w.workflow_id === 'fast-1.0.0')!;
    const slow = o.by_workflow.find((w) => w.workflow_id === 'slow-1.0.0')!;
    assert.deepEqual([fast.runs, fast.ended, slow.runs, slow.ended], [3, 3, 1, 1]);
    assert.ok(slow.p50_ms! >= 150, `the slow run took its 150 ms: ${slow.p50_ms}`);
    assert.ok(fast.p95_ms! <= fast.max_ms! && fast.p50_ms! <= fast.p95_ms!);
    assert.equal(o.by_workflow[0].workflow_id, 'fast-1.0.0', 'the busiest workflow first');

    const later = service.overview(ACTORS.viewer, { since: new Date(Date.now() + 60_000).toISOString() });
    assert.equal(later.total, 0, 'nothing was created after the window starts');
    assert.deepEqual(later.by_workflow, []);
  });

  it('takes p50 and p95 as nearest-rank durations some run really had', () => {
    assert.equal(percentile([], 50), null);
    assert.equal(percentile([7], 95), 7);
    const sorted = Array.from({ length: 20 }, (_, i) => (i + 1) * 10);
    assert.equal(percentile(sorted, 50), 100);
    assert.equal(percentile(sorted, 95), 190);
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    const o = overviewOf(
      [
        { workflowId: 'w', status: 'completed', startedAt: t(0), finishedAt: t(2) },
        { workflowId: 'w', status: 'running', startedAt: t(0), finishedAt: null },
        { workflowId: 'w', status: 'pending', startedAt: null, finishedAt: null },
      ],
      t(0),
      t(10),
      false,
    );
    assert.deepEqual(o.by_workflow, [
      { workflow_id: 'w', runs: 3, ended: 1, p50_ms: 2000, p95_ms: 2000, max_ms: 2000 },
    ]);
  });

  it('refuses a window it cannot read, naming the parameter', () => {
    assert.throws(
      () => h.agent.service.overview(ACTORS.viewer, { since: 'yesterday' }),
      (err: { type: string; problems: Array<{ path: string }> }) =>
        err.type === 'validation_error' && err.problems[0].path === 'query.since',
    );
  });

  it('tells each caller its role and what that role may do, as the rules in auth/roles.ts decide', () => {
    const { service } = h.agent;
    const viewer = service.whoami(ACTORS.viewer);
    assert.deepEqual(
      { ...viewer },
      {
        name: 'vera',
        role: 'viewer',
        authentication: true,
        may: {
          submit: false,
          validate: false,
          cancel: false,
          cancel_any: false,
          rollback: false,
          retry: false,
          audit: false,
        },
      },
    );
    const executor = service.whoami(ACTORS.alice).may;
    assert.deepEqual(
      [executor.submit, executor.cancel, executor.cancel_any, executor.rollback],
      [true, true, false, false],
    );
    const operator = service.whoami(ACTORS.operator).may;
    assert.deepEqual([operator.cancel_any, operator.rollback, operator.audit], [true, true, false]);
    assert.equal(service.whoami(ACTORS.admin).may.audit, true);
    const anonymous = service.whoami(ANONYMOUS);
    assert.equal(anonymous.authentication, false, 'no tokens file: everyone is anonymous');
    assert.equal(anonymous.may.rollback, true);
  });
});

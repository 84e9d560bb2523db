/**
 * Retry from a step (service layer, real engine and store): a new execution linked to the old one, the steps
 * before from_step kept with their outputs and compensations, and every refusal before anything is stored.
 */
import assert from 'node:assert/strict';
import { step, wpk } from '../engine/harness.js';
import { ACTORS, type ServiceHarness, startService } from '../support/service-harness.js';

async function rejects(work: () => unknown, type: string, re: RegExp) {
  await assert.rejects(
    async () => work(),
    (err: { type?: string; message: string }) => {
      assert.equal(err.type, type, err.message);
      assert.match(err.message, re);
      return true;
    },
  );
}

describe('retry from a step (service layer)', () => {
  let h: ServiceHarness;
  beforeEach(async () => {
    h = await startService();
  });
  afterEach(() => h.close());

  /** Submits `pkg` as alice and waits for its end. */
  async function run(pkg: ReturnType<typeof wpk>, parameters?: Record<string, unknown>) {
    const { execution } = await h.agent.service.submit(ACTORS.alice, { wpk_content: pkg, parameters });
    return h.settled(execution.execution_id);
  }

  const calledSteps = (executionId: string) =>
    h.calls.filter((c) => c.executionId === executionId).map((c) => `${c.step}:${c.action}`);

  it('runs again from the failed step, keeps the earlier outputs, and links both executions', async () => {
    const pkg = wpk(
      [
        step('read', 'ok', { value: 'from-first-run' }),
        step('flaky', 'fail', { key: 'flaky-1', times: 1 }),
        step('use', 'ok', { value: '${{ steps.read.outputs.value }}' }),
      ],
      { parameters: { region: { type: 'string', default: 'eu' } } },
    );
    const first = await run(pkg);
    assert.equal(first.status, 'failed');
    assert.equal(first.error?.step, 'flaky');

    const answer = await h.agent.service.retry(ACTORS.bob, first.execution_id, {});
    assert.equal(answer.retry_of, first.execution_id);
    assert.equal(answer.from_step, 'flaky', 'the default is the step that failed');
    assert.equal(answer.steps_kept, 1);
    const retry = await h.settled(answer.execution_id);
    assert.equal(retry.status, 'completed');
    assert.equal(retry.retry_of, first.execution_id);
    assert.equal(retry.submitted_by, 'bob');
    assert.deepEqual(calledSteps(answer.execution_id), ['flaky:fail', 'use:ok'], 'read is not run again');
    const [read, flaky, use] = retry.steps;
    assert.equal(read.status, 'succeeded');
    assert.equal(read.outputs_source, 'reused');
    assert.deepEqual(read.outputs, { value: 'from-first-run' });
    assert.match(read.reason ?? '', new RegExp(`succeeded in execution ${first.execution_id}; not run again`));
    assert.equal(flaky.status, 'succeeded');
    assert.equal(flaky.outputs_source, 'run');
    assert.deepEqual(use.outputs, { value: 'from-first-run' }, 'a later step reads a kept output');
    assert.equal(retry.steps_completed, 3);
    assert.deepEqual(retry.parameters, { region: 'eu' }, "the original's parameters");

    const original = h.agent.service.get(ACTORS.viewer, first.execution_id);
    assert.equal(original.retried_by, answer.execution_id);
    assert.equal(original.status, 'failed', 'the original is left as it ended');

    const retried = h.agent.service.events(ACTORS.viewer, {
      execution_id: first.execution_id,
      types: 'execution.retried',
    });
    assert.deepEqual(
      retried.events.map((e) => e.data),
      [{ retry_id: answer.execution_id, from_step: 'flaky' }],
    );
    const created = h.agent.service.events(ACTORS.viewer, {
      execution_id: answer.execution_id,
      types: 'execution.created',
    });
    assert.equal(created.events[0].data.retry_of, first.execution_id);
    assert.equal(created.events[0].data.from_step, 'flaky');
  });

  it('starts where asked with parameters changed, and refuses bad ones with nothing stored', async () => {
    const pkg = wpk([step('a', 'ok', { value: 'a' }), step('b', 'ok', { value: '${{ params.size }}' })], {
      parameters: { size: { type: 'integer', default: 1 }, zone: { type: 'string', required: true } },
    });
    const first = await run(pkg, { zone: 'z1' });
    assert.equal(first.status, 'completed');
    const stored = h.agent.service.list(ACTORS.viewer, {}).executions.length;

    await rejects(
      () => h.agent.service.retry(ACTORS.alice, first.execution_id, {}),
      'validation_error',
      /nothing to retry/,
    );
    await rejects(
      () => h.agent.service.retry(ACTORS.alice, first.execution_id, { from_step: 'nope' }),
      'validation_error',
      /invalid retry request/,
    );
    await assert.rejects(
      async () =>
        h.agent.service.retry(ACTORS.alice, first.execution_id, {
          from_step: 'b',
          parameters: { size: 'x', extra: 1 },
        }),
      (err: { type: string; details: { errors: Array<{ path: string }> } }) => {
        assert.equal(err.type, 'validation_error');
        assert.deepEqual(err.details.errors.map((p) => p.path).sort(), ['$.parameters.extra', '$.parameters.size']);
        return true;
      },
    );
    await rejects(() => h.agent.service.retry(ACTORS.viewer, first.execution_id, {}), 'forbidden', /executor/);
    assert.equal(h.agent.service.list(ACTORS.viewer, {}).executions.length, stored, 'nothing stored');
    assert.equal(h.agent.service.get(ACTORS.viewer, first.execution_id).retried_by, null);

    const answer = await h.agent.service.retry(ACTORS.alice, first.execution_id, {
      from_step: 'b',
      parameters: { size: 7 },
    });
    const retry = await h.settled(answer.execution_id);
    assert.equal(retry.status, 'completed');
    assert.deepEqual(retry.steps[1].outputs, { value: 7 });
    assert.deepEqual(retry.parameters, { size: 7, zone: 'z1' }, 'changed one, kept the other');
  });

  it('refuses while the original runs, after it was retried once, and from a step past an unfinished one', async () => {
    const { service } = h.agent;
    const hanging = await service.submit(ACTORS.alice, { wpk_content: wpk([step('wait', 'hang')]) });
    const id = hanging.execution.execution_id;
    await rejects(() => service.retry(ACTORS.alice, id, {}), 'conflict', /retry it once it has ended/);
    service.cancel(ACTORS.alice, id);
    await h.settled(id);

    const pkg = wpk([step('a', 'ok'), step('b', 'fail', { key: 'b-always' }), step('c', 'ok')]);
    const failed = await run(pkg);
    await rejects(
      () => service.retry(ACTORS.alice, failed.execution_id, { from_step: 'c' }),
      'conflict',
      /step 'b' comes before 'c' and ended failed/,
    );
    const answer = await service.retry(ACTORS.alice, failed.execution_id, {});
    await h.settled(answer.execution_id);
    await rejects(
      () => service.retry(ACTORS.alice, failed.execution_id, {}),
      'conflict',
      new RegExp(`retried already, by ${answer.execution_id}`),
    );
  });

  it("keeps the kept steps' compensations: a rollback of the retry undoes them, the original's is refused", async () => {
    const pkg = wpk([
      step('make', 'create', { name: 'bucket' }),
      step('check', 'fail', { key: 'check-once', times: 1 }),
    ]);
    const first = await run(pkg);
    assert.equal(first.status, 'failed');
    const answer = await h.agent.service.retry(ACTORS.alice, first.execution_id, {});
    const retry = await h.settled(answer.execution_id);
    assert.equal(retry.status, 'completed');
    assert.deepEqual(calledSteps(answer.execution_id), ['check:fail'], 'make was not run again');

    await rejects(
      () => h.agent.service.rollback(ACTORS.operator, first.execution_id),
      'conflict',
      new RegExp(`roll back ${answer.execution_id} instead`),
    );
    h.agent.service.rollback(ACTORS.operator, answer.execution_id);
    const rolled = await h.settled(answer.execution_id);
    assert.equal(rolled.status, 'rolled_back');
    const deletes = h.calls.filter((c) => c.executionId === answer.execution_id && c.action === 'delete');
    assert.deepEqual(
      deletes.map((c) => c.input),
      [{ id: 'id-bucket' }],
      "the kept step's compensation, with its kept output",
    );
  });

  it('leaves the original the steps its retry ran again: its rollback undoes those, the retry undoes the kept ones', async () => {
    const pkg = wpk([
      step('first', 'create', { name: 'disk' }),
      step('second', 'create', { name: 'volume' }),
      step('check', 'fail', { key: 'check-split', times: 1 }),
    ]);
    const first = await run(pkg);
    const answer = await h.agent.service.retry(ACTORS.alice, first.execution_id, { from_step: 'second' });
    assert.equal((await h.settled(answer.execution_id)).status, 'completed');
    const deletes = (id: string) =>
      h.calls.filter((c) => c.executionId === id && c.action === 'delete').map((c) => c.input.id);

    h.agent.service.rollback(ACTORS.operator, first.execution_id);
    assert.equal((await h.settled(first.execution_id)).status, 'rolled_back');
    assert.deepEqual(deletes(first.execution_id), ['id-volume'], "only its own 'second': 'first' is the retry's now");
    h.agent.service.rollback(ACTORS.operator, answer.execution_id);
    assert.equal((await h.settled(answer.execution_id)).status, 'rolled_back');
    assert.deepEqual(deletes(answer.execution_id), ['id-volume', 'id-disk'], 'its own second, then the kept first');
  });

  it('runs every step again after a rollback undid them, and refuses to keep any', async () => {
    const pkg = wpk([step('make', 'create'), step('check', 'fail', { key: 'check-rb', times: 1 })], {
      rollback: { enabled: true },
    });
    const first = await run(pkg);
    assert.equal(first.status, 'rolled_back');
    await rejects(
      () => h.agent.service.retry(ACTORS.alice, first.execution_id, { from_step: 'check' }),
      'conflict',
      /was rolled back: the effects of its steps before 'check' were undone/,
    );
    const answer = await h.agent.service.retry(ACTORS.alice, first.execution_id, {});
    assert.equal(answer.from_step, 'make');
    assert.equal(answer.steps_kept, 0);
    const retry = await h.settled(answer.execution_id);
    assert.equal(retry.status, 'completed');
    assert.deepEqual(calledSteps(answer.execution_id), ['make:create', 'check:fail']);
  });

  it('keeps the kept steps of a retry that was still queued when the agent stopped', async () => {
    await h.close();
    h = await startService({ env: { MAX_CONCURRENT_EXECUTIONS: '1' } });
    const pkg = wpk([step('make', 'create', { name: 'disk' }), step('check', 'fail', { key: 'check-q', times: 1 })]);
    const first = await run(pkg);
    const busy = await h.agent.service.submit(ACTORS.alice, { wpk_content: wpk([step('wait', 'hang')]) });
    const answer = await h.agent.service.retry(ACTORS.alice, first.execution_id, {});
    assert.equal(h.agent.service.get(ACTORS.viewer, answer.execution_id).status, 'pending', 'queued behind the hang');
    await h.restart();
    const retry = await h.settled(answer.execution_id);
    assert.equal(retry.status, 'completed');
    assert.deepEqual(calledSteps(answer.execution_id), ['check:fail'], 'make was not run after the restart either');
    assert.equal(retry.steps[0].outputs_source, 'reused');
    assert.notEqual(h.agent.service.get(ACTORS.viewer, busy.execution.execution_id).status, 'running');
  });
});

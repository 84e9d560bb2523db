import assert from 'node:assert/strict';
import { testAdapter } from '../support/test-adapter.js';
import { AgentError } from '../../../adapters/errors.js';
import { waitFor } from '../support/wait.js';
import { counterValue, useEngine, step, wpk, type Harness } from './harness.js';

const retryDelaysLogged = (h: Harness, id: string) =>
  h
    .logs(id)
    .map((l) => /retrying in (\d+) ms/.exec(l)?.[1])
    .filter((x) => x !== undefined)
    .map(Number);

describe('engine: retries', () => {
  const h = useEngine();

  it('makes count extra attempts and succeeds when a retry does', async () => {
    const rec = await h.run({ wpk: wpk([step('flaky', 'fail', { times: 2 }, { retries: { count: 3, delayMs: 1 } })]) });
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].status, 'succeeded');
    assert.equal(rec.steps[0].attempts, 3);
    assert.deepEqual(rec.steps[0].outputs, { value: 'recovered', attempts: 3 });
    assert.deepEqual(
      h.callsOf('fail').map((c) => c.attempt),
      [1, 2, 3],
    );
  });

  it('hands a retry its input afresh even when the first attempt changed the one it got, and checks a template-free input only when its step runs', async () => {
    const seen: unknown[] = [];
    const careless = testAdapter('careless', 'test double', {
      scribble: {
        description: 'changes its input, then fails once',
        input: { type: 'object', required: ['n'], properties: { n: { type: 'integer' }, list: { type: 'array' } } },
        async run(ctx, input: any) {
          seen.push(structuredClone(input));
          input.n = 999;
          input.list.push('scribbled');
          if (ctx.attempt === 1) throw new AgentError('network_error', 'try again');
          return {};
        },
      },
    });
    await h.restart({}, [careless]);
    const rec = await h.run({
      wpk: wpk([
        {
          name: 'twice',
          adapter: 'careless',
          action: 'scribble',
          with: { n: 1, list: ['a'] },
          retries: { count: 1, delayMs: 1 },
        },
        { name: 'bad', adapter: 'careless', action: 'scribble', with: { n: 'not a number', list: [] } },
      ]),
    });
    assert.deepEqual(seen[0], { n: 1, list: ['a'] });
    assert.deepEqual(
      seen[1],
      { n: 1, list: ['a'] },
      "the retry got the package's input, not the first attempt's leftovers",
    );
    assert.equal(rec.steps[0].status, 'succeeded');
    assert.equal(
      rec.steps[1].status,
      'failed',
      'an input that fails its check fails its own step, after the earlier ones ran',
    );
    assert.equal((rec.steps[1].error as any).type, 'validation_error');
    assert.equal(seen.length, 2, 'the bad step never ran');
  });

  it('gives up after count extra attempts with the last error', async () => {
    const rec = await h.run({
      wpk: wpk([
        step(
          'broken',
          'fail',
          { times: 99, type: 'network_error', message: 'connection refused' },
          { retries: { count: 2, delayMs: 1 } },
        ),
      ]),
    });
    assert.equal(rec.status, 'failed');
    assert.equal(rec.steps[0].attempts, 3);
    assert.equal(h.callsOf('fail').length, 3);
    assert.deepEqual(rec.error, { type: 'network_error', message: 'connection refused', step: 'broken' });
    assert.equal((rec.steps[0].error as any).type, 'network_error');
  });

  it('waits delayMs * backoff^(n-1) between attempts, capped by maxDelayMs', async () => {
    // Uncapped this would be 100, 300, 900 ms; capped: 100, 150, 150.
    const rec = await h.run({
      wpk: wpk([
        step('flaky', 'fail', { times: 3 }, { retries: { count: 3, delayMs: 100, backoff: 3, maxDelayMs: 150 } }),
      ]),
    });
    assert.equal(rec.status, 'completed');
    assert.deepEqual(retryDelaysLogged(h, rec.execution_id), [100, 150, 150]);
    const at = h.callsOf('fail').map((c) => c.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    assert.ok(gaps[0] >= 95, `first retry after ${gaps[0]} ms, expected >= 100`);
    assert.ok(gaps[1] >= 145, `second retry after ${gaps[1]} ms, expected >= 150`);
    assert.ok(gaps[2] >= 145, `third retry after ${gaps[2]} ms, expected >= 150`);
    assert.ok(gaps[2] < 850, `third retry after ${gaps[2]} ms: the 900 ms delay was not capped`);
  });

  it('never retries validation_error (thrown, or from the input schema) or an error marked retryable: false', async () => {
    const retries = { count: 3, delayMs: 1 };
    const thrown = await h.run({ wpk: wpk([step('v', 'fail', { times: 99, type: 'validation_error' }, { retries })]) });
    assert.equal((thrown.error as any).type, 'validation_error');
    assert.equal(thrown.steps[0].attempts, 1);

    const schema = await h.run({ wpk: wpk([step('s', 'strict', { n: 'not a number' }, { retries })]) });
    assert.equal((schema.error as any).type, 'validation_error');
    assert.match((schema.error as any).message, /fake\.strict/);
    assert.equal(schema.steps[0].attempts, 1);
    assert.equal(h.callsOf('strict').length, 0, 'an invalid input never reaches the action');

    const marked = await h.run({
      wpk: wpk([step('r', 'fail', { times: 99, type: 'adapter_error', retryable: false }, { retries })]),
    });
    assert.equal((marked.error as any).type, 'adapter_error');
    assert.equal(marked.steps[0].attempts, 1);

    assert.equal(h.callsOf('fail').length, 2);
    assert.equal(await counterValue(h.metrics, 'workflow_step_retries_total', { adapter: 'fake', action: 'fail' }), 0);
  });

  it('counts every retry in workflow_step_retries_total', async () => {
    await h.run({
      wpk: wpk([
        step('a', 'fail', { times: 2 }, { retries: { count: 5, delayMs: 1 } }),
        step('b', 'fail', { times: 9 }, { retries: { count: 1, delayMs: 1 } }),
      ]),
    });
    assert.equal(await counterValue(h.metrics, 'workflow_step_retries_total', { adapter: 'fake', action: 'fail' }), 3);
  });
});

describe('engine: timeouts', () => {
  const h = useEngine();

  it('aborts an attempt after timeoutSeconds with a timeout error, then retries it', async () => {
    const rec = await h.run({
      wpk: wpk([step('slow', 'hang', { hangAttempts: 1 }, { timeoutSeconds: 0.2, retries: { count: 2, delayMs: 1 } })]),
    });
    assert.equal(rec.status, 'completed');
    assert.equal(rec.steps[0].attempts, 2);
    assert.deepEqual(rec.steps[0].outputs, { value: 'did not hang' });
    const [first] = h.callsOf('hang');
    assert.ok(first.abortedAt, 'the first attempt saw its signal abort');
    assert.ok(first.abortedAt - first.at >= 190, `aborted after ${first.abortedAt - first.at} ms, expected ~200`);
    assert.ok(h.logs(rec.execution_id).some((l) => /attempt 1 failed \(timeout: .*timed out after 0.2s\)/.test(l)));
  });

  it('fails the step with timeout once every attempt timed out', async () => {
    const rec = await h.run({
      wpk: wpk([
        step('slow', 'hang', {}, { timeoutSeconds: 0.1, retries: { count: 1, delayMs: 1 } }),
        step('after', 'record'),
      ]),
    });
    assert.equal(rec.status, 'failed');
    assert.equal((rec.error as any).type, 'timeout');
    assert.equal((rec.error as any).step, 'slow');
    assert.equal(rec.steps[0].attempts, 2);
    assert.ok(h.callsOf('hang').every((c) => c.abortedAt !== undefined));
    assert.equal(rec.steps[1].status, 'not_run');
    assert.equal(h.callsOf('record').length, 0);
  });

  it('stops the whole run at spec.timeoutSeconds with timeout and runs no later step', async () => {
    const started = Date.now();
    const rec = await h.run({
      wpk: wpk(
        [
          step('a', 'ok', { value: 1 }),
          step('b', 'hang', {}, { retries: { count: 5, delayMs: 1 } }),
          step('c', 'record'),
        ],
        { timeoutSeconds: 0.5 },
      ),
    });
    const took = Date.now() - started;
    assert.equal(rec.status, 'failed');
    assert.equal((rec.error as any).type, 'timeout');
    assert.equal((rec.error as any).step, 'b');
    assert.match((rec.error as any).message, /deadline/);
    assert.equal(rec.steps[1].attempts, 1, 'a deadline timeout is not retried');
    assert.equal(rec.steps[2].status, 'not_run');
    assert.equal(h.callsOf('record').length, 0);
    assert.ok(took >= 450 && took < 4000, `the run took ${took} ms; expected about 500`);
  });

  it('counts an execution still running past its timeoutSeconds in runtime_agent_executions_overdue, until it ends', async () => {
    const overdue = () => counterValue(h.metrics, 'runtime_agent_executions_overdue', {});
    const id = h.submit({ wpk: wpk([step('deaf', 'stubborn', { ms: 1500 })], { timeoutSeconds: 0.2 }) });
    assert.equal(await overdue(), 0, 'within its deadline');
    await waitFor(async () => (await overdue()) === 1, 'the execution to be counted overdue', 5_000);
    await h.finished(id);
    assert.equal(await overdue(), 0);
  });

  it('never starts a retry after the whole-run deadline', async () => {
    const started = Date.now();
    const rec = await h.run({
      wpk: wpk([step('flaky', 'fail', { times: 99 }, { retries: { count: 50, delayMs: 150, backoff: 1 } })], {
        timeoutSeconds: 0.7,
      }),
    });
    const took = Date.now() - started;
    assert.equal(rec.status, 'failed');
    const attempts = h.callsOf('fail');
    assert.equal(rec.steps[0].attempts, attempts.length);
    assert.ok(
      attempts.length >= 2 && attempts.length <= 6,
      `${attempts.length} attempts in a 700 ms deadline with 150 ms delays`,
    );
    for (const a of attempts)
      assert.ok(a.at - started < 700, `an attempt started ${a.at - started} ms into a 700 ms deadline`);
    assert.ok(took < 1500, `the run took ${took} ms, past its 700 ms deadline`);
  });
});

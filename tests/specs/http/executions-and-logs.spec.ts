import assert from 'node:assert/strict';
import type { LogLine as StoredLine } from '../../../services/runtime-agent/src/store/types.js';
import { startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { call, errorPaths, SseReader, uniqueName } from './http-support.js';

interface Summary {
  execution_id: string;
  workflow_id: string;
  status: string;
  created_at: string;
}

/** A line of GET /logs/{id} is a stored log row. */
type LogLine = StoredLine;

const DONE = ['completed', 'failed', 'cancelled', 'rolled_back', 'rollback_failed'];

describe('HTTP API: GET /executions', () => {
  let agent: AgentProcess;
  const listA = uniqueName('list-a');
  const listB = uniqueName('list-b');
  const idsA: string[] = [];
  let failedB: string;
  let completedB: string;

  before(async () => {
    agent = await startAgent();
    for (let i = 0; i < 5; i++) {
      const r = await call(agent, 'POST', '/execute', {
        wpk_content: pkg(listA, [shellStep('a', ['echo', String(i)])]),
      });
      assert.equal(r.status, 202);
      idsA.push(r.body.execution_id);
    }
    completedB = (await call(agent, 'POST', '/execute', { wpk_content: pkg(listB, [shellStep('a', ['true'])]) })).body
      .execution_id;
    failedB = (await call(agent, 'POST', '/execute', { wpk_content: pkg(listB, [shellStep('a', ['false'])]) })).body
      .execution_id;
    for (const id of [...idsA, completedB, failedB]) await waitForStatus(agent, id, DONE);
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it('lists executions newest first', async () => {
    const r = await call(agent, 'GET', '/executions');
    assert.equal(r.status, 200);
    const ids = r.body.executions.map((e: Summary) => e.execution_id);
    assert.deepEqual(ids, [failedB, completedB, ...[...idsA].reverse()]);
    assert.equal(r.body.next_cursor, null);
    const first: Summary & Record<string, unknown> = r.body.executions[0];
    for (const k of [
      'execution_id',
      'workflow_id',
      'status',
      'dry_run',
      'current_step',
      'steps_completed',
      'steps_total',
      'error',
      'created_at',
      'started_at',
      'finished_at',
    ]) {
      assert.ok(k in first, `summary has ${k}`);
    }
  });

  it('filters by workflow_id', async () => {
    const r = await call(agent, 'GET', `/executions?workflow_id=${listA}-1.0.0`);
    assert.deepEqual(
      r.body.executions.map((e: Summary) => e.execution_id),
      [...idsA].reverse(),
    );
    assert.ok(r.body.executions.every((e: Summary) => e.workflow_id === `${listA}-1.0.0`));
    const none = await call(agent, 'GET', '/executions?workflow_id=never-ran-1.0.0');
    assert.deepEqual(none.body.executions, []);
  });

  it('filters by status, alone and together with workflow_id', async () => {
    const failed = await call(agent, 'GET', '/executions?status=failed');
    assert.deepEqual(
      failed.body.executions.map((e: Summary) => e.execution_id),
      [failedB],
    );
    const completedOfB = await call(agent, 'GET', `/executions?status=completed&workflow_id=${listB}-1.0.0`);
    assert.deepEqual(
      completedOfB.body.executions.map((e: Summary) => e.execution_id),
      [completedB],
    );
    const completed = await call(agent, 'GET', '/executions?status=completed');
    assert.equal(completed.body.executions.length, 6);
    assert.ok(completed.body.executions.every((e: Summary) => e.status === 'completed'));
  });

  it('pages with limit and cursor, covering every execution exactly once in order', async () => {
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const r: Awaited<ReturnType<typeof call>> = await call(
        agent,
        'GET',
        `/executions?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      assert.equal(r.status, 200);
      sizes.push(r.body.executions.length);
      seen.push(...r.body.executions.map((e: Summary) => e.execution_id));
      cursor = r.body.next_cursor;
      if (cursor === null) break;
    }
    assert.deepEqual(sizes, [2, 2, 2, 1]);
    assert.deepEqual(seen, [failedB, completedB, ...[...idsA].reverse()]);
  });

  it('pages a filtered list with the filter kept across pages', async () => {
    const first = await call(agent, 'GET', `/executions?workflow_id=${listA}-1.0.0&limit=3`);
    assert.equal(first.body.executions.length, 3);
    assert.equal(typeof first.body.next_cursor, 'string');
    const second = await call(
      agent,
      'GET',
      `/executions?workflow_id=${listA}-1.0.0&limit=3&cursor=${encodeURIComponent(first.body.next_cursor)}`,
    );
    assert.equal(second.body.next_cursor, null);
    assert.deepEqual(
      [...first.body.executions, ...second.body.executions].map((e: Summary) => e.execution_id),
      [...idsA].reverse(),
    );
  });

  it('answers a bad limit, status or cursor with 400 naming the query parameter', async () => {
    for (const [query, path] of [
      ['limit=0', 'query.limit'],
      ['limit=501', 'query.limit'],
      ['limit=abc', 'query.limit'],
      ['limit=-1', 'query.limit'],
      ['limit=2.5', 'query.limit'],
      ['status=done', 'query.status'],
      ['cursor=not-a-cursor', 'query.cursor'],
      ['cursor=', 'query.cursor'],
    ]) {
      const r = await call(agent, 'GET', `/executions?${query}`);
      assert.equal(r.status, 400, query);
      assert.equal(r.body.error_type, 'validation_error');
      assert.deepEqual(errorPaths(r), [path], query);
    }
    const both = await call(agent, 'GET', '/executions?limit=0&status=done');
    assert.deepEqual(errorPaths(both).sort(), ['query.limit', 'query.status']);
  });
});

describe('HTTP API: GET /logs/{id}', () => {
  let agent: AgentProcess;
  let id: string;
  before(async () => {
    agent = await startAgent();
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('logs'), [
        shellStep('first', ['sh', '-c', 'echo one; echo two; echo oops >&2']),
        shellStep('second', ['printf', 'three\\n']),
      ]),
    });
    id = r.body.execution_id;
    await waitForStatus(agent, id, DONE);
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it('answers {execution_id, logs, next_since} with seq, ts, level, step, stream and message on every line', async () => {
    const r = await call(agent, 'GET', `/logs/${id}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.execution_id, id);
    const logs: LogLine[] = r.body.logs;
    assert.ok(logs.length >= 6, `only ${logs.length} lines`);
    logs.forEach((l, i) => {
      assert.deepEqual(Object.keys(l).sort(), ['level', 'message', 'seq', 'step', 'stream', 'ts']);
      assert.equal(l.seq, i + 1, 'seq counts up from 1 without gaps');
      assert.ok(!Number.isNaN(Date.parse(l.ts)), l.ts);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(l.level), l.level);
    });
    assert.equal(r.body.next_since, logs[logs.length - 1].seq);
  });

  it("logs a shell step's stdout and stderr lines with their stream and step", async () => {
    const logs: LogLine[] = (await call(agent, 'GET', `/logs/${id}`)).body.logs;
    const out = logs.filter((l) => l.stream === 'stdout');
    assert.deepEqual(
      out.map((l) => [l.step, l.message]),
      [
        ['first', 'one'],
        ['first', 'two'],
        ['second', 'three'],
      ],
    );
    const err = logs.filter((l) => l.stream === 'stderr');
    assert.deepEqual(
      err.map((l) => [l.step, l.message]),
      [['first', 'oops']],
    );
    assert.ok(out[0].seq < out[1].seq, 'lines keep their order');
  });

  it('filters by step', async () => {
    const r = await call(agent, 'GET', `/logs/${id}?step=second`);
    const logs: LogLine[] = r.body.logs;
    assert.ok(logs.length > 0);
    assert.ok(logs.every((l) => l.step === 'second'));
    assert.ok(logs.some((l) => l.message === 'three'));
  });

  it('pages with since, limit and next_since, covering every line exactly once', async () => {
    const all: LogLine[] = (await call(agent, 'GET', `/logs/${id}`)).body.logs;
    const since = await call(agent, 'GET', `/logs/${id}?since=3`);
    assert.deepEqual(
      since.body.logs.map((l: LogLine) => l.seq),
      all.filter((l) => l.seq > 3).map((l) => l.seq),
    );
    const paged: number[] = [];
    let next = 0;
    for (let i = 0; i < 50; i++) {
      const r = await call(agent, 'GET', `/logs/${id}?since=${next}&limit=2`);
      assert.ok(r.body.logs.length <= 2);
      if (r.body.logs.length === 0) {
        assert.equal(r.body.next_since, next, 'an empty page keeps next_since where it was');
        break;
      }
      paged.push(...r.body.logs.map((l: LogLine) => l.seq));
      next = r.body.next_since;
    }
    assert.deepEqual(
      paged,
      all.map((l) => l.seq),
    );
  });

  it('answers an unknown execution with 404 and a bad query with 400', async () => {
    const missing = await call(agent, 'GET', '/logs/no-such-execution');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error_type, 'not_found');
    for (const [query, path] of [
      ['since=-1', 'query.since'],
      ['limit=0', 'query.limit'],
      ['follow=yes', 'query.follow'],
    ]) {
      const r = await call(agent, 'GET', `/logs/${id}?${query}`);
      assert.equal(r.status, 400, query);
      assert.deepEqual(errorPaths(r), [path]);
    }
  });

  it('follow=true streams log events as they happen and ends with an end event carrying the final status', async () => {
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('follow'), [shellStep('talk', ['sh', '-c', 'echo one; sleep 1; echo two'])]),
    });
    const live = r.body.execution_id;
    const res = await fetch(`${agent.url}/logs/${live}?follow=true`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const sse = new SseReader(res);
    try {
      let ev = await sse.next();
      while (ev && !(ev.event === 'log' && JSON.parse(ev.data).message === 'one')) ev = await sse.next();
      assert.ok(ev, 'the stream delivered "one"');
      // "one" arrived while the step still sleeps: the stream is live, not a replay after the end.
      const during = await call(agent, 'GET', `/execute/${live}`);
      assert.equal(during.body.status, 'running');
      const one = JSON.parse(ev.data) as LogLine;
      assert.equal(one.step, 'talk');
      assert.equal(one.stream, 'stdout');
      assert.equal(ev.id, String(one.seq));

      const rest: (typeof ev)[] = [];
      for (let next = await sse.next(); next; next = await sse.next()) rest.push(next);
      assert.ok(sse.closed, 'the server closed the stream after the end event');
      const end = rest[rest.length - 1];
      assert.equal(end.event, 'end');
      assert.deepEqual(JSON.parse(end.data), { execution_id: live, status: 'completed' });
      const two = rest.find((e) => e.event === 'log' && JSON.parse(e.data).message === 'two');
      assert.ok(two, 'the stream delivered "two"');
      assert.ok(two.at - ev.at >= 500, `"two" came ${two.at - ev.at} ms after "one"; the step sleeps 1 s in between`);
      // Every event has a seq greater than the one before: nothing repeated, nothing out of order.
      const seqs = [one.seq, ...rest.filter((e) => e.event === 'log').map((e) => JSON.parse(e.data).seq as number)];
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      assert.equal(new Set(seqs).size, seqs.length);
      const stored: LogLine[] = (await call(agent, 'GET', `/logs/${live}`)).body.logs;
      assert.equal(
        seqs[seqs.length - 1],
        stored[stored.length - 1].seq,
        'the stream delivered up to the last stored line',
      );
    } finally {
      await sse.cancel();
    }
  });

  it('follow=true on a finished execution replays the lines after since and ends at once', async () => {
    const res = await fetch(`${agent.url}/logs/${id}?follow=true&since=2&step=first`);
    const sse = new SseReader(res);
    const events = [];
    for (let ev = await sse.next(); ev; ev = await sse.next()) events.push(ev);
    const all: LogLine[] = (await call(agent, 'GET', `/logs/${id}?since=2&step=first`)).body.logs;
    const logs = events.filter((e) => e.event === 'log').map((e) => JSON.parse(e.data) as LogLine);
    assert.deepEqual(
      logs.map((l) => l.seq),
      all.map((l) => l.seq),
    );
    assert.ok(logs.every((l) => l.step === 'first' && l.seq > 2));
    assert.equal(events[events.length - 1].event, 'end');
    assert.equal(JSON.parse(events[events.length - 1].data).status, 'completed');
  });
});

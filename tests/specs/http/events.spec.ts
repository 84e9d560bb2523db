/**
 * GET /events through the agent process: the stored journal as a page, and as a server-sent event stream that
 * a client resumes with Last-Event-ID, across a SIGKILL and restart of the agent too, without a gap or a
 * duplicate; a token removed from the tokens file ends its open streams.
 */
import assert from 'node:assert/strict';
import type { JournalEvent } from '../../../services/runtime-agent/src/store/types.js';
import {
  agentsOnOneDataDir,
  startAgent,
  useAgentWithTokens,
  waitForStatus,
  type AgentProcess,
} from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { call, errorPaths, SseReader, type SseEvent, uniqueName } from './http-support.js';

/** The next SSE message within `ms`, or undefined once the stream ended. */
async function within(reader: SseReader, ms: number): Promise<SseEvent | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([reader.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function openStream(agent: AgentProcess, query: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${agent.url}/events?follow=true${query}`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  return new SseReader(res);
}

const journal = async (agent: AgentProcess, query = '') =>
  (await call(agent, 'GET', `/events?limit=10000${query}`)).body.events as JournalEvent[];

describe('HTTP API: GET /events', () => {
  let agent: AgentProcess;
  let id: string;
  before(async () => {
    agent = await startAgent();
    const r = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('journal'), [shellStep('one', ['true']), shellStep('two', ['true'])]),
    });
    id = r.body.execution_id;
    await waitForStatus(agent, id, ['completed']);
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it('answers the stored journal as a page, filtered by execution, workflow and type, with next_since', async () => {
    const all = await journal(agent);
    const mine = all.filter((e) => e.execution_id === id);
    assert.deepEqual(
      mine.map((e) => [e.type, e.step ?? null]),
      [
        ['execution.created', null],
        ['execution.status_changed', null],
        ['step.started', 'one'],
        ['step.finished', 'one'],
        ['step.started', 'two'],
        ['step.finished', 'two'],
        ['execution.status_changed', null],
      ],
    );
    assert.deepEqual(mine.at(-1)?.data, { from: 'running', to: 'completed' });
    for (const e of mine) assert.equal(e.workflow_id, mine[0].workflow_id);

    const page = await call(agent, 'GET', `/events?execution_id=${id}&types=step.finished&limit=1`);
    assert.equal(page.status, 200);
    assert.deepEqual(
      page.body.events.map((e: JournalEvent) => e.step),
      ['one'],
    );
    const next = await call(
      agent,
      'GET',
      `/events?execution_id=${id}&types=step.finished&since=${page.body.next_since}`,
    );
    assert.deepEqual(
      next.body.events.map((e: JournalEvent) => e.step),
      ['two'],
    );
    const byWorkflow = await call(agent, 'GET', `/events?workflow_id=${mine[0].workflow_id}`);
    assert.equal(byWorkflow.body.events.length, mine.length);
  });

  it('refuses an unknown query parameter or event type with 400 naming it', async () => {
    const r = await call(agent, 'GET', '/events?types=step.exploded&sinse=3');
    assert.equal(r.status, 400);
    assert.deepEqual(errorPaths(r).sort(), ['query.sinse', 'query.types'], 'every problem at once');
    const t = await call(agent, 'GET', '/events?types=step.exploded');
    assert.deepEqual(errorPaths(t), ['query.types']);
    const followed = await call(agent, 'GET', '/events?types=step.exploded&follow=true');
    assert.equal(followed.status, 400, 'a bad filter is refused before a stream opens');
    assert.deepEqual(errorPaths(followed), ['query.types']);
  });

  it('follows as SSE with id: <seq>, from since, and resumes from Last-Event-ID', async () => {
    const stored = await journal(agent, `&execution_id=${id}`);
    const reader = await openStream(agent, `&execution_id=${id}&since=${stored[1].seq}`);
    const got: SseEvent[] = [];
    for (let i = 2; i < stored.length; i++) got.push((await within(reader, 10_000))!);
    await reader.cancel();
    assert.deepEqual(
      got.map((e) => [e.id, e.event]),
      stored.slice(2).map((e) => [String(e.seq), e.type]),
    );
    assert.deepEqual(JSON.parse(got[0].data), stored[2]);

    const resumed = await openStream(agent, `&execution_id=${id}&since=0`, { 'Last-Event-ID': String(stored[4].seq) });
    assert.equal((await within(resumed, 10_000))?.id, String(stored[5].seq), 'Last-Event-ID wins over since');
    await resumed.cancel();
  });
});

describe('HTTP API: GET /events across a SIGKILL of the agent', function () {
  this.timeout(90_000); // two agent starts and a run
  const agents = agentsOnOneDataDir();

  it('resumes a stream from its last id after a restart without a gap or a duplicate', async () => {
    let agent = await agents.start();
    const reader = await openStream(agent, '&since=0');
    const steps = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => shellStep(n, ['sleep', '0.2']));
    const posted = await call(agent, 'POST', '/execute', {
      wpk_content: pkg(uniqueName('killed'), steps, {
        rollback: { enabled: true, handlers: [shellStep('cleanup', ['true'])] },
      }),
    });
    assert.equal(posted.status, 202, posted.text);
    const id = posted.body.execution_id;
    const before: SseEvent[] = [];
    for (;;) {
      const e = await within(reader, 20_000);
      assert.ok(e, 'the stream ended before the kill');
      before.push(e);
      if (e.event === 'step.started' && JSON.parse(e.data).step === 'c') break;
    }
    await agent.stop('SIGKILL');
    while (await reader.next().catch(() => undefined)); // what the dead agent still had in flight, if anything
    const lastId = reader.events.at(-1)!.id!;

    agent = await agents.start();
    const resumed = await openStream(agent, '', { 'Last-Event-ID': lastId });
    const after: SseEvent[] = [];
    for (;;) {
      const e = await within(resumed, 20_000);
      assert.ok(e, 'the resumed stream ended');
      after.push(e);
      const data = JSON.parse(e.data) as JournalEvent;
      if (data.execution_id === id && e.event === 'execution.status_changed' && data.data.to === 'rolled_back') break;
    }
    await resumed.cancel();

    const seen = [...reader.events, ...after].map((e) => Number(e.id));
    const stored = (await journal(agent)).map((e) => e.seq);
    assert.deepEqual(seen, stored.slice(0, seen.length), 'every stored event once, in order, none missing');
    assert.equal(new Set(seen).size, seen.length, 'no duplicate');
    const types = after.map((e) => e.event);
    assert.ok(types.includes('rollback.started'), 'the recovered rollback is on the resumed stream');
    const interrupted = after.find(
      (e) => e.event === 'execution.status_changed' && JSON.parse(e.data).data.to === 'failed',
    );
    assert.equal(JSON.parse(interrupted!.data).data.error.type, 'interrupted');
  });
});

describe('HTTP API: GET /events when the token of an open stream is revoked', function () {
  this.timeout(60_000);
  const { agent, token, rewrite } = useAgentWithTokens(
    { stays: ['viewer'], goes: ['viewer'] },
    { TOKENS_RELOAD_SECONDS: '1' },
  );

  it('ends the streams of a token removed from the file within the reload interval, and keeps the others', async () => {
    const staying = await openStream(agent, '', { authorization: `Bearer ${token('stays')}` });
    const going = await openStream(agent, '', { authorization: `Bearer ${token('goes')}` });
    rewrite({ stays: ['viewer'] });
    const last = await within(going, 10_000);
    assert.equal(last?.event, 'error');
    assert.equal(JSON.parse(last!.data).error_type, 'unauthorized');
    assert.equal(await within(going, 5000), undefined, 'the revoked stream ended');
    const r = await fetch(`${agent.url}/events`, { headers: { authorization: `Bearer ${token('goes')}` } });
    assert.equal(r.status, 401);
    await assert.rejects(within(staying, 1500), /no event within/, 'the other stream is still open, waiting');
    await staying.cancel();
  });
});

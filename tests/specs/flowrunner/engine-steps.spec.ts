/**
 * Step kinds and their outcomes at the target: conditions with the shared operator set
 * (docs/wpk-format.md, Conditions), loops (path or {{path}} source, loop variable and its _index, non-list sources
 * skipped, isolated iterations), onFailure stop/continue, and assertions counted in the stats.
 */
import assert from 'node:assert/strict';
import { echo, req, runFlow, useTarget } from './target.js';

interface Case {
  variable: string;
  operator: string;
  value?: unknown;
  holds: boolean;
}

const VARS = {
  status: 200,
  numText: '10',
  word: 'abc',
  name: 'ann',
  greeting: 'hello world',
  letters: ['a', 'b'],
  mixed: [1, 'two'],
  five: 5,
  yes: true,
  no: false,
  yesText: 'true',
  noText: 'false',
  nil: null,
  code: 'abc123',
  badPattern: '([unclosed',
  user: { tags: ['red', 'blue'], age: 42 },
  expected: 'ann',
};

const CASES: Case[] = [
  { variable: 'status', operator: 'equals', value: '200', holds: true },
  { variable: 'name', operator: 'equals', value: 'ann', holds: true },
  { variable: 'name', operator: 'equals', value: 'bob', holds: false },
  { variable: 'name', operator: 'equals', value: '{{expected}}', holds: true },
  { variable: 'user.tags[1]', operator: 'equals', value: 'blue', holds: true },
  { variable: 'user.age', operator: 'equals', value: 42, holds: true },
  { variable: 'name', operator: 'not_equals', value: 'bob', holds: true },
  { variable: 'status', operator: 'not_equals', value: 200, holds: false },
  { variable: 'numText', operator: 'greater_than', value: 9, holds: true },
  { variable: 'numText', operator: 'greater_than', value: '10', holds: false },
  { variable: 'word', operator: 'greater_than', value: 1, holds: false },
  { variable: 'missing', operator: 'greater_than', value: -1, holds: false },
  { variable: 'five', operator: 'less_than', value: 6, holds: true },
  { variable: 'five', operator: 'less_than', value: 5, holds: false },
  { variable: 'word', operator: 'less_than', value: 1e9, holds: false },
  { variable: 'five', operator: 'greater_equals', value: 5, holds: true },
  { variable: 'five', operator: 'greater_equals', value: '5.5', holds: false },
  { variable: 'five', operator: 'less_equals', value: '5', holds: true },
  { variable: 'five', operator: 'less_equals', value: 4, holds: false },
  { variable: 'greeting', operator: 'contains', value: 'o w', holds: true },
  { variable: 'greeting', operator: 'contains', value: 'xyz', holds: false },
  { variable: 'letters', operator: 'contains', value: 'b', holds: true },
  { variable: 'letters', operator: 'contains', value: 'c', holds: false },
  { variable: 'greeting', operator: 'starts_with', value: 'hell', holds: true },
  { variable: 'greeting', operator: 'starts_with', value: 'world', holds: false },
  { variable: 'greeting', operator: 'ends_with', value: 'world', holds: true },
  { variable: 'greeting', operator: 'ends_with', value: 'hell', holds: false },
  { variable: 'code', operator: 'matches_regex', value: '^[a-z]+\\d+$', holds: true },
  { variable: 'code', operator: 'matches_regex', value: '^\\d', holds: false },
  // A pattern that only turns bad at run time (a constant one is refused when the flowmap is parsed).
  { variable: 'code', operator: 'matches_regex', value: '{{badPattern}}', holds: false },
  { variable: 'name', operator: 'exists', holds: true },
  { variable: 'no', operator: 'exists', holds: true },
  { variable: 'missing', operator: 'exists', holds: false },
  { variable: 'nil', operator: 'exists', holds: false },
  { variable: 'missing', operator: 'not_exists', holds: true },
  { variable: 'nil', operator: 'not_exists', holds: true },
  { variable: 'name', operator: 'not_exists', holds: false },
  { variable: 'five', operator: 'is_number', holds: true },
  { variable: 'word', operator: 'is_number', holds: false },
  { variable: 'name', operator: 'is_text', holds: true },
  { variable: 'five', operator: 'is_text', holds: false },
  { variable: 'yes', operator: 'is_boolean', holds: true },
  { variable: 'name', operator: 'is_boolean', holds: false },
  { variable: 'letters', operator: 'is_array', holds: true },
  { variable: 'name', operator: 'is_array', holds: false },
  { variable: 'yes', operator: 'is_true', holds: true },
  { variable: 'yesText', operator: 'is_true', holds: true },
  { variable: 'no', operator: 'is_true', holds: false },
  { variable: 'no', operator: 'is_false', holds: true },
  { variable: 'noText', operator: 'is_false', holds: true },
  { variable: 'yes', operator: 'is_false', holds: false },
];

describe('FlowRunner engine: condition steps', () => {
  const target = useTarget();

  it('takes then or else for every operator of the shared set', async () => {
    const steps = CASES.map((c, i) => ({
      id: `c${i}`,
      type: 'condition',
      conditionData: { variable: c.variable, operator: c.operator, value: c.value },
      then: [req(`then${i}`, `/then/${i}`)],
      else: [req(`else${i}`, `/else/${i}`)],
    }));
    const { logs, runner } = await runFlow({ flow_target_url: target.url }, { staticVars: VARS, steps });
    const taken = new Map(target.requests.map((r) => [Number(r.path.split('/')[2]), r.path.split('/')[1]]));
    const wrong = CASES.flatMap((c, i) =>
      taken.get(i) === (c.holds ? 'then' : 'else')
        ? []
        : [
            `${c.variable} ${c.operator} ${JSON.stringify(c.value)}: took ${taken.get(i)}, expected ${c.holds ? 'then' : 'else'}`,
          ],
    );
    assert.deepEqual(wrong, []);
    assert.equal(target.requests.length, CASES.length, 'exactly one branch per condition');
    // The bad regex is false, logged, and did not crash the flow.
    assert.ok(
      logs.some((l) => l.level === 'warn' && /regular expression|regex/i.test(l.message)),
      JSON.stringify(logs),
    );
    assert.equal(runner.snapshot().flow_count, 1);
  });

  it('evaluates against values extracted earlier in the flow, and runs nothing for a false condition without else', async () => {
    target.on('/plan', (_r, n) => ({ json: { plan: n === 1 ? 'pro' : 'free' } }));
    await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('plan', '/plan', { extract: { plan: 'body.plan' } }),
          {
            id: 'isPro',
            type: 'condition',
            conditionData: { variable: 'plan', operator: 'equals', value: 'pro' },
            then: [req('pro', '/pro')],
          },
          req('last', '/last'),
        ],
      },
      2,
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/plan', '/pro', '/last', '/plan', '/last'],
    );
  });

  it('nests conditions and loops in branches', async () => {
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { a: 1, ids: ['x', 'y'] },
        steps: [
          {
            id: 'outer',
            type: 'condition',
            conditionData: { variable: 'a', operator: 'equals', value: 1 },
            then: [
              {
                id: 'inner',
                type: 'condition',
                conditionData: { variable: 'a', operator: 'greater_than', value: 5 },
                then: [req('big', '/big')],
                else: [{ id: 'each', type: 'loop', source: 'ids', steps: [req('small', '/small/{{item}}')] }],
              },
            ],
          },
        ],
      },
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/small/x', '/small/y'],
    );
  });
});

describe('FlowRunner engine: loop steps', () => {
  const target = useTarget();

  it('iterates a list given by path, with the default variable item and item_index', async () => {
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { ids: [10, 20, 30] },
        steps: [{ id: 'each', type: 'loop', source: 'ids', steps: [req('get', '/item/{{item}}/{{item_index}}')] }],
      },
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/item/10/0', '/item/20/1', '/item/30/2'],
    );
  });

  it('iterates a list given as {{path}} into a response, with a named loop variable', async () => {
    target.on('/users', { json: { data: { users: [{ id: 'u1' }, { id: 'u2' }] } } });
    await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('users', '/users', { extract: { result: 'body' } }),
          {
            id: 'each',
            type: 'loop',
            source: '{{result.data.users}}',
            loopVariable: 'user',
            steps: [
              echo('get', { id: '{{user.id}}', index: '##VAR:unquoted:user_index##', user: '##VAR:unquoted:user##' }),
            ],
          },
          {
            id: 'loopAgain',
            type: 'loop',
            source: '{{ response_users_body.data.users }}',
            loopVariable: 'u',
            steps: [req('again', '/again/{{u.id}}')],
          },
        ],
      },
    );
    assert.deepEqual(target.bodies('/echo/get'), [
      { id: 'u1', index: 0, user: { id: 'u1' } },
      { id: 'u2', index: 1, user: { id: 'u2' } },
    ]);
    assert.deepEqual(target.hits('/again/u1').length + target.hits('/again/u2').length, 2);
  });

  it('logs and skips a source that is not a list, and the flow goes on', async () => {
    const { logs, runner } = await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { notList: 'abc', obj: { a: 1 } },
        steps: [
          { id: 'text', type: 'loop', source: 'notList', steps: [req('in1', '/in1')] },
          { id: 'object', type: 'loop', source: '{{obj}}', steps: [req('in2', '/in2')] },
          { id: 'absent', type: 'loop', source: 'nowhere.list', steps: [req('in3', '/in3')] },
          req('after', '/after'),
        ],
      },
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/after'],
    );
    for (const id of ['text', 'object', 'absent'])
      assert.ok(
        logs.some((l) => (l.level === 'warn' || l.level === 'info') && l.message.includes(id)),
        `no log for ${id}: ${JSON.stringify(logs)}`,
      );
    assert.equal(runner.snapshot().flows_failed, 0);
  });

  it('gives each iteration an isolated copy of the context', async () => {
    target.on('/set', (r) => ({ json: { v: `from-${r.query.get('i')}` } }));
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { ids: ['a', 'b', 'c'], seen: 'outer' },
        steps: [
          {
            id: 'each',
            type: 'loop',
            source: 'ids',
            steps: [
              echo('before', { seen: '{{seen}}', item: '{{item}}' }),
              req('set', '/set?i={{item}}', { extract: { seen: 'body.v' } }),
              echo('inside', { seen: '{{seen}}' }),
            ],
          },
          echo('after', { seen: '{{seen}}', item: '{{item}}' }),
        ],
      },
    );
    // What an iteration extracts is its own: the next iteration starts from the loop's context again.
    assert.deepEqual(target.bodies('/echo/before'), [
      { seen: 'outer', item: 'a' },
      { seen: 'outer', item: 'b' },
      { seen: 'outer', item: 'c' },
    ]);
    assert.deepEqual(target.bodies('/echo/inside'), [{ seen: 'from-a' }, { seen: 'from-b' }, { seen: 'from-c' }]);
    assert.deepEqual(target.bodies('/echo/after'), [{ seen: 'outer', item: '' }]);
  });

  it('ends the flow instance when a step inside a loop fails with onFailure stop', async () => {
    target.on('/item/2', { status: 404 });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { ids: [1, 2, 3] },
        steps: [
          { id: 'each', type: 'loop', source: 'ids', steps: [req('get', '/item/{{item}}')] },
          req('after', '/after'),
        ],
      },
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/item/1', '/item/2'],
    );
    assert.equal(runner.snapshot().flows_failed, 1);
  });
});

describe('FlowRunner engine: onFailure', () => {
  const target = useTarget();

  it('stop (the default) ends this flow instance at a status >= 300; the next instance starts again', async () => {
    target.on('/fail', { status: 404 });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      { steps: [req('first', '/first'), req('fail', '/fail'), req('never', '/never')] },
      2,
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/first', '/fail', '/first', '/fail'],
    );
    const s = runner.snapshot();
    assert.equal(s.flows_failed, 2);
    assert.equal(s.errors.http_4xx, 2);
  });

  it('a redirect (3xx) is a failure and is not followed', async () => {
    target.on('/moved', { status: 302, headers: { Location: '/elsewhere' } });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      { steps: [req('moved', '/moved'), req('next', '/next')] },
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/moved'],
    );
    assert.equal(runner.snapshot().errors.http_3xx, 1);
    assert.equal(runner.snapshot().status_classes['3xx'], 1);
  });

  it('continue goes on after a failure, extraction still attempted, flow_error set', async () => {
    target.on('/fail', { status: 409, json: { reason: 'conflict', id: 'c-1' } });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          echo('start', { flowError: '##VAR:unquoted:flow_error##' }),
          req('fail', '/fail', { onFailure: 'continue', extract: { why: 'body.reason', status: '.status' } }),
          echo('next', { why: '{{why}}', status: '##VAR:unquoted:status##', flowError: '{{flow_error}}' }),
        ],
      },
    );
    assert.deepEqual(target.bodies('/echo/start'), [{ flowError: null }]);
    const [b] = target.bodies('/echo/next');
    assert.equal(b.why, 'conflict');
    assert.equal(b.status, 409);
    assert.ok(b.flowError.includes('fail'), b.flowError);
    assert.equal(runner.snapshot().errors.http_4xx, 1);
  });

  it('continue after a network error sets the step’s extraction variables to null', async () => {
    target.on('/drop', { drop: true });
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { token: 'stale' },
        steps: [
          req('drop', '/drop', {
            onFailure: 'continue',
            retries: { count: 0, delayMs: 0 },
            extract: { token: 'body.token' },
          }),
          echo('next', { token: '##VAR:unquoted:token##' }),
        ],
      },
    );
    assert.deepEqual(target.bodies('/echo/next'), [{ token: null }]);
  });

  it('a network error with stop ends the flow instance', async () => {
    target.on('/drop', { drop: true });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      { steps: [req('drop', '/drop', { retries: { count: 0, delayMs: 0 } }), req('never', '/never')] },
    );
    assert.deepEqual(
      target.requests.map((r) => r.path),
      ['/drop'],
    );
    assert.equal(runner.snapshot().errors.network, 1);
    assert.equal(runner.snapshot().flows_failed, 1);
  });
});

describe('FlowRunner engine: assertions', () => {
  const target = useTarget();

  it('records passes and failures against response keys and extracted variables, per step, without stopping', async () => {
    target.on('/a', { json: { token: 'abc', items: [1, 2] } });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('a', '/a', {
            extract: { token: 'body.token' },
            assertions: [
              { variable: 'response_a_status', operator: 'equals', value: 200 },
              { variable: 'response_a_body.items', operator: 'is_array' },
              { variable: 'token', operator: 'equals', value: 'abc' },
              { variable: 'token', operator: 'equals', value: 'xyz' },
              { variable: 'response_a_error', operator: 'exists' },
            ],
          }),
          req('b', '/b', { assertions: [{ variable: 'response_b_status', operator: 'less_than', value: 300 }] }),
        ],
      },
      2,
    );
    assert.equal(target.hits('/b').length, 2, 'failed assertions do not stop the flow');
    const s = runner.snapshot();
    assert.equal(s.assertions_passed, 8);
    assert.equal(s.assertions_failed, 4);
    assert.equal(s.per_step.a!.assertions_passed, 6);
    assert.equal(s.per_step.a!.assertions_failed, 4);
    assert.equal(s.per_step.b!.assertions_passed, 2);
    assert.equal(s.per_step.b!.assertions_failed, 0);
    assert.equal(s.flows_failed, 0);
  });

  it('records assertions of a step that failed with onFailure stop', async () => {
    target.on('/a', { status: 404 });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('a', '/a', {
            assertions: [
              { variable: 'response_a_status', operator: 'equals', value: 200 },
              { variable: 'response_a_status', operator: 'equals', value: 404 },
            ],
          }),
        ],
      },
    );
    const s = runner.snapshot();
    assert.equal(s.assertions_failed, 1);
    assert.equal(s.assertions_passed, 1);
    assert.equal(s.per_step.a!.assertions_failed, 1);
  });
});

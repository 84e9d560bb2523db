/**
 * What a flow instance knows and sends: its starting context (userId, userFakeIp, flowInstance,
 * flowStartTimeEpoch, flow_error, a deep copy of staticVars), substitution in URL, headers and body
 * (`{{path}}`, `##VAR:string:…##`, `##VAR:unquoted:…##`), extraction from responses, and the
 * `response_<id>_*` keys every request leaves behind. Read at the target, through later requests.
 */
import assert from 'node:assert/strict';
import { compileSteps, type CompiledRequest } from '../../../adapters/flowrunner/engine/compile.js';
import { closedPort, echo, makeFlowmap, req, runFlow, useTarget } from './target.js';

describe('FlowRunner engine: context and substitution', () => {
  const target = useTarget();

  it('starts each flow instance with userId, userFakeIp, flowInstance 1, 2, …, flowStartTimeEpoch and flow_error', async () => {
    const before = Date.now();
    await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          echo('ctx', {
            userId: '{{userId}}',
            ip: '{{userFakeIp}}',
            instance: '##VAR:unquoted:flowInstance##',
            epoch: '##VAR:unquoted:flowStartTimeEpoch##',
            flowError: '##VAR:unquoted:flow_error##',
          }),
        ],
      },
      3,
    );
    const after = Date.now();
    const bodies = target.bodies('/echo/ctx');
    assert.equal(bodies.length, 3);
    assert.deepEqual(
      bodies.map((b) => b.instance),
      [1, 2, 3],
    );
    for (const [i, b] of bodies.entries()) {
      assert.equal(typeof b.userId, 'string');
      assert.ok(b.userId.length > 0);
      assert.match(b.ip, /^\d{1,3}(\.\d{1,3}){3}$/);
      // The address is the one the instance sends in X-Forwarded-For.
      assert.equal(target.hits('/echo/ctx')[i]!.headers['x-forwarded-for'], b.ip);
      assert.equal(typeof b.epoch, 'number');
      assert.ok(
        b.epoch >= Math.floor(before / 1000) - 1 && b.epoch <= Math.ceil(after / 1000) + 1,
        `epoch seconds ${b.epoch}`,
      );
      assert.equal(b.flowError, null);
    }
    assert.equal(new Set(bodies.map((b) => b.userId)).size, 1, 'one user, one userId');
  });

  it('gives each simulated user its own userId', async () => {
    await runFlow({ flow_target_url: target.url, sim_users: 3 }, { steps: [echo('who', { userId: '{{userId}}' })] }, 1);
    assert.equal(new Set(target.bodies('/echo/who').map((b) => b.userId)).size, 3);
  });

  it('substitutes {{path}} with dots and [i] in URL, headers and body; a missing value is empty', async () => {
    await runFlow(
      { flow_target_url: target.url },
      {
        headers: { 'X-Flow': 'flow-{{user.name}}' },
        staticVars: { user: { name: 'ann', tags: ['red', 'blue'], address: { city: 'Oslo' } }, n: 5 },
        steps: [
          req('s', '/s/{{user.name}}/{{user.tags[1]}}?city={{user.address.city}}&gone={{nothing.here}}&n={{ n }}', {
            method: 'POST',
            headers: { 'X-Tag': '{{user.tags[0]}}', 'X-Missing': '[{{missing}}]' },
            body: {
              greeting: 'hi {{user.name}} from {{user.address.city}}',
              list: ['{{user.tags[0]}}', 'x{{missing}}y'],
            },
          }),
        ],
      },
    );
    const [r] = target.hits('/s/ann/blue');
    assert.ok(r, JSON.stringify(target.requests.map((x) => x.url)));
    assert.equal(r.url, '/s/ann/blue?city=Oslo&gone=&n=5');
    assert.equal(r.headers['x-tag'], 'red');
    assert.equal(r.headers['x-missing'], '[]');
    assert.equal(r.headers['x-flow'], 'flow-ann');
    assert.deepEqual(JSON.parse(r.body), { greeting: 'hi ann from Oslo', list: ['red', 'xy'] });
    assert.match(String(r.headers['content-type']), /application\/json/);
  });

  it('injects ##VAR:string:…## as text and ##VAR:unquoted:…## as the raw JSON value; malformed markers stay', async () => {
    const staticVars = {
      n: 5,
      flag: true,
      text: 'plain',
      obj: { a: 1, b: [true, null] },
      arr: [1, 'two', { three: 3 }],
      nil: null,
    };
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars,
        steps: [
          echo('m', {
            sN: '##VAR:string:n##',
            sFlag: '##VAR:string:flag##',
            sText: '##VAR:string:text##',
            sObj: '##VAR:string:obj##',
            uN: '##VAR:unquoted:n##',
            uFlag: '##VAR:unquoted:flag##',
            uText: '##VAR:unquoted:text##',
            uObj: '##VAR:unquoted:obj##',
            uArr: '##VAR:unquoted:arr##',
            uNil: '##VAR:unquoted:nil##',
            uDeep: '##VAR:unquoted:arr[2].three##',
            nested: { inner: ['##VAR:unquoted:obj.b##'] },
            mixed: 'n is ##VAR:string:n##!',
            badKind: '##VAR:bogus:n##',
            unclosed: '##VAR:string:n',
            noName: '##VAR:unquoted:##',
            badBraces: '{{a..b}}',
          }),
        ],
      },
    );
    const [b] = target.bodies('/echo/m');
    assert.equal(b.sN, '5');
    assert.equal(b.sFlag, 'true');
    assert.equal(b.sText, 'plain');
    assert.equal(typeof b.sObj, 'string');
    assert.deepEqual(JSON.parse(b.sObj), staticVars.obj);
    assert.equal(b.uN, 5);
    assert.equal(b.uFlag, true);
    assert.equal(b.uText, 'plain');
    assert.deepEqual(b.uObj, staticVars.obj);
    assert.deepEqual(b.uArr, staticVars.arr);
    assert.equal(b.uNil, null);
    assert.ok('uNil' in b);
    assert.equal(b.uDeep, 3);
    assert.deepEqual(b.nested, { inner: [[true, null]] });
    assert.equal(b.mixed, 'n is 5!');
    assert.equal(b.badKind, '##VAR:bogus:n##');
    assert.equal(b.unclosed, '##VAR:string:n');
    assert.equal(b.noName, '##VAR:unquoted:##');
    assert.equal(b.badBraces, '{{a..b}}');
  });

  it('substitutes in a string body as text', async () => {
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { who: 'ann', n: 2 },
        steps: [req('raw', '/raw', { method: 'PUT', body: 'name={{who}}&n=##VAR:string:n##' })],
      },
    );
    const [r] = target.hits('/raw');
    assert.equal(r!.method, 'PUT');
    assert.equal(r!.body, 'name=ann&n=2');
  });

  it('gives each flow instance a deep copy of staticVars: shadowing one in an instance does not reach the next', async () => {
    target.on('/login', (_r, n) => ({ json: { token: `token-${n}`, settings: { mode: `changed-${n}` } } }));
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { token: 'initial', settings: { mode: 'default' } },
        steps: [
          echo('before', { token: '{{token}}', mode: '{{settings.mode}}' }),
          req('login', '/login', { extract: { token: 'body.token', settings: 'body.settings' } }),
          echo('after', { token: '{{token}}', mode: '{{settings.mode}}' }),
        ],
      },
      3,
    );
    assert.deepEqual(target.bodies('/echo/before'), [
      { token: 'initial', mode: 'default' },
      { token: 'initial', mode: 'default' },
      { token: 'initial', mode: 'default' },
    ]);
    assert.deepEqual(target.bodies('/echo/after'), [
      { token: 'token-1', mode: 'changed-1' },
      { token: 'token-2', mode: 'changed-2' },
      { token: 'token-3', mode: 'changed-3' },
    ]);
  });

  it('keeps concurrent users from seeing each other’s extractions', async () => {
    target.on('/me', (r) => ({ json: { me: r.headers['x-user'] } }));
    await runFlow(
      { flow_target_url: target.url, sim_users: 4 },
      {
        staticVars: { me: 'nobody' },
        steps: [
          req('me', '/me', { headers: { 'X-User': '{{userId}}' }, extract: { me: 'body.me' } }),
          echo('check', { me: '{{me}}', userId: '{{userId}}' }),
        ],
      },
      3,
    );
    const bodies = target.bodies('/echo/check');
    assert.equal(bodies.length, 12);
    for (const b of bodies) assert.equal(b.me, b.userId);
  });
});

describe('FlowRunner engine: extraction and response keys', () => {
  const target = useTarget();

  it('extracts .status, headers (case-insensitive), body, body.path and implicit body paths', async () => {
    const loginBody = { token: 't-1', user: { plan: 'pro', ids: [7, 8] } };
    target.on('/login', { status: 201, headers: { 'X-Session': 'sess-9', Location: '/users/7' }, json: loginBody });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('login', '/login', {
            method: 'POST',
            body: {},
            extract: {
              st: '.status',
              sess: 'headers.X-SESSION',
              loc: 'headers.location',
              all: 'body',
              tok: 'body.token',
              plan: 'user.plan',
              second: 'body.user.ids[1]',
              firstImplicit: 'user.ids[0]',
            },
          }),
          echo('use', {
            st: '##VAR:unquoted:st##',
            sess: '{{sess}}',
            loc: '{{loc}}',
            all: '##VAR:unquoted:all##',
            tok: '{{tok}}',
            plan: '{{plan}}',
            second: '##VAR:unquoted:second##',
            firstImplicit: '##VAR:unquoted:firstImplicit##',
          }),
        ],
      },
    );
    assert.deepEqual(target.bodies('/echo/use'), [
      {
        st: 201,
        sess: 'sess-9',
        loc: '/users/7',
        all: loginBody,
        tok: 't-1',
        plan: 'pro',
        second: 8,
        firstImplicit: 7,
      },
    ]);
    assert.equal(runner.snapshot().errors.extraction, 0);
  });

  it('sets a variable whose extraction fails to null, with a warning and an extraction error', async () => {
    target.on('/data', { json: { a: 1 } });
    const { runner, logs } = await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { missingBody: 'stale', missingHeader: 'stale' },
        steps: [
          req('data', '/data', { extract: { missingBody: 'body.b.c', missingHeader: 'headers.X-Nope', ok: 'body.a' } }),
          echo('use', {
            b: '##VAR:unquoted:missingBody##',
            h: '##VAR:unquoted:missingHeader##',
            ok: '##VAR:unquoted:ok##',
            asText: '[{{missingBody}}]',
          }),
        ],
      },
    );
    assert.deepEqual(target.bodies('/echo/use'), [{ b: null, h: null, ok: 1, asText: '[]' }]);
    assert.equal(runner.snapshot().errors.extraction, 2);
    assert.ok(
      logs.some((l) => l.level === 'warn' && l.message.includes('missingBody')),
      JSON.stringify(logs),
    );
    assert.ok(
      logs.some((l) => l.level === 'warn' && l.message.includes('missingHeader')),
      JSON.stringify(logs),
    );
    // A failed extraction is not a failed step: the flow went on.
    assert.equal(runner.snapshot().flows_failed, 0);
  });

  it('stores response_<id>_status, _headers, _body and _error for a success', async () => {
    target.on('/one', { status: 200, headers: { 'X-Trace': 'tr-1' }, json: { items: [{ id: 'i-1' }] } });
    await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('one', '/one'),
          req(
            'two',
            '/two/{{response_one_status}}/{{response_one_body.items[0].id}}?trace={{response_one_headers.x-trace}}&err={{response_one_error}}',
          ),
          echo('use', {
            status: '##VAR:unquoted:response_one_status##',
            body: '##VAR:unquoted:response_one_body##',
            error: '##VAR:unquoted:response_one_error##',
            trace: '{{response_one_headers.x-trace}}',
          }),
        ],
      },
    );
    assert.deepEqual(
      target.requests.map((r) => r.url),
      ['/one', '/two/200/i-1?trace=tr-1&err=', '/echo/use'],
    );
    assert.deepEqual(target.bodies('/echo/use'), [
      { status: 200, body: { items: [{ id: 'i-1' }] }, error: null, trace: 'tr-1' },
    ]);
  });

  it('stores a failed response (status >= 300) with a non-empty _error', async () => {
    target.on('/missing', { status: 404, json: { reason: 'no such thing' } });
    await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('missing', '/missing', { onFailure: 'continue' }),
          echo('use', {
            status: '##VAR:unquoted:response_missing_status##',
            body: '##VAR:unquoted:response_missing_body##',
            error: '{{response_missing_error}}',
          }),
        ],
      },
    );
    const [b] = target.bodies('/echo/use');
    assert.equal(b.status, 404);
    assert.deepEqual(b.body, { reason: 'no such thing' });
    assert.match(b.error, /404/);
  });

  it('stores a network error: status null and a non-empty _error', async () => {
    const port = await closedPort();
    await runFlow(
      { flow_target_url: target.url, override_step_url_host: false },
      {
        steps: [
          req('down', `http://127.0.0.1:${port}/x`, { onFailure: 'continue', retries: { count: 0, delayMs: 0 } }),
          echo('use', {
            status: '##VAR:unquoted:response_down_status##',
            error: '{{response_down_error}}',
            flowError: '{{flow_error}}',
          }),
        ],
      },
    );
    const [b] = target.bodies('/echo/use');
    assert.equal(b.status, null);
    assert.ok(b.error.length > 0);
    assert.match(b.flowError, /down/);
  });

  it('decodes a response that an assertion, a condition, a loop, a header or an extraction reads, and only those', () => {
    const reads = (raw: Record<string, unknown>) =>
      Object.fromEntries(
        compileSteps(makeFlowmap(raw), () => {})
          .filter((s): s is CompiledRequest => s.type === 'request')
          .map((s) => [s.step.id, s.readsResponse]),
      );
    assert.deepEqual(
      reads({ steps: [req('a', '/a'), req('b', '/b?s={{response_a_status}}&e={{response_a_error}}')] }),
      {
        a: false,
        b: false,
      },
    );
    assert.deepEqual(
      reads({
        headers: { 'X-From-A': '{{response_a_headers.x-trace}}' },
        steps: [
          req('a', '/a'),
          req('b', '/b', { assertions: [{ variable: 'response_b_body.ok', operator: 'equals', value: true }] }),
          req('c', '/c', { extract: { token: 'body.token' } }),
          {
            id: 'if',
            type: 'condition',
            conditionData: { variable: 'x', operator: 'equals', value: '{{response_d_body.plan}}' },
            then: [],
            else: [],
          },
          req('d', '/d'),
          { id: 'each', type: 'loop', source: '{{response_e_body.items}}', loopVariable: 'i', steps: [] },
          req('e', '/e'),
          req('f', '/f'),
        ],
      }),
      { a: true, b: true, c: true, d: true, e: true, f: false },
    );
  });

  it('keeps the status and error of a response nothing else reads, and counts it as any other', async () => {
    target.on('/plain', { status: 201, json: { ok: true } });
    target.on('/gone', { status: 410, json: { ok: false } });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('plain', '/plain'),
          req('gone', '/gone', { onFailure: 'continue', retries: { count: 0, delayMs: 0 } }),
          echo('use', {
            status: '##VAR:unquoted:response_plain_status##',
            goneStatus: '##VAR:unquoted:response_gone_status##',
            goneError: '{{response_gone_error}}',
          }),
        ],
      },
    );
    assert.deepEqual(target.bodies('/echo/use'), [{ status: 201, goneStatus: 410, goneError: 'HTTP 410' }]);
    const s = runner.snapshot();
    assert.equal(s.total_requests, 3);
    assert.equal(s.status_classes['2xx'], 2);
    assert.equal(s.errors.http_4xx, 1);
  });

  it('cuts a response body over 1 MiB to 1 MiB', async () => {
    const big = 'a'.repeat(3 * 1024 * 1024);
    target.on('/big', { raw: big, headers: { 'content-type': 'text/plain' } });
    const { runner } = await runFlow(
      { flow_target_url: target.url },
      {
        steps: [
          req('big', '/big', {
            extract: { whole: 'body' },
            assertions: [{ variable: 'whole', operator: 'matches_regex', value: '^a{1048576}$' }],
          }),
          req('len', '/len', { method: 'POST', body: '{{response_big_body}}' }),
        ],
      },
    );
    const [r] = target.hits('/len');
    assert.equal(r!.body.length, 1024 * 1024);
    assert.equal(runner.snapshot().assertions_passed, 1);
  });
});

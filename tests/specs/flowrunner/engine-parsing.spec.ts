/**
 * FlowRunner input validation: the run configuration (FastAPI-style problems, the
 * display names FlowRunner's clients send) and flowmaps (fields, step kinds, every problem with its
 * location), and that every 1.x schemaVersion means the same flow.
 */
import assert from 'node:assert/strict';
import { parseConfig, parseFlowmap, type FieldProblem } from '../../../adapters/flowrunner/engine/index.js';
import { OPERATORS } from '../../../adapters/shared/conditions.js';
import { runFlow, useTarget } from './target.js';

function problems(r: { ok: true } | { ok: false; problems: FieldProblem[] }): FieldProblem[] {
  assert.equal(r.ok, false, 'expected the input to be rejected');
  return (r as { problems: FieldProblem[] }).problems;
}

/** The problem whose location ends with `tail`. */
function at(list: FieldProblem[], ...tail: Array<string | number>): FieldProblem {
  const found = list.find(
    (p) => p.loc.length >= tail.length && tail.every((t, i) => p.loc[p.loc.length - tail.length + i] === t),
  );
  assert.ok(found, `no problem at ${JSON.stringify(tail)} in ${JSON.stringify(list)}`);
  return found;
}

function wellFormed(list: FieldProblem[]): void {
  for (const p of list) {
    assert.ok(Array.isArray(p.loc) && p.loc.length > 0, JSON.stringify(p));
    assert.equal(typeof p.msg, 'string');
    assert.ok(p.msg.length > 0);
    assert.equal(typeof p.type, 'string');
    assert.ok(p.type.length > 0);
  }
}

describe('FlowRunner engine: parseConfig', () => {
  it('fills the documented defaults around the two required fields', () => {
    const r = parseConfig({ flow_target_url: 'https://api.example.com', sim_users: 3 });
    assert.ok(r.ok);
    assert.equal(r.config.flow_target_url, 'https://api.example.com');
    assert.equal(r.config.sim_users, 3);
    assert.equal(r.config.xff_header_name, 'X-Forwarded-For');
    assert.equal(r.config.min_sleep_ms, 100);
    assert.equal(r.config.max_sleep_ms, 1000);
    assert.equal(r.config.debug, false);
    assert.equal(r.config.override_step_url_host, true);
    assert.equal(r.config.flow_target_dns_override, null);
  });

  it("accepts the fields' display names as aliases", () => {
    const r = parseConfig({
      'Flow Target URL': 'http://service.test:8080',
      'Sim Users': 7,
      'Override Step URL Host': false,
      'Flow Target DNS Override': '10.1.2.3',
      'Min Sleep MS': 5,
      'Max Sleep MS': 10,
      'XFF Header Name': 'X-Real-IP',
      Debug: true,
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.flow_target_url, 'http://service.test:8080');
    assert.equal(r.config.sim_users, 7);
    assert.equal(r.config.override_step_url_host, false);
    assert.equal(r.config.flow_target_dns_override, '10.1.2.3');
    assert.equal(r.config.min_sleep_ms, 5);
    assert.equal(r.config.max_sleep_ms, 10);
    assert.equal(r.config.xff_header_name, 'X-Real-IP');
    assert.equal(r.config.debug, true);
  });

  it('accepts IPv4 and IPv6 DNS overrides and min_sleep_ms equal to max_sleep_ms', () => {
    for (const ip of ['127.0.0.1', '::1', '2001:db8::5']) {
      const r = parseConfig({
        flow_target_url: 'http://a.test',
        sim_users: 1,
        flow_target_dns_override: ip,
        min_sleep_ms: 50,
        max_sleep_ms: 50,
      });
      assert.ok(r.ok, `${ip}: ${JSON.stringify(r)}`);
      assert.equal(r.config.flow_target_dns_override, ip);
    }
  });

  it('lists every problem at once, each with loc, msg and type', () => {
    const list = problems(
      parseConfig({
        flow_target_url: 'ftp://files.example.com',
        sim_users: 0,
        flow_target_dns_override: 'not-an-ip',
        debug: 'yes',
        override_step_url_host: 'false',
        min_sleep_ms: 500,
        max_sleep_ms: 100,
      }),
    );
    wellFormed(list);
    for (const field of ['flow_target_url', 'sim_users', 'flow_target_dns_override', 'debug', 'override_step_url_host'])
      at(list, field);
    // min > max is reported too, on one of the two fields.
    assert.ok(
      list.some((p) => /min_sleep_ms|max_sleep_ms/.test(String(p.loc[p.loc.length - 1]))),
      JSON.stringify(list),
    );
    assert.ok(list.length >= 6, JSON.stringify(list));
  });

  it('requires an absolute http(s) flow_target_url', () => {
    for (const url of ['example.com/api', '/relative/path', 'ftp://x.example.com', 'mailto:a@b.c', '', 42]) {
      at(problems(parseConfig({ flow_target_url: url, sim_users: 1 })), 'flow_target_url');
    }
    at(problems(parseConfig({ sim_users: 1 })), 'flow_target_url');
    for (const url of ['http://a.test', 'https://a.test:8443/base'])
      assert.ok(parseConfig({ flow_target_url: url, sim_users: 1 }).ok, url);
  });

  it('requires sim_users to be an integer >= 1', () => {
    for (const n of [0, -1, 1.5, null, 'many'])
      at(problems(parseConfig({ flow_target_url: 'http://a.test', sim_users: n })), 'sim_users');
    at(problems(parseConfig({ flow_target_url: 'http://a.test' })), 'sim_users');
    assert.ok(parseConfig({ flow_target_url: 'http://a.test', sim_users: 1 }).ok);
  });

  it('rejects min_sleep_ms above max_sleep_ms, also against a default', () => {
    at(problems(parseConfig({ flow_target_url: 'http://a.test', sim_users: 1, min_sleep_ms: 2000 })), 'min_sleep_ms');
    const list = problems(
      parseConfig({ flow_target_url: 'http://a.test', sim_users: 1, min_sleep_ms: 30, max_sleep_ms: 20 }),
    );
    assert.equal(list.length, 1, JSON.stringify(list));
  });

  it('does not report min > max when a sleep field is itself invalid', () => {
    const list = problems(
      parseConfig({ flow_target_url: 'http://a.test', sim_users: 1, min_sleep_ms: 'soon', max_sleep_ms: 50 }),
    );
    assert.equal(list.length, 1, JSON.stringify(list));
    at(list, 'min_sleep_ms');
  });

  it('rejects a DNS override that is not an IP address', () => {
    for (const v of ['service.internal', '300.1.1.1', '1.2.3', 12])
      at(
        problems(parseConfig({ flow_target_url: 'http://a.test', sim_users: 1, flow_target_dns_override: v })),
        'flow_target_dns_override',
      );
  });

  it('takes booleans only as booleans (never "false" as text or 0)', () => {
    for (const v of ['false', 'true', 0, 1, null]) {
      at(
        problems(parseConfig({ flow_target_url: 'http://a.test', sim_users: 1, override_step_url_host: v })),
        'override_step_url_host',
      );
      at(problems(parseConfig({ flow_target_url: 'http://a.test', sim_users: 1, debug: v })), 'debug');
    }
  });

  it('rejects a body that is not an object', () => {
    for (const raw of [null, undefined, 'x', [1]]) wellFormed(problems(parseConfig(raw)));
  });
});

describe('FlowRunner engine: parseFlowmap', () => {
  it('reads id, name, description, headers, staticVars and steps, ignoring unknown fields', () => {
    const r = parseFlowmap({
      id: 'flow-1',
      name: 'Checkout',
      description: 'buys things',
      headers: { 'X-Global': 'g' },
      staticVars: { tenant: 'acme', nested: { n: 1 } },
      visualLayout: { nodes: [{ x: 1, y: 2 }] },
      somethingElse: true,
      steps: [{ id: 'a', type: 'request', method: 'get', url: '/a', visualLayout: { x: 3 } }],
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.flowmap.id, 'flow-1');
    assert.equal(r.flowmap.name, 'Checkout');
    assert.equal(r.flowmap.description, 'buys things');
    assert.deepEqual(r.flowmap.headers, { 'X-Global': 'g' });
    assert.deepEqual(r.flowmap.staticVars, { tenant: 'acme', nested: { n: 1 } });
    assert.equal(r.flowmap.steps.length, 1);
    const step = r.flowmap.steps[0]!;
    assert.equal(step.type, 'request');
    assert.equal(step.type === 'request' && step.method, 'GET');
    assert.equal(step.type === 'request' && step.onFailure, 'stop');
    assert.equal('visualLayout' in r.flowmap, false);
  });

  it('gives a loop the loop variable "item" by default', () => {
    const r = parseFlowmap({
      name: 'l',
      steps: [{ id: 'l', type: 'loop', source: 'ids', steps: [{ id: 'r', type: 'request', url: '/{{item}}' }] }],
    });
    assert.ok(r.ok, JSON.stringify(r));
    const loop = r.flowmap.steps[0]!;
    assert.equal(loop.type === 'loop' && loop.loopVariable, 'item');
  });

  it('accepts schemaVersion absent, "1.0" and any 1.x', () => {
    for (const schemaVersion of [undefined, '1.0', '1.1', '1.7', '1.0.3', 1, 1.1]) {
      const r = parseFlowmap({ name: 'v', schemaVersion, steps: [{ id: 'a', type: 'request', url: '/a' }] });
      assert.ok(r.ok, `${schemaVersion}: ${JSON.stringify(r)}`);
    }
  });

  it('rejects a schemaVersion other than 1.x', () => {
    for (const schemaVersion of ['2.0', '0.9', 2, 'latest'])
      at(
        problems(parseFlowmap({ name: 'v', schemaVersion, steps: [{ id: 'a', type: 'request', url: '/a' }] })),
        'schemaVersion',
      );
  });

  it('lists a step without type, an unknown type, a duplicate id and a missing url, with locations', () => {
    const list = problems(
      parseFlowmap({
        name: 'bad',
        steps: [
          { id: 'a', url: '/no-type' },
          { id: 'b', type: 'teleport' },
          { id: 'c', type: 'request', url: '/c' },
          { id: 'c', type: 'request', url: '/again' },
          { id: 'd', type: 'request' },
          {
            id: 'e',
            type: 'condition',
            conditionData: { variable: 'x', operator: 'equals', value: 1 },
            then: [{ id: 'f', type: 'request' }],
          },
          { id: 'g', type: 'loop', source: 'xs', steps: [{ id: 'h', type: 'request', method: 'GET' }] },
        ],
      }),
    );
    wellFormed(list);
    assert.equal(at(list, 'steps', 0, 'type').type, 'missing');
    at(list, 'steps', 1, 'type');
    at(list, 'steps', 3, 'id');
    assert.equal(at(list, 'steps', 4, 'url').type, 'missing');
    at(list, 'steps', 5, 'then', 0, 'url');
    at(list, 'steps', 6, 'steps', 0, 'url');
    for (const p of list) assert.deepEqual(p.loc.slice(0, 3), ['body', 'flowmap', 'steps'], JSON.stringify(p));
  });

  it('finds duplicate ids across branches and loop bodies', () => {
    const list = problems(
      parseFlowmap({
        name: 'dup',
        steps: [
          { id: 'x', type: 'request', url: '/x' },
          {
            id: 'c',
            type: 'condition',
            conditionData: { variable: 'v', operator: 'exists' },
            then: [],
            else: [{ id: 'x', type: 'request', url: '/y' }],
          },
        ],
      }),
    );
    at(list, 'steps', 1, 'else', 0, 'id');
  });

  it('rejects empty or missing steps', () => {
    assert.equal(at(problems(parseFlowmap({ name: 'empty', steps: [] })), 'steps').type, 'too_short');
    assert.equal(at(problems(parseFlowmap({ name: 'none' })), 'steps').type, 'missing');
  });

  it('rejects an unknown condition operator and bad onFailure', () => {
    const list = problems(
      parseFlowmap({
        name: 'ops',
        steps: [
          {
            id: 'c',
            type: 'condition',
            conditionData: { variable: 'v', operator: 'roughly_equals', value: 1 },
            then: [],
          },
          { id: 'r', type: 'request', url: '/r', onFailure: 'retry-forever' },
        ],
      }),
    );
    at(list, 'steps', 0, 'conditionData', 'operator');
    at(list, 'steps', 1, 'onFailure');
  });

  it('accepts every operator of the shared set in conditionData and assertions', () => {
    const r = parseFlowmap({
      name: 'ops',
      steps: OPERATORS.map((operator, i) => ({
        id: `c${i}`,
        type: 'condition',
        conditionData: { variable: 'v', operator, value: '1' },
        then: [],
      })).concat([
        {
          id: 'r',
          type: 'request',
          url: '/r',
          assertions: OPERATORS.map((operator) => ({ variable: 'response_r_status', operator, value: '1' })),
        } as never,
      ]),
    });
    assert.ok(r.ok, JSON.stringify(r));
  });
});

describe('FlowRunner engine: schema versions run the same flow', () => {
  const target = useTarget();

  it('sends the same requests for schemaVersion absent, "1.0" and "1.4"', async () => {
    target.on('/login', { json: { token: 'tok' } });
    const flow = {
      name: 'versions',
      staticVars: { who: 'ann' },
      steps: [
        {
          id: 'login',
          type: 'request',
          method: 'POST',
          url: '/login',
          body: { user: '{{who}}' },
          extract: { token: 'body.token' },
        },
        {
          id: 'cond',
          type: 'condition',
          conditionData: { variable: 'token', operator: 'equals', value: 'tok' },
          then: [{ id: 'yes', type: 'request', url: '/yes?t={{token}}' }],
          else: [{ id: 'no', type: 'request', url: '/no' }],
        },
      ],
    };
    const seen: string[][] = [];
    for (const schemaVersion of [undefined, '1.0', '1.4']) {
      target.requests.length = 0;
      await runFlow({ flow_target_url: target.url }, { ...flow, schemaVersion });
      seen.push(target.requests.map((r) => `${r.method} ${r.url} ${r.body}`));
    }
    assert.deepEqual(seen[0], ['POST /login {"user":"ann"}', 'GET /yes?t=tok ']);
    assert.deepEqual(seen[1], seen[0]);
    assert.deepEqual(seen[2], seen[0]);
  });
});

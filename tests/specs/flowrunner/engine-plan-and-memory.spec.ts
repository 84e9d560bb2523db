/**
 * The dry-run plan (planFirstIteration: the first iteration's requests rendered, nothing sent) and
 * bounded memory (run statistics in fixed-size HDR histograms, whatever the run's length).
 */
import assert from 'node:assert/strict';
import { isPublicIpv4, planFirstIteration } from '../../../adapters/flowrunner/engine/index.js';
import { latencyHistogram, percentiles } from '../../../adapters/flowrunner/engine/latency.js';
import { RunStats } from '../../../adapters/flowrunner/engine/stats.js';
import { makeConfig, makeFlowmap, quietPeriod, useTarget } from './target.js';

describe('FlowRunner engine: planFirstIteration (dry run)', () => {
  const target = useTarget();

  it('renders the first iteration with substitutions, URL rules and client headers, and sends nothing', async () => {
    const config = makeConfig({
      flow_target_url: `http://service.test:${target.portNumber}`,
      flow_target_dns_override: '127.0.0.1',
      sim_users: 5,
    });
    const flowmap = makeFlowmap({
      headers: { 'X-Tenant': '{{tenant}}' },
      staticVars: { tenant: 'acme', ids: [11, 22], limit: 5 },
      steps: [
        {
          id: 'login',
          type: 'request',
          method: 'POST',
          url: 'http://ignored.example/login?t={{tenant}}#frag',
          body: { user: '{{userId}}', limit: '##VAR:unquoted:limit##', instance: '##VAR:unquoted:flowInstance##' },
          extract: { token: 'body.token' },
        },
        {
          id: 'branch',
          type: 'condition',
          conditionData: { variable: 'token', operator: 'exists' },
          then: [{ id: 'yes', type: 'request', url: '/yes' }],
          else: [{ id: 'no', type: 'request', url: '/no' }],
        },
        {
          id: 'each',
          type: 'loop',
          source: 'ids',
          steps: [
            {
              id: 'item',
              type: 'request',
              url: '/items/{{item}}?i={{item_index}}',
              headers: { 'X-Step': 's-{{item}}' },
            },
          ],
        },
      ],
    });
    const plan = planFirstIteration(config, flowmap);
    const login = plan.find((p) => p.step === 'login')!;
    assert.ok(login, JSON.stringify(plan));
    assert.equal(login.method, 'POST');
    assert.equal(login.url, `http://127.0.0.1:${target.portNumber}/login?t=acme`);
    const header = (p: (typeof plan)[number], name: string) =>
      Object.entries(p.headers).find(([k]) => k.toLowerCase() === name)?.[1];
    assert.equal(header(login, 'host'), `service.test:${target.portNumber}`);
    assert.equal(header(login, 'x-tenant'), 'acme');
    assert.ok(isPublicIpv4(String(header(login, 'x-forwarded-for'))), JSON.stringify(login.headers));
    assert.ok(header(login, 'user-agent'));
    const body = JSON.parse(login.body!);
    assert.equal(body.limit, 5);
    assert.equal(body.instance, 1);
    assert.equal(typeof body.user, 'string');
    assert.ok(body.user.length > 0);
    // Both branches of the condition are shown; the loop's first item is rendered.
    assert.ok(plan.some((p) => p.step === 'yes'));
    assert.ok(plan.some((p) => p.step === 'no'));
    const item = plan.find((p) => p.step === 'item')!;
    assert.equal(item.url, `http://127.0.0.1:${target.portNumber}/items/11?i=0`);
    assert.equal(header(item, 'x-step'), 's-11');
    await quietPeriod(200);
    assert.equal(target.requests.length, 0, 'a dry run sends nothing');
  });

  it('reports a step URL that cannot be built instead of throwing', () => {
    const config = makeConfig({ flow_target_url: 'http://a.test', override_step_url_host: false });
    const plan = planFirstIteration(
      config,
      makeFlowmap({
        staticVars: { bad: 'http://exa mple.com/' },
        steps: [{ id: 'bad', type: 'request', url: '{{bad}}' }],
      }),
    );
    assert.equal(plan.length, 1);
    assert.match(String(plan[0]!.error), /invalid URL/);
  });
});

describe('FlowRunner engine: bounded statistics', () => {
  it('keeps latency histograms in fixed memory whatever the number and spread of requests', () => {
    const stats = new RunStats(['a', 'b']);
    const before = stats.latencyHistogram.estimatedFootprintInBytes;
    let now = 0;
    for (let i = 0; i < 300_000; i++) {
      const latency = (i % 1000) + 1 + (i % 7) * 0.001 + (i % 50_000 === 0 ? 120_000 : 0);
      stats.request(i % 2 ? 'a' : 'b', latency, 200, (now += 0.01));
    }
    // A step id that is not in the flowmap adds nothing.
    stats.request('not-a-step', 5, 200, now);
    assert.equal(stats.latencyHistogram.estimatedFootprintInBytes, before);
    const s = stats.snapshot(now);
    assert.equal(s.total_requests, 300_001);
    assert.deepEqual(Object.keys(s.per_step).sort(), ['a', 'b']);
    assert.equal(s.per_step.a!.requests + s.per_step.b!.requests, 300_000);
    // Percentiles stay right (2 significant digits): uniform 1..1000 ms.
    assert.ok(Math.abs(s.p50_ms - 500) < 15, `p50 ${s.p50_ms}`);
    assert.ok(Math.abs(s.p99_ms - 990) < 25, `p99 ${s.p99_ms}`);
    assert.ok(s.max_ms >= 120_000, `max ${s.max_ms}`);
    assert.ok(s.p99_ms <= s.max_ms);
  });

  it('never reports a percentile above the maximum', () => {
    const stats = new RunStats(['a']);
    for (const ms of [1.01, 2.02, 33.22]) stats.request('a', ms, 200, 0);
    const s = stats.snapshot(0);
    for (const v of [s.p50_ms, s.p95_ms, s.p99_ms, s.per_step.a!.p99_ms])
      assert.ok(v <= s.max_ms, `${v} > max ${s.max_ms}`);
  });

  it('rounds a half of a hundredth of a millisecond up, also where binary floating point reads it lower', () => {
    // 19.935 ms is recorded as 19935 µs; 19935 / 1000 * 100 is 1993.4999… in binary floating point.
    const h = latencyHistogram();
    h.recordValue(19_935);
    assert.equal(h.maxValue, 19_935);
    assert.equal(percentiles(h).max_ms, 19.94);
    assert.equal(percentiles(h).p50_ms, 19.94);
  });
});

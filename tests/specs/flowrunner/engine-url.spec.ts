/**
 * Where requests go: override_step_url_host (default true) keeps only the step's
 * path and query; off, absolute step URLs are used as they are and relative ones are appended to
 * flow_target_url; flow_target_dns_override sends the target's host to an IP with the original Host.
 */
import assert from 'node:assert/strict';
import { req, runFlow, Target } from './target.js';

describe('FlowRunner engine: URL construction', () => {
  let target: Target;
  let other: Target;
  before(async () => {
    target = await Target.start();
    other = await Target.start();
  });
  after(async () => {
    await target.close();
    await other.close();
  });
  afterEach(() => {
    target.reset();
    other.reset();
  });

  it('override on (default): scheme, host and port come from flow_target_url; the step gives path and query, never the fragment', async () => {
    await runFlow(
      { flow_target_url: `${target.url}/base/ignored` },
      {
        staticVars: { host: `127.0.0.1:${other.portNumber}` },
        steps: [
          req('abs', `http://127.0.0.1:${other.portNumber}/abs/path?x=1&y=two#frag`),
          req('var', 'http://{{host}}/from-var?z=3'),
          req('rel', '/rel/path?q=a%20b#section'),
          req('bare', 'no-slash?k=v'),
          req('https', 'https://elsewhere.example:8443/secure'),
        ],
      },
    );
    assert.equal(other.requests.length, 0, 'the step host is ignored');
    assert.deepEqual(
      target.requests.map((r) => r.url),
      ['/abs/path?x=1&y=two', '/from-var?z=3', '/rel/path?q=a%20b', '/no-slash?k=v', '/secure'],
    );
    for (const r of target.requests) assert.equal(r.headers.host, `127.0.0.1:${target.portNumber}`);
  });

  it('override off: an absolute step URL is used as is', async () => {
    await runFlow(
      { flow_target_url: target.url, override_step_url_host: false },
      { steps: [req('abs', `http://127.0.0.1:${other.portNumber}/there?a=1#frag`), req('rel', '/here')] },
    );
    assert.deepEqual(
      other.requests.map((r) => [r.url, r.headers.host]),
      [['/there?a=1', `127.0.0.1:${other.portNumber}`]],
    );
    assert.deepEqual(
      target.requests.map((r) => r.url),
      ['/here'],
    );
  });

  it('override off: a relative step URL is appended to flow_target_url (its path kept)', async () => {
    await runFlow(
      { flow_target_url: `${target.url}/api/v1`, override_step_url_host: false },
      { staticVars: { id: 42 }, steps: [req('a', '/users/{{id}}?full=1'), req('b', 'orders#x')] },
    );
    assert.deepEqual(
      target.requests.map((r) => r.url),
      ['/api/v1/users/42?full=1', '/api/v1/orders'],
    );
  });

  it('DNS override: requests for the target host go to the IP with the original Host header', async () => {
    await runFlow(
      { flow_target_url: `http://service.test:${target.portNumber}`, flow_target_dns_override: '127.0.0.1' },
      { steps: [req('a', '/a?x=1'), req('b', `http://somewhere.else:1/b`)] },
    );
    assert.deepEqual(
      target.requests.map((r) => [r.url, r.headers.host]),
      [
        ['/a?x=1', `service.test:${target.portNumber}`],
        ['/b', `service.test:${target.portNumber}`],
      ],
    );
    // Exactly one Host header on the wire.
    for (const r of target.requests)
      assert.equal(r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i]!.toLowerCase() === 'host').length, 1);
  });

  it('DNS override with override off: absolute URLs on the target host use the IP, other hosts go where they say', async () => {
    await runFlow(
      {
        flow_target_url: `http://service.test:${target.portNumber}`,
        flow_target_dns_override: '127.0.0.1',
        override_step_url_host: false,
      },
      {
        steps: [
          req('same', `http://service.test:${target.portNumber}/same`),
          req('rel', 'relative'),
          req('elsewhere', `http://127.0.0.1:${other.portNumber}/elsewhere`),
        ],
      },
    );
    assert.deepEqual(
      target.requests.map((r) => [r.url, r.headers.host]),
      [
        ['/same', `service.test:${target.portNumber}`],
        ['/relative', `service.test:${target.portNumber}`],
      ],
    );
    assert.deepEqual(
      other.requests.map((r) => [r.url, r.headers.host]),
      [['/elsewhere', `127.0.0.1:${other.portNumber}`]],
    );
  });

  it('a step URL that cannot be built is a failed step, not a dead user', async () => {
    const { runner } = await runFlow(
      { flow_target_url: target.url, override_step_url_host: false },
      {
        staticVars: { bad: 'http://exa mple.com:99999/x' },
        steps: [req('bad', '{{bad}}', { onFailure: 'continue' }), req('next', '/next')],
      },
      2,
    );
    assert.deepEqual(
      target.requests.map((r) => r.url),
      ['/next', '/next'],
    );
    const s = runner.snapshot();
    assert.equal(s.per_step.bad!.errors, 2);
    assert.equal(s.flow_count, 2);
  });
});

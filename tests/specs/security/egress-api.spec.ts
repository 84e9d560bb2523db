/**
 * The egress policy in the api adapter, against real local servers that count
 * the connections they accept: a refused destination fails the step with
 * `forbidden` and receives no connection, whether it is refused by its literal
 * address, by what its name resolves to (a fake resolver stands in for DNS),
 * by the allowlist, or as the target of a redirect.
 */
import assert from 'node:assert/strict';
import { createApiAdapter } from '../../../adapters/api/index.js';
import type { EgressSettings } from '../../../adapters/shared/egress.js';
import { runChecked } from '../support/outputs.js';
import { expectForbidden, fakeDns, stepContext, useCountingServers } from './egress-support.js';

function apiRequest(settings: Partial<EgressSettings>, dns: Record<string, string[]> = {}) {
  const resolver = fakeDns(dns);
  const action = createApiAdapter({ allowLoopback: true, allowPrivate: false, resolve: resolver.resolve, ...settings })
    .actions.request!;
  return {
    run: (input: Record<string, unknown>) => runChecked(action, stepContext().ctx, input),
    action,
    asked: resolver.asked,
  };
}

describe('egress policy: api adapter', () => {
  const { target, other } = useCountingServers();

  it('refuses a loopback literal with allowLoopback false, naming host, reason and setting, and opens no connection', async () => {
    const err = await expectForbidden(apiRequest({ allowLoopback: false }).run({ url: `${target.url}/x` }));
    assert.equal(
      err.message,
      `GET ${target.url}/x was not sent: outbound HTTP to 127.0.0.1 is refused by the egress policy: a loopback address (127.0.0.0/8, ::1); set EGRESS_ALLOW_LOOPBACK=true to allow it`,
    );
    assert.deepEqual(err.details, {
      host: '127.0.0.1',
      address: '127.0.0.1',
      reason: 'loopback',
      setting: 'EGRESS_ALLOW_LOOPBACK',
    });
    assert.equal(target.connections, 0);
  });

  it('refuses a name that resolves to loopback after DNS, before any socket connects', async () => {
    const api = apiRequest({ allowLoopback: false }, { 'app.test': ['127.0.0.1'] });
    const err = await expectForbidden(api.run({ url: `http://app.test:${target.port}/x` }));
    assert.match(
      err.message,
      /outbound HTTP to app\.test \(address 127\.0\.0\.1\) is refused by the egress policy: a loopback address/,
    );
    assert.deepEqual(api.asked, ['app.test']);
    assert.equal(target.connections, 0);
  });

  it('refuses a name that resolves to the metadata address even with loopback and private allowed', async () => {
    const api = apiRequest({ allowLoopback: true, allowPrivate: true }, { 'innocent.test': ['169.254.169.254'] });
    const err = await expectForbidden(api.run({ url: 'http://innocent.test/latest/meta-data/' }));
    assert.match(
      err.message,
      /innocent\.test \(address 169\.254\.169\.254\) is refused by the egress policy: a link-local address .*; no setting allows it/,
    );
    assert.equal(err.details.reason, 'link-local');
  });

  it('refuses metadata literals and names, mapped IPv6 included, before asking DNS or connecting', async () => {
    const api = apiRequest({ allowPrivate: true });
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://[::ffff:169.254.169.254]/',
      'http://[fd00:ec2::254]/',
      'http://metadata.google.internal./computeMetadata/v1/',
    ]) {
      const err = await expectForbidden(api.run({ url, timeoutMs: 2000 }));
      assert.match(err.message, /no setting allows it/, url);
    }
    assert.deepEqual(api.asked, []);
  });

  it('refuses a private literal at once instead of trying to connect', async () => {
    const err = await expectForbidden(apiRequest({}).run({ url: 'http://10.255.255.1:81/', timeoutMs: 5000 }));
    assert.match(err.message, /a private address .*set EGRESS_ALLOW_PRIVATE=true/);
  });

  it('allows a listed host and refuses an unlisted one, which gets no connection', async () => {
    const api = apiRequest({ allowedHosts: ['api.test'] }, { 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] });
    const ok = await api.run({ url: `http://api.test:${target.port}/fine` });
    assert.equal(ok.status, 200);
    assert.equal(target.requests[0]?.host, `api.test:${target.port}`);
    const err = await expectForbidden(api.run({ url: `http://other.test:${other.port}/x` }));
    assert.match(
      err.message,
      /outbound HTTP to other\.test is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS \(api\.test\)/,
    );
    assert.equal(other.connections, 0);
    assert.deepEqual(api.asked, ['api.test'], 'the unlisted name was refused before DNS');
  });

  it('lets an allowlisted CIDR reach loopback that allowLoopback false refuses', async () => {
    const out = await apiRequest({ allowLoopback: false, allowedHosts: ['127.0.0.1/32'] }).run({
      url: `${target.url}/x`,
    });
    assert.equal(out.status, 200);
  });

  it('does not follow a redirect from an allowed server to a refused literal, which receives no connection', async () => {
    target.redirect('/start', `${other.url}/secret`);
    const api = apiRequest({ allowedHosts: ['api.test'] }, { 'api.test': ['127.0.0.1'] });
    const err = await expectForbidden(api.run({ url: `http://api.test:${target.port}/start`, followRedirects: true }));
    assert.equal(
      err.message,
      `GET http://api.test:${target.port}/start redirected to ${other.url}/secret; the redirect was not followed: outbound HTTP to 127.0.0.1 is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS (api.test); add the host name, or a CIDR of its address, to EGRESS_ALLOWED_HOSTS to allow it`,
    );
    assert.equal(err.details.redirectedTo, `${other.url}/secret`);
    assert.deepEqual(
      target.requests.map((r) => r.url),
      ['/start'],
    );
    assert.equal(other.connections, 0);
  });

  it('judges the address of a redirect target name after DNS', async () => {
    target.redirect('/start', `http://inner.test:${other.port}/`);
    const api = apiRequest({}, { 'inner.test': ['169.254.169.254'] });
    const err = await expectForbidden(api.run({ url: `${target.url}/start`, followRedirects: true }));
    assert.match(
      err.message,
      /redirected to http:\/\/inner\.test:\d+\/; the redirect was not followed: outbound HTTP to inner\.test \(address 169\.254\.169\.254\) is refused/,
    );
    assert.deepEqual(api.asked, ['inner.test']);
  });

  it('follows a redirect to an allowed destination', async () => {
    target.redirect('/start', `${other.url}/landing`);
    const out = await apiRequest({}).run({ url: `${target.url}/start`, followRedirects: true });
    assert.equal(out.status, 200);
    assert.deepEqual(
      other.requests.map((r) => r.url),
      ['/landing'],
    );
  });

  it('keeps one connection pool per policy: a strict adapter does not reuse the connection a lenient one opened', async () => {
    assert.equal((await apiRequest({}).run({ url: `${target.url}/x` })).status, 200);
    assert.equal(target.connections, 1);
    await expectForbidden(apiRequest({ allowLoopback: false }).run({ url: `${target.url}/x` }));
    assert.equal(target.connections, 1);
    assert.equal(target.requests.length, 1);
  });

  it('warns in a dry run that the run would be refused, without failing or connecting', async () => {
    const { ctx, logs } = stepContext();
    const { action } = apiRequest({ allowLoopback: false });
    await action.run({ ...ctx, dryRun: true }, { url: `${target.url}/x` });
    const warning = logs.find((l) => l.level === 'warn');
    assert.match(
      warning?.message ?? '',
      /^dry run: the run would fail: outbound HTTP to 127\.0\.0\.1 is refused by the egress policy/,
    );
    assert.equal(target.connections, 0);
  });
});

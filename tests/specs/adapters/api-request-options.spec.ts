import assert from 'node:assert/strict';
import { lookup } from 'node:dns';
import type { Got, Options as GotOptions } from 'got';
import { ApiClient } from '../../../adapters/api/client.js';
import { type Build, fastRequestOptions, gotRequestOptions } from '../../../adapters/api/request-options.js';
import type { EgressPolicy } from '../../../adapters/shared/egress.js';

/**
 * The api adapter replaces got's `createNativeRequestOptions` with one that builds the same object by
 * assignment (adapters/api/request-options.ts). Whatever got version is installed, the two must agree on every
 * key, its order and its value, for the options the adapter sends.
 */
describe('adapters: api request options built by assignment', () => {
  // Imported as the adapter imports it: a static import could load a second copy of got through the test runner.
  let got: Got;
  let Options: typeof GotOptions;
  let original: Build;
  let fast: Build;
  let adapterDefaults: GotOptions;
  const policy = {
    lookup: (host: string, options: unknown, callback: unknown) => lookup(host, options as never, callback as never),
    checkHost() {},
  } as unknown as EgressPolicy;
  before(async () => {
    ({ default: got, Options } = await import('got'));
    original = gotRequestOptions(Options);
    fast = fastRequestOptions(original);
    // The adapter's own got instance: its defaults are the options every api step's request starts from.
    adapterDefaults = (await new ApiClient(policy).load()).defaults.options;
  });

  const cases: Array<[string, () => GotOptions]> = [
    ['got defaults, GET', () => new Options('http://127.0.0.1:1/x', undefined, got.defaults.options)],
    [
      "the adapter's defaults, POST with headers",
      () => new Options('http://127.0.0.1:1/x', { method: 'POST', headers: { 'x-a': 'b' } }, adapterDefaults),
    ],
    [
      'https with client certificates and TLS settings',
      () =>
        new Options(
          'https://example.test/x',
          {
            https: {
              certificate: 'CERT',
              key: 'KEY',
              certificateAuthority: 'CA',
              passphrase: 'p',
              rejectUnauthorized: false,
              serverName: 'other.test',
              minVersion: 'TLSv1.2',
              ciphers: 'HIGH',
            },
          },
          adapterDefaults,
        ),
    ],
    [
      'cache options set',
      () => new Options('http://127.0.0.1:1/x', { cacheOptions: { shared: false } }, got.defaults.options),
    ],
    [
      'a unix socket',
      () => new Options('http://unix:/tmp/agent.sock:/path', { enableUnixSockets: true }, got.defaults.options),
    ],
    ['HTTP/2 (got builds it)', () => new Options('https://example.test/x', { http2: true }, got.defaults.options)],
  ];

  for (const [name, make] of cases) {
    it(`builds what got builds: ${name}`, () => {
      const options = make();
      const expected = original.call(options);
      const actual = fast.call(options);
      assert.deepEqual(Object.keys(actual), Object.keys(expected), 'the same keys in the same order');
      // got's HTTP/2 build makes a new agent object each time; every other value is the very same one.
      if (options.http2) assert.deepEqual(actual, expected);
      else for (const key of Object.keys(expected)) assert.equal(actual[key], expected[key], key);
    });
  }

  it('is installed once the api adapter loads got, and got keeps its own for comparison', async () => {
    await new ApiClient(policy).load();
    const installed = Options.prototype.createNativeRequestOptions;
    assert.notEqual(installed, gotRequestOptions(Options), "the adapter's build replaced got's");
    await new ApiClient(policy).load();
    assert.equal(Options.prototype.createNativeRequestOptions, installed, 'installed once, not wrapped again');
  });
});

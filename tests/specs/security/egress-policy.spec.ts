/**
 * The egress policy on its own: how addresses are classified (mapped and
 * embedded IPv4 included), which settings allow what, the allowlist of names,
 * wildcards and CIDRs, and the lookup that judges DNS answers. DNS is a fake
 * resolver here: names "resolve" to whatever a test says.
 */
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { AgentError } from '../../../adapters/errors.js';
import { EgressPolicy, type EgressSettings } from '../../../adapters/shared/egress.js';
import { parseAllowlist } from '../../../adapters/shared/egress-allowlist.js';
import { EgressRefusal } from '../../../adapters/shared/egress-refusal.js';
import { classify, formatIp, parseIp } from '../../../adapters/shared/ip-address.js';
import { ConfigError, loadConfig } from '../../../services/runtime-agent/src/config.js';
import { fakeDns } from './egress-support.js';

const kind = (text: string) => classify(parseIp(text) ?? assert.fail(`${text} should parse`));

function policy(settings: Partial<EgressSettings> = {}, dns: Record<string, string[]> = {}): EgressPolicy {
  return new EgressPolicy({ allowLoopback: true, allowPrivate: false, resolve: fakeDns(dns).resolve, ...settings });
}

/** The refusal checkHost throws, or undefined when the host passes. */
function refusalOf(fn: () => void): EgressRefusal | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof EgressRefusal, `expected an EgressRefusal, got ${String(err)}`);
    return err;
  }
}

/** The policy refuses `host`: its refusal, to look into. */
function assertRefused(p: EgressPolicy, host: string): EgressRefusal {
  const r = refusalOf(() => p.checkHost(host));
  assert.ok(r, `${host} should be refused`);
  return r;
}

/** The policy lets `host` through: checkHost refuses nothing. */
function assertAllowed(p: EgressPolicy, host: string, message = `${host} should pass`): void {
  assert.equal(
    refusalOf(() => p.checkHost(host)),
    undefined,
    message,
  );
}

/** What the lookup answers with `all: true`: the addresses, or the error. */
function lookupAll(p: EgressPolicy, host: string): Promise<{ err: Error | null; addresses: LookupAddress[] }> {
  return new Promise((resolve) =>
    p.lookup(host, { all: true }, (err, addresses) => resolve({ err, addresses: addresses as LookupAddress[] })),
  );
}

describe('egress policy: address classes', () => {
  /** Each address is of the class it is listed under. */
  function assertClasses(classes: Record<string, string[]>): void {
    for (const [expected, addresses] of Object.entries(classes))
      for (const address of addresses) assert.equal(kind(address), expected, address);
  }

  it('classifies link-local, metadata, multicast and reserved addresses of both families', () => {
    assertClasses({
      'link-local': ['169.254.169.254', '169.254.170.2', 'fe80::1', 'fe80::1%eth0'],
      metadata: ['fd00:ec2::254', '100.100.100.200'],
      multicast: ['224.0.0.1', 'ff02::1'],
      reserved: ['255.255.255.255'],
    });
  });

  it('classifies loopback, unspecified, private and public addresses', () => {
    assertClasses({
      loopback: ['127.0.0.1', '127.255.0.9', '::1', '[::1]'],
      unspecified: ['0.0.0.0', '0.1.2.3', '::'],
      private: ['10.0.0.5', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', 'fc00::1', 'fd12:3456::1'],
      public: ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2001:4860:4860::8888'],
    });
  });

  it('judges IPv4-mapped, IPv4-compatible and NAT64 IPv6 addresses as the IPv4 address they reach', () => {
    assertClasses({
      'link-local': ['::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe'],
      loopback: ['[::ffff:127.0.0.1]', '::127.0.0.1'],
      private: ['::ffff:10.0.0.1'],
    });
    assert.equal(formatIp(parseIp('::ffff:a9fe:a9fe')!), '169.254.169.254');
  });

  it('parses only IP literals, and formats IPv6 with the longest zero run compressed', () => {
    assert.equal(parseIp('example.com'), undefined);
    assert.equal(parseIp('127.1'), undefined);
    assert.equal(parseIp('1.2.3.256'), undefined);
    assert.equal(formatIp(parseIp('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
    assert.equal(formatIp(parseIp('fd00:ec2:0:0:0:0:0:254')!), 'fd00:ec2::254');
  });
});

describe('egress policy: settings', () => {
  it('refuses link-local and metadata addresses even with loopback and private allowed', () => {
    const open = policy({ allowLoopback: true, allowPrivate: true });
    for (const host of [
      '169.254.169.254',
      '[fe80::1]',
      '[fd00:ec2::254]',
      '100.100.100.200',
      '[::ffff:169.254.169.254]',
      '224.0.0.1',
      '255.255.255.255',
    ]) {
      const r = assertRefused(open, host);
      assert.equal(r.type, 'forbidden');
      assert.equal(r.retryable, false);
      assert.match(r.message, /no setting allows it/);
    }
  });

  it('refuses metadata host names in any case and with a trailing dot, whatever the allowlist says', () => {
    const p = policy({ allowedHosts: ['metadata.google.internal', '*.google.internal'] });
    for (const host of [
      'metadata.google.internal',
      'METADATA.Google.Internal',
      'metadata.google.internal.',
      'metadata',
      'metadata.goog',
      'instance-data.ec2.internal',
    ]) {
      const r = assertRefused(p, host);
      assert.equal(r.details.reason, 'metadata');
      assert.match(
        r.message,
        new RegExp(
          `outbound HTTP to ${host.replace(/\./g, '\\.')} is refused.*cloud metadata host name; no setting allows it`,
        ),
      );
    }
  });

  it('allows loopback by default and refuses it, 0.0.0.0 and :: included, with allowLoopback false', () => {
    assertAllowed(policy(), '127.0.0.1');
    const closed = policy({ allowLoopback: false });
    for (const host of ['127.0.0.1', '[::1]', '0.0.0.0', '[::]', '[::ffff:127.0.0.1]']) {
      const r = assertRefused(closed, host);
      assert.equal(r.details.setting, 'EGRESS_ALLOW_LOOPBACK');
      assert.match(r.message, /set EGRESS_ALLOW_LOOPBACK=true/);
    }
  });

  it('refuses private addresses by default and allows them with allowPrivate', () => {
    const r = refusalOf(() => policy().checkHost('10.0.0.5'));
    assert.equal(r?.details.reason, 'private');
    assert.match(
      r!.message,
      /outbound HTTP to 10\.0\.0\.5 is refused by the egress policy: a private address .*set EGRESS_ALLOW_PRIVATE=true/,
    );
    assertAllowed(policy({ allowPrivate: true }), '10.0.0.5');
    assertAllowed(policy({ allowPrivate: true }), '[fd12::1]');
  });

  it('lets public hosts and names through without an allowlist', () => {
    const p = policy({ allowLoopback: false });
    assertAllowed(p, '8.8.8.8');
    assertAllowed(p, 'api.example.com');
  });
});

describe('egress policy: allowlist', () => {
  it('matches names exactly, ignoring case and a trailing dot', () => {
    const p = policy({ allowedHosts: ['API.example.com.'] });
    assertAllowed(p, 'api.example.com');
    assertAllowed(p, 'api.example.com.');
    const r = refusalOf(() => p.checkHost('other.example.com'));
    assert.equal(r?.details.reason, 'not-allowed');
    assert.match(
      r!.message,
      /other\.example\.com is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS \(API\.example\.com\.\); add the host name/,
    );
  });

  it('matches a wildcard against subdomains at any depth but not the bare domain', () => {
    const p = policy({ allowedHosts: ['*.example.com'] });
    assertAllowed(p, 'a.example.com');
    assertAllowed(p, 'a.b.example.com');
    assert.ok(refusalOf(() => p.checkHost('example.com')));
    assert.ok(refusalOf(() => p.checkHost('badexample.com')));
  });

  it('refuses IP literals outside the listed CIDRs, since a literal is no listed name', () => {
    const p = policy({ allowedHosts: ['localhost', '203.0.113.0/24'] });
    assertAllowed(p, '203.0.113.7');
    assert.equal(refusalOf(() => p.checkHost('127.0.0.1'))?.details.reason, 'not-allowed');
    assert.equal(refusalOf(() => p.checkHost('198.51.100.1'))?.details.reason, 'not-allowed');
  });

  it('lets an explicit CIDR allow a private or loopback range the flags refuse, but never link-local', () => {
    const p = policy({ allowLoopback: false, allowedHosts: ['10.1.0.0/16', '127.0.0.1', '169.254.0.0/16'] });
    assertAllowed(p, '10.1.2.3');
    assertAllowed(p, '127.0.0.1');
    assert.equal(refusalOf(() => p.checkHost('10.2.0.1'))?.details.reason, 'not-allowed');
    assert.equal(refusalOf(() => p.checkHost('169.254.169.254'))?.details.reason, 'link-local');
  });

  it('matches IPv6 CIDRs and mapped addresses against IPv4 CIDRs', () => {
    const p = policy({ allowedHosts: ['fd00:1::/32', '192.0.2.0/24'] });
    assertAllowed(p, '[fd00:1:2::3]');
    assertAllowed(p, '[::ffff:192.0.2.9]');
    assert.ok(refusalOf(() => p.checkHost('[fd00:2::1]')));
  });

  it('refuses entries that are not a host, a wildcard, an address or a CIDR', () => {
    for (const bad of [
      'https://api.example.com',
      'api.example.com:8443',
      'api.example.com/path',
      '*',
      'a..b',
      '10.0.0.0/33',
      '*.*.example.com',
    ]) {
      assert.throws(
        () => parseAllowlist([bad]),
        (err: Error) => err.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
    assert.doesNotThrow(() =>
      parseAllowlist(['api.example.com', '*.example.com', '10.0.0.0/8', '::1', '[fd00::]/8', 'fd00::/8', 'localhost']),
    );
  });
});

describe('egress policy: after DNS resolution', () => {
  it('refuses a name that resolves to the metadata address, in lookup and before a run', async () => {
    const p = policy({ allowLoopback: true, allowPrivate: true }, { 'innocent.test': ['169.254.169.254'] });
    assertAllowed(p, 'innocent.test', 'the name alone says nothing');
    const { err } = await lookupAll(p, 'innocent.test');
    assert.ok(err instanceof AgentError && err.type === 'forbidden', String(err));
    assert.match(
      err.message,
      /outbound HTTP to innocent\.test \(address 169\.254\.169\.254\) is refused by the egress policy: a link-local address/,
    );
    await assert.rejects(
      p.checkResolved('innocent.test'),
      (e: AgentError) => e.type === 'forbidden' && e.details.address === '169.254.169.254',
    );
  });

  it('refuses a name resolving to a private address unless allowPrivate', async () => {
    const dns = { 'db.test': ['10.0.0.5'] };
    assert.equal((await lookupAll(policy({}, dns), 'db.test')).err?.message.includes('a private address'), true);
    assert.deepEqual((await lookupAll(policy({ allowPrivate: true }, dns), 'db.test')).addresses, [
      { address: '10.0.0.5', family: 4 },
    ]);
  });

  it('drops refused addresses from an answer and keeps the allowed ones', async () => {
    const p = policy({ allowLoopback: false }, { 'mixed.test': ['169.254.169.254', '127.0.0.1', '203.0.113.5'] });
    assert.deepEqual((await lookupAll(p, 'mixed.test')).addresses, [{ address: '203.0.113.5', family: 4 }]);
  });

  it('answers the single-address form of dns.lookup', async () => {
    const p = policy({}, { 'one.test': ['::1', '127.0.0.1'] });
    const answer = await new Promise<unknown[]>((resolve) =>
      p.lookup('one.test', { family: 0 }, (...args) => resolve(args)),
    );
    assert.deepEqual(answer, [null, '::1', 6]);
  });

  it('requires the addresses of an unlisted name to lie in a listed CIDR', async () => {
    const p = policy(
      { allowedHosts: ['api.test', '203.0.113.0/24'] },
      { 'api.test': ['198.51.100.1'], 'other.test': ['203.0.113.9'], 'third.test': ['198.51.100.2'] },
    );
    assert.equal((await lookupAll(p, 'api.test')).err, null, 'a listed name may resolve anywhere public');
    assert.equal((await lookupAll(p, 'other.test')).err, null, 'an unlisted name inside a listed CIDR');
    assert.match(
      (await lookupAll(p, 'third.test')).err?.message ?? '',
      /third\.test \(address 198\.51\.100\.2\) is refused by the egress policy: not in EGRESS_ALLOWED_HOSTS/,
    );
  });

  it('refuses a name off the allowlist before asking DNS', async () => {
    const dns = fakeDns({ 'evil.test': ['203.0.113.1'] });
    const p = new EgressPolicy({
      allowLoopback: true,
      allowPrivate: false,
      allowedHosts: ['api.test'],
      resolve: dns.resolve,
    });
    assert.equal(
      (await lookupAll(p, 'evil.test')).err?.message.includes('not in EGRESS_ALLOWED_HOSTS (api.test)'),
      true,
    );
    assert.deepEqual(dns.asked, []);
  });

  it('lets a name that does not resolve pass the check before a run, and fails its lookup with the DNS error', async () => {
    const p = policy();
    await p.checkResolved('nowhere.test');
    assert.equal((await lookupAll(p, 'nowhere.test')).err?.message, 'getaddrinfo ENOTFOUND nowhere.test');
  });

  it('judges a DNS override address as the address of the name', () => {
    const p = policy({ allowedHosts: ['service.test'] });
    assert.equal(
      refusalOf(() => p.checkAddress('service.test', '127.0.0.1')),
      undefined,
    );
    assert.equal(refusalOf(() => p.checkAddress('service.test', '10.0.0.1'))?.details.reason, 'private');
    assert.equal(refusalOf(() => p.checkAddress('other.test', '127.0.0.1'))?.details.reason, 'not-allowed');
  });
});

describe('egress policy: configuration', () => {
  it('stops the agent at start on an EGRESS_ALLOWED_HOSTS entry that is not a host or CIDR, naming it', () => {
    assert.throws(
      () => loadConfig({ EGRESS_ALLOWED_HOSTS: 'api.example.com, https://other.example.com' }, []),
      (err: Error) =>
        err instanceof ConfigError &&
        /EGRESS_ALLOWED_HOSTS: "https:\/\/other\.example\.com" is not a host name/.test(err.message),
    );
    assert.deepEqual(
      loadConfig({ EGRESS_ALLOWED_HOSTS: 'api.example.com, *.corp.test, 10.0.0.0/8' }, []).egressAllowedHosts,
      ['api.example.com', '*.corp.test', '10.0.0.0/8'],
    );
  });
});

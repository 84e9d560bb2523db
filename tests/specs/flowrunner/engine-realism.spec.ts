/**
 * Traffic that looks like many clients: a random public IPv4 per flow instance in the XFF header
 * (named by xff_header_name, empty disables), a rotating User-Agent and header profile (web-like or
 * API-like), flowmap headers then step headers overriding them case-insensitively.
 */
import assert from 'node:assert/strict';
import { isPublicIpv4, randomProfile, randomPublicIpv4 } from '../../../adapters/flowrunner/engine/index.js';
import { echo, req, runFlow, useTarget, type Seen, type Target } from './target.js';

const ip = (text: string): number => text.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const dotted = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** Every range a simulated client address must avoid (IANA special-purpose registry, not globally reachable). */
const NOT_PUBLIC: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'CGNAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'TEST-NET-1'],
  ['192.88.99.0', 24, '6to4 relay anycast'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'TEST-NET-2'],
  ['203.0.113.0', 24, 'TEST-NET-3'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved and broadcast'],
];
const RANGES = NOT_PUBLIC.map(([first, bits, what]) => ({
  first: ip(first),
  last: ip(first) + 2 ** (32 - bits) - 1,
  what,
}));
const reference = (n: number) => !RANGES.some((r) => n >= r.first && n <= r.last);

/** The XFF value each flow instance sent, from its echo. */
function instanceIps(target: Target, path: string, header = 'x-forwarded-for'): string[] {
  return target.hits(path).map((r: Seen) => String(r.headers[header]));
}

describe('FlowRunner engine: public client addresses', () => {
  it('isPublicIpv4 rejects the first, last and inner addresses of every non-public range, and accepts their public neighbours', () => {
    for (const r of RANGES) {
      for (const n of [r.first, r.first + 1, Math.floor((r.first + r.last) / 2), r.last - 1, r.last]) {
        assert.equal(isPublicIpv4(n), false, `${dotted(n)} (${r.what}) as a number`);
        assert.equal(isPublicIpv4(dotted(n)), false, `${dotted(n)} (${r.what}) as text`);
      }
      for (const n of [r.first - 1, r.last + 1]) {
        if (n < 0 || n > 0xffffffff || !reference(n)) continue;
        assert.equal(isPublicIpv4(n), true, `${dotted(n)} next to ${r.what}`);
        assert.equal(isPublicIpv4(dotted(n)), true, `${dotted(n)} next to ${r.what}, as text`);
      }
    }
    for (const text of [
      '1.1.1.1',
      '8.8.8.8',
      '100.63.255.255',
      '100.128.0.0',
      '172.15.255.255',
      '172.32.0.0',
      '198.17.255.255',
      '198.20.0.0',
      '223.255.255.255',
      '11.0.0.0',
      '9.255.255.255',
    ]) {
      assert.equal(isPublicIpv4(text), true, text);
    }
    for (const text of [
      '255.255.255.255',
      '127.0.0.1',
      '100.64.0.0',
      '100.127.255.255',
      '169.254.169.254',
      '192.168.1.1',
      '239.255.255.250',
    ])
      assert.equal(isPublicIpv4(text), false, text);
  });

  it('isPublicIpv4 agrees with the reference at the first and last address of every /16', () => {
    const wrong: string[] = [];
    for (let block = 0; block < 65536; block++) {
      for (const n of [block * 65536, block * 65536 + 65535])
        if (isPublicIpv4(n) !== reference(n)) wrong.push(dotted(n));
    }
    assert.deepEqual(wrong.slice(0, 10), []);
  });

  it('isPublicIpv4 is false for what is not an IPv4 address', () => {
    for (const v of ['', 'abc', '1.2.3', '1.2.3.4.5', '256.1.1.1', '::1', ' 8.8.8.8'])
      assert.equal(isPublicIpv4(v), false, JSON.stringify(v));
    for (const v of [-1, 2 ** 32, 1.5, Number.NaN]) assert.equal(isPublicIpv4(v), false, String(v));
  });

  it('randomPublicIpv4 skips non-public draws', () => {
    const draws = [
      '10.1.2.3',
      '127.0.0.1',
      '100.64.0.0',
      '100.127.255.255',
      '169.254.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '192.0.2.1',
      '198.51.100.200',
      '203.0.113.9',
      '224.0.0.1',
      '255.255.255.255',
      '0.0.0.0',
      '81.2.69.160',
    ];
    let i = 0;
    const random = () => ip(draws[i++]!) / 2 ** 32;
    assert.equal(randomPublicIpv4(random), '81.2.69.160');
    assert.equal(i, draws.length);
  });

  it('randomPublicIpv4 gives varied public dotted addresses', () => {
    const seen = new Set<string>();
    for (let k = 0; k < 20_000; k++) {
      const a = randomPublicIpv4();
      assert.match(a, /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/);
      assert.ok(reference(ip(a)), a);
      seen.add(a);
    }
    assert.ok(seen.size > 19_900, `only ${seen.size} distinct addresses`);
    // Spread over the space: many different first octets.
    assert.ok(new Set([...seen].map((a) => a.split('.')[0])).size > 150);
  });
});

describe('FlowRunner engine: client headers', () => {
  const target = useTarget();

  it('sends a public X-Forwarded-For per flow instance, the same on every step of the instance and different across instances', async () => {
    await runFlow(
      { flow_target_url: target.url },
      { steps: [req('a', '/a'), echo('b', { ip: '{{userFakeIp}}' })] },
      30,
    );
    const a = instanceIps(target, '/a');
    const b = instanceIps(target, '/echo/b');
    assert.equal(a.length, 30);
    assert.deepEqual(a, b, 'one address per instance, on all its steps');
    assert.deepEqual(
      target.hits('/a').map((r) => r.headers['user-agent']),
      target.hits('/echo/b').map((r) => r.headers['user-agent']),
      'one client profile per instance, on all its steps',
    );
    assert.deepEqual(
      target.bodies('/echo/b').map((x) => x.ip),
      b,
      'the header is userFakeIp',
    );
    for (const x of a) assert.ok(reference(ip(x)) && /^\d+\.\d+\.\d+\.\d+$/.test(x), x);
    assert.ok(new Set(a).size >= 28, `addresses repeat: ${a.join(' ')}`);
  });

  it('uses the xff_header_name given, and no header when it is empty', async () => {
    await runFlow(
      { flow_target_url: target.url, xff_header_name: 'X-Real-Client' },
      { steps: [echo('named', { ip: '{{userFakeIp}}' })] },
      3,
    );
    for (const r of target.hits('/echo/named')) {
      assert.equal(r.headers['x-real-client'], JSON.parse(r.body).ip);
      assert.equal(r.headers['x-forwarded-for'], undefined);
    }
    target.reset();
    await runFlow(
      { flow_target_url: target.url, xff_header_name: '' },
      { steps: [echo('none', { ip: '{{userFakeIp}}' })] },
      3,
    );
    for (const r of target.hits('/echo/none')) {
      const fake = JSON.parse(r.body).ip;
      assert.ok(reference(ip(fake)));
      assert.equal(r.headers['x-forwarded-for'], undefined);
      assert.deepEqual(
        Object.entries(r.headers).filter(([, v]) => String(v).includes(fake)),
        [],
        'the fake address appears in no header',
      );
    }
  });

  it('rotates User-Agent and header profiles: web-like and API-like both appear, with several agents', async () => {
    await runFlow({ flow_target_url: target.url, sim_users: 4 }, { steps: [req('a', '/a')] }, 30);
    const agents = target.requests.map((r) => String(r.headers['user-agent'] ?? ''));
    assert.equal(agents.length, 120);
    assert.ok(
      agents.every((a) => a.length > 0),
      'every request has a User-Agent',
    );
    const web = agents.filter((a) => a.startsWith('Mozilla/'));
    const api = agents.filter((a) => !a.startsWith('Mozilla/'));
    assert.ok(web.length > 0 && api.length > 0, `web ${web.length}, api ${api.length}`);
    assert.ok(new Set(agents).size >= 4, `agents: ${[...new Set(agents)].join(' | ')}`);
    assert.ok(!agents.some((a) => /undici|node/i.test(a)), 'the HTTP library never shows');
    // Browser-like requests carry browser-like headers.
    for (const r of target.requests.filter((x) => String(x.headers['user-agent']).startsWith('Mozilla/')))
      assert.ok(r.headers['accept-language'], 'web profile without Accept-Language');
  });

  it('randomProfile makes both kinds, each with a User-Agent', () => {
    const kinds = new Map<string, Set<string>>();
    for (let i = 0; i < 500; i++) {
      const p = randomProfile();
      const ua = Object.entries(p.headers).find(([k]) => k.toLowerCase() === 'user-agent')?.[1];
      assert.ok(ua, JSON.stringify(p));
      if (!kinds.has(p.kind)) kinds.set(p.kind, new Set());
      kinds.get(p.kind)!.add(ua);
    }
    assert.deepEqual([...kinds.keys()].sort(), ['api', 'web']);
    assert.ok(kinds.get('web')!.size >= 3 && kinds.get('api')!.size >= 3);
  });

  it('flowmap headers override the profile and step headers override both, case-insensitively, one header each', async () => {
    await runFlow(
      { flow_target_url: target.url },
      {
        staticVars: { v: 'var' },
        headers: {
          'USER-AGENT': 'flow-agent',
          'x-forwarded-for': '203.0.113.7',
          'X-Flow': 'flow-{{v}}',
          accept: 'application/x-flow',
        },
        steps: [
          req('a', '/a'),
          req('b', '/b', {
            headers: { 'User-Agent': 'step-agent', 'X-FORWARDED-FOR': '198.51.100.1', 'x-flow': 'step' },
          }),
        ],
      },
    );
    const [a] = target.hits('/a');
    const [b] = target.hits('/b');
    const count = (r: Seen, name: string) =>
      r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i]!.toLowerCase() === name).length;
    assert.equal(a!.headers['user-agent'], 'flow-agent');
    assert.equal(a!.headers['x-forwarded-for'], '203.0.113.7');
    assert.equal(a!.headers['x-flow'], 'flow-var');
    assert.equal(a!.headers.accept, 'application/x-flow');
    assert.equal(b!.headers['user-agent'], 'step-agent');
    assert.equal(b!.headers['x-forwarded-for'], '198.51.100.1');
    assert.equal(b!.headers['x-flow'], 'step');
    assert.equal(b!.headers.accept, 'application/x-flow');
    for (const r of [a!, b!])
      for (const name of ['user-agent', 'x-forwarded-for', 'x-flow', 'accept'])
        assert.equal(count(r, name), 1, `${r.path} ${name}`);
  });

  it('a custom xff_header_name is overridden case-insensitively too', async () => {
    await runFlow(
      { flow_target_url: target.url, xff_header_name: 'X-Client-IP' },
      { steps: [req('a', '/a', { headers: { 'x-client-ip': '192.0.2.55' } })] },
    );
    const [a] = target.hits('/a');
    assert.equal(a!.headers['x-client-ip'], '192.0.2.55');
    assert.equal(a!.rawHeaders.filter((h) => h.toLowerCase() === 'x-client-ip').length, 1);
  });
});

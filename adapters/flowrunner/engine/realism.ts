/**
 * Traffic that looks like many clients: a random public IPv4 per flow instance
 * (never a private, loopback, link-local, CGNAT, documentation, benchmark,
 * multicast or reserved address), and a rotating User-Agent with a matching
 * header profile, web-like or API-like.
 */

/** [first address, prefix length] of every range a fake client address must avoid. */
const NOT_PUBLIC: Array<[number, number, number, number, number]> = [
  [0, 0, 0, 0, 8], // "this network"
  [10, 0, 0, 0, 8], // private
  [100, 64, 0, 0, 10], // CGNAT
  [127, 0, 0, 0, 8], // loopback
  [169, 254, 0, 0, 16], // link-local
  [172, 16, 0, 0, 12], // private
  [192, 0, 0, 0, 24], // IETF protocol assignments
  [192, 0, 2, 0, 24], // TEST-NET-1
  [192, 88, 99, 0, 24], // 6to4 relay
  [192, 168, 0, 0, 16], // private
  [198, 18, 0, 0, 15], // benchmarking
  [198, 51, 100, 0, 24], // TEST-NET-2
  [203, 0, 113, 0, 24], // TEST-NET-3
  [224, 0, 0, 0, 4], // multicast
  [240, 0, 0, 0, 4], // reserved, and 255.255.255.255
];
const RANGES = NOT_PUBLIC.map(([a, b, c, d, bits]) => {
  const base = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { base, mask };
});

/** Whether an IPv4 address (dotted text, or its 32-bit number) is a public unicast address. Anything else is false. */
export function isPublicIpv4(address: number | string): boolean {
  const n = typeof address === 'string' ? fromDotted(address) : address;
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0xffff_ffff) return false;
  for (const r of RANGES) if ((n & r.mask) >>> 0 === r.base) return false;
  return true;
}

function fromDotted(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255 || (m[i]!.length > 1 && m[i]!.startsWith('0'))) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

export function toDotted(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function randomPublicIpv4(random: () => number = Math.random): string {
  for (;;) {
    const n = Math.floor(random() * 0x1_0000_0000) >>> 0;
    if (isPublicIpv4(n)) return toDotted(n);
  }
}

export interface HeaderProfile {
  kind: 'web' | 'api';
  headers: Record<string, string>;
}

const WEB_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0',
];
const API_AGENTS = [
  'curl/8.10.1',
  'python-requests/2.32.3',
  'okhttp/4.12.0',
  'Go-http-client/2.0',
  'axios/1.7.7',
  'PostmanRuntime/7.42.0',
  'Apache-HttpClient/5.3.1 (Java/21)',
];
const LANGUAGES = [
  'en-US,en;q=0.9',
  'en-GB,en;q=0.8',
  'de-DE,de;q=0.9,en;q=0.6',
  'fr-FR,fr;q=0.9,en;q=0.5',
  'es-ES,es;q=0.9',
  'ja-JP,ja;q=0.9,en;q=0.4',
];

const pick = <T>(xs: T[], random: () => number): T => xs[Math.floor(random() * xs.length)]!;

/**
 * A set of client profiles made once per run; a flow instance picks one (the hot path copies nothing).
 * Treat the returned objects as read-only.
 */
export function profilePool(size = 64, random: () => number = Math.random): HeaderProfile[] {
  return Array.from({ length: size }, () => randomProfile(random));
}

/** A client for one flow instance: browser-like (about two in three) or API-client-like. */
export function randomProfile(random: () => number = Math.random): HeaderProfile {
  if (random() < 0.65) {
    return {
      kind: 'web',
      headers: {
        'user-agent': pick(WEB_AGENTS, random),
        accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,application/json;q=0.8,*/*;q=0.7',
        'accept-language': pick(LANGUAGES, random),
        'cache-control': random() < 0.5 ? 'no-cache' : 'max-age=0',
      },
    };
  }
  return { kind: 'api', headers: { 'user-agent': pick(API_AGENTS, random), accept: 'application/json, */*;q=0.5' } };
}

/**
 * IP addresses as 16 bytes, IPv4 in its IPv4-mapped IPv6 form (::ffff:a.b.c.d),
 * so one table of ranges serves both families and a mapped address cannot pass
 * for something other than the IPv4 address it reaches.
 */
import { isIP } from 'node:net';

export type IpBytes = Uint8Array;

/** A CIDR range over IpBytes: an IPv4 /8 is stored as a /104 of the mapped form. */
export interface IpRange {
  bytes: IpBytes;
  bits: number;
  /** As written, for messages. */
  text: string;
}

/** What an address is, for the egress policy. */
export type AddressClass =
  | 'metadata'
  | 'link-local'
  | 'multicast'
  | 'reserved'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'public';

/**
 * The bytes of an IP literal (brackets and an IPv6 zone allowed), or undefined
 * when `text` is not one. Addresses that carry an IPv4 address to where it
 * lives (IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96) come back as that IPv4
 * address: 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through the NAT64 gateway.
 */
export function parseIp(text: string): IpBytes | undefined {
  const bytes = parseLiteral(text);
  return bytes && unwrapIpv4(bytes);
}

/** The bytes as written: IPv4 mapped, IPv6 not unwrapped. */
function parseLiteral(text: string): IpBytes | undefined {
  let s = text.length > 1 && text.charCodeAt(0) === 91 /* [ */ && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const version = isIP(s);
  if (version === 4) return mapped(s.split('.').map(Number));
  if (version === 6) return parseIpv6(s);
  return undefined;
}

function mapped(octets: number[]): IpBytes {
  const out = new Uint8Array(16);
  out[10] = out[11] = 0xff;
  out.set(octets, 12);
  return out;
}

/** `s` is a valid IPv6 address (checked by isIP). */
function parseIpv6(s: string): IpBytes {
  const words = (part: string): number[] =>
    part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? ipv4Words(g) : [parseInt(g, 16)]));
  const gap = s.indexOf('::');
  const head = words(gap < 0 ? s : s.slice(0, gap));
  const tail = gap < 0 ? [] : words(s.slice(gap + 2));
  const all = gap < 0 ? head : [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

function ipv4Words(dotted: string): number[] {
  const [a, b, c, d] = dotted.split('.').map(Number) as [number, number, number, number];
  return [(a << 8) | b, (c << 8) | d];
}

function unwrapIpv4(b: IpBytes): IpBytes {
  const zeroUpTo = (n: number) => b.subarray(0, n).every((x) => x === 0);
  const nat64 =
    b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.subarray(4, 12).every((x) => x === 0);
  // ::a.b.c.d (deprecated IPv4-compatible); :: and ::1 are themselves, not 0.0.0.0 and 0.0.0.1.
  const compatible = zeroUpTo(12) && !(b[12] === 0 && b[13] === 0 && b[14] === 0 && b[15]! <= 1);
  return nat64 || compatible ? mapped([...b.subarray(12)]) : b;
}

/** True for the IPv4-mapped form (an IPv4 address). */
export function isIpv4(b: IpBytes): boolean {
  return b[10] === 0xff && b[11] === 0xff && b.subarray(0, 10).every((x) => x === 0);
}

/** The address in its usual notation: dotted IPv4, or IPv6 with the longest run of zero groups as `::`. */
export function formatIp(b: IpBytes): string {
  if (isIpv4(b)) return [...b.subarray(12)].join('.');
  const words = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  return best < 0 ? hex(words) : `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

/**
 * `10.0.0.0/8`, `fd00::/8`, or a single address (`10.1.2.3` is a /32); undefined when not one. Host bits are
 * ignored. An IPv6 range is taken as written (64:ff9b::/96 does not become 0.0.0.0/0).
 */
export function parseRange(text: string): IpRange | undefined {
  const slash = text.indexOf('/');
  const bytes = parseLiteral(slash < 0 ? text : text.slice(0, slash));
  if (!bytes) return undefined;
  const v4 = isIpv4(bytes) && !text.slice(0, slash < 0 ? undefined : slash).includes(':');
  const max = v4 ? 32 : 128;
  const prefix = slash < 0 ? max : /^\d{1,3}$/.test(text.slice(slash + 1)) ? Number(text.slice(slash + 1)) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { bytes, bits: v4 ? 96 + prefix : prefix, text };
}

export function inRange(ip: IpBytes, range: IpRange): boolean {
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

const range = (text: string): IpRange => parseRange(text)!;

/** First match wins: the metadata addresses sit inside ranges (fc00::/7, 100.64/10) that settings may allow. */
const CLASSES: Array<[IpRange, AddressClass]> = [
  [range('fd00:ec2::254'), 'metadata'], // AWS IMDS over IPv6
  [range('100.100.100.200'), 'metadata'], // Alibaba Cloud
  [range('168.63.129.16'), 'metadata'], // Azure WireServer
  [range('169.254.0.0/16'), 'link-local'], // AWS, GCP, Azure, OCI, DigitalOcean metadata: 169.254.169.254
  [range('fe80::/10'), 'link-local'],
  [range('224.0.0.0/4'), 'multicast'],
  [range('ff00::/8'), 'multicast'],
  [range('240.0.0.0/4'), 'reserved'], // with 255.255.255.255, the broadcast address
  [range('0.0.0.0/8'), 'unspecified'], // connecting to 0.0.0.0 reaches this machine
  [range('::/128'), 'unspecified'],
  [range('127.0.0.0/8'), 'loopback'],
  [range('::1/128'), 'loopback'],
  [range('10.0.0.0/8'), 'private'],
  [range('172.16.0.0/12'), 'private'],
  [range('192.168.0.0/16'), 'private'],
  [range('100.64.0.0/10'), 'private'], // carrier-grade NAT, also used inside clusters
  [range('fc00::/7'), 'private'],
];

export function classify(ip: IpBytes): AddressClass {
  for (const [r, c] of CLASSES) if (inRange(ip, r)) return c;
  return 'public';
}

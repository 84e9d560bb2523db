/**
 * EGRESS_ALLOWED_HOSTS: host names (`api.example.com`), wildcards
 * (`*.example.com`: any subdomain, not example.com itself) and IP ranges
 * (`10.1.0.0/16`, a bare address is a /32 or /128).
 */
import { inRange, parseRange, type IpBytes, type IpRange } from './ip-address.js';

export interface Allowlist {
  names: ReadonlySet<string>;
  /** `.example.com` for `*.example.com`. */
  suffixes: readonly string[];
  ranges: readonly IpRange[];
  /** As configured, for messages. */
  entries: readonly string[];
}

const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_NAME = new RegExp(`^(?:\\*\\.)?(?:${LABEL}\\.)*${LABEL}$`);

/** Lower case, without IPv6 brackets and without the trailing dot of a fully qualified name (`metadata.goog.`). */
export function normalizeHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** Throws an Error naming the first entry that is neither a host name, a wildcard, an address nor a CIDR. */
export function parseAllowlist(entries: readonly string[]): Allowlist {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const ranges: IpRange[] = [];
  for (const raw of entries) {
    const entry = raw.trim();
    const range = parseRange(entry.startsWith('[') ? entry.replace(/^\[([^\]]*)\]/, '$1') : entry);
    if (range) {
      ranges.push(range);
      continue;
    }
    const name = normalizeHost(entry);
    if (!HOST_NAME.test(name)) {
      throw new Error(
        `${JSON.stringify(raw)} is not a host name (api.example.com), a wildcard (*.example.com), an IP address or a CIDR (10.0.0.0/8); give the host alone, without scheme, port or path`,
      );
    }
    if (name.startsWith('*.')) suffixes.push(name.slice(1));
    else names.add(name);
  }
  return { names, suffixes, ranges, entries: entries.map((e) => e.trim()) };
}

/** `name` is normalized (normalizeHost). */
export function nameListed(list: Allowlist, name: string): boolean {
  if (list.names.has(name)) return true;
  for (const s of list.suffixes) if (name.length > s.length && name.endsWith(s)) return true;
  return false;
}

export function addressListed(list: Allowlist, ip: IpBytes): boolean {
  for (const r of list.ranges) if (inRange(ip, r)) return true;
  return false;
}

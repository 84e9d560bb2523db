/**
 * The destination policy of outbound HTTP (api and flowrunner): which
 * addresses and hosts a step may reach. Link-local and cloud metadata
 * addresses are always refused.
 *
 * Addresses are judged after DNS resolution: `lookup` goes into the HTTP
 * clients' connect options, so every new connection (redirects included) is
 * judged on the address it would really reach, and a refused one fails before
 * any socket connects. IP literals skip lookup in net.connect, so callers
 * check a literal host with checkHost before the request.
 */
import { promises as dns, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { addressListed, nameListed, normalizeHost, parseAllowlist, type Allowlist } from './egress-allowlist.js';
import { EgressRefusal, type RefusalReason } from './egress-refusal.js';
import { classify, formatIp, parseIp, type IpBytes } from './ip-address.js';

/** How host names become addresses (dns.lookup with `all: true`); injectable so tests can prove refusals after DNS without real DNS. */
export type Resolver = (hostname: string, options: LookupAllOptions) => Promise<LookupAddress[]>;

export interface EgressSettings {
  /** Loopback addresses (127/8, ::1; also 0.0.0.0/8 and ::, which reach this machine): the app next to the sidecar. */
  allowLoopback: boolean;
  /** Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7). */
  allowPrivate: boolean;
  /**
   * Host names (`api.example.com`, `*.example.com`) or CIDRs; undefined = any host whose addresses are allowed.
   * An address inside a listed CIDR is allowed even when private or loopback (never when link-local or metadata).
   */
  allowedHosts?: string[];
  /** Default: the system resolver (dns.lookup). */
  resolve?: Resolver;
}

export const DEFAULT_EGRESS: EgressSettings = { allowLoopback: true, allowPrivate: false };

/** Names of cloud metadata services, refused whatever they resolve to (a hosts file or a proxy may map them anywhere). */
const METADATA_NAMES: ReadonlySet<string> = new Set([
  'metadata', // GCP's short name
  'metadata.google.internal',
  'metadata.goog',
  'instance-data', // AWS
  'instance-data.ec2.internal',
  'metadata.azure.com',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
  'metadata.packet.net',
]);

const ALWAYS_REFUSED: ReadonlySet<string> = new Set(['metadata', 'link-local', 'multicast', 'reserved']);
/** Hosts remembered as passing checkHost; past this the memory starts over (flows may render many hosts). */
const MAX_REMEMBERED_HOSTS = 1024;

/** For a host name that passed: its addresses are judged by the ranges (`any`), or must lie in an allowlisted CIDR. */
type Allowance = 'any' | 'ranges-only';

const systemResolver: Resolver = (hostname, options) => dns.lookup(hostname, options);

export class EgressPolicy {
  private readonly allowlist?: Allowlist;
  private readonly resolve: Resolver;
  /** Hosts that passed checkHost: the hot path of a request to a known host is one Set lookup. */
  private readonly passed = new Set<string>();

  /** Throws an Error naming a bad allowedHosts entry. */
  constructor(private readonly settings: EgressSettings = DEFAULT_EGRESS) {
    this.allowlist = settings.allowedHosts?.length ? parseAllowlist(settings.allowedHosts) : undefined;
    this.resolve = settings.resolve ?? systemResolver;
  }

  /** The settings, for the same policy in another thread; undefined when a custom resolver (a function) is in them. */
  portableSettings(): EgressSettings | undefined {
    if (this.settings.resolve) return undefined;
    const { allowLoopback, allowPrivate, allowedHosts } = this.settings;
    return { allowLoopback, allowPrivate, allowedHosts: allowedHosts && [...allowedHosts] };
  }

  /**
   * Throws EgressRefusal (forbidden) unless `host` (a URL's hostname) may be reached: an IP literal is judged
   * whole; a name by its name, its addresses later by `lookup`.
   */
  checkHost(host: string): void {
    if (this.passed.has(host)) return;
    const ip = parseIp(host);
    const refusal = ip ? this.addressRefusal(host, ip, this.literalAllowance()) : this.allowance(host);
    if (refusal instanceof EgressRefusal) throw refusal;
    if (this.passed.size >= MAX_REMEMBERED_HOSTS) this.passed.clear();
    this.passed.add(host);
  }

  /** Throws EgressRefusal unless `host` may be reached at `address` (a DNS override: the address stands in for DNS). */
  checkAddress(host: string, address: string): void {
    const allowance = parseIp(host) ? this.literalAllowance() : this.allowance(host);
    if (allowance instanceof EgressRefusal) throw allowance;
    const ip = parseIp(address);
    const refusal = ip ? this.addressRefusal(host, ip, allowance) : new EgressRefusal(host, address, 'reserved');
    if (refusal) throw refusal;
  }

  /**
   * checkHost, and for a name its DNS answer now: for checks before a run starts. A name that does not
   * resolve passes (its requests fail as network errors), so a DNS hiccup does not refuse a step.
   */
  async checkResolved(host: string): Promise<void> {
    this.checkHost(host);
    if (parseIp(host)) return;
    try {
      await this.allowedAddresses(host, {});
    } catch (err) {
      if (err instanceof EgressRefusal) throw err;
    }
  }

  /**
   * dns.lookup for net.connect and tls.connect (got's `dnsLookup`, undici's `connect.lookup`): resolves,
   * drops the addresses the policy refuses, and fails with the refusal when none is left, so no socket
   * connects. Handles `all: true` (what net uses with autoSelectFamily) and the single-address form.
   */
  readonly lookup = ((
    hostname: string,
    options: LookupOptions | number | undefined,
    callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    const opts: LookupOptions = typeof options === 'number' ? { family: options } : (options ?? {});
    this.allowedAddresses(hostname, opts).then(
      (list) => (opts.all ? callback(null, list) : callback(null, list[0]!.address, list[0]!.family)),
      (err: Error) => callback(err, opts.all ? [] : '', 0),
    );
  }) as LookupFunction;

  private async allowedAddresses(hostname: string, options: LookupOptions): Promise<LookupAddress[]> {
    const allowance = this.allowance(hostname);
    if (allowance instanceof EgressRefusal) throw allowance;
    const answers = await this.resolve(hostname, { ...options, all: true });
    const allowed: LookupAddress[] = [];
    let refused: EgressRefusal | undefined;
    for (const a of answers) {
      const ip = parseIp(a.address);
      const refusal = ip
        ? this.addressRefusal(hostname, ip, allowance)
        : new EgressRefusal(hostname, a.address, 'reserved');
      if (refusal) refused ??= refusal;
      else allowed.push(a);
    }
    if (allowed.length > 0) return allowed;
    throw refused ?? Object.assign(new Error(`${hostname} resolved to no address`), { code: 'ENOTFOUND', hostname });
  }

  /** What a host name's addresses must satisfy, or the refusal of the name itself. */
  private allowance(host: string): Allowance | EgressRefusal {
    const name = normalizeHost(host);
    if (METADATA_NAMES.has(name)) return new EgressRefusal(host, undefined, 'metadata');
    if (!this.allowlist || nameListed(this.allowlist, name)) return 'any';
    if (this.allowlist.ranges.length > 0) return 'ranges-only';
    return new EgressRefusal(host, undefined, 'not-allowed', this.allowlist.entries);
  }

  /** An IP literal matches no host name entry: with an allowlist it must lie in one of its CIDRs. */
  private literalAllowance(): Allowance {
    return this.allowlist ? 'ranges-only' : 'any';
  }

  private addressRefusal(host: string, ip: IpBytes, allowance: Allowance): EgressRefusal | undefined {
    const kind = classify(ip);
    const address = formatIp(ip);
    if (ALWAYS_REFUSED.has(kind)) return new EgressRefusal(host, address, kind as RefusalReason);
    if (this.allowlist && addressListed(this.allowlist, ip)) return undefined;
    if (allowance === 'ranges-only') return new EgressRefusal(host, address, 'not-allowed', this.allowlist?.entries);
    if ((kind === 'loopback' || kind === 'unspecified') && !this.settings.allowLoopback)
      return new EgressRefusal(host, address, kind);
    if (kind === 'private' && !this.settings.allowPrivate) return new EgressRefusal(host, address, 'private');
    return undefined;
  }
}

/** The policy of the default settings, for engines built without one (tests, dry-run plans). */
export const DEFAULT_EGRESS_POLICY = new EgressPolicy(DEFAULT_EGRESS);

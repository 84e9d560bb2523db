import { checkServerIdentity } from 'node:tls';
import type { Options } from 'got';

/** What `createNativeRequestOptions` reads of got's private state. */
interface Internals {
  url: URL;
  http2: boolean;
  agent: { http?: unknown; https?: unknown };
  https: Record<string, unknown> & { checkServerIdentity?: unknown };
  cacheOptions: Record<string, unknown>;
  dnsLookup?: unknown;
  dnsCache?: { lookup?: unknown };
  [key: string]: unknown;
}

export type Build = (this: Options) => Record<string, unknown>;

const INSTALLED = Symbol('runtime-agent.fastRequestOptions');

/**
 * got builds the options of every request it sends in `createNativeRequestOptions`, as a spread of its cache
 * options followed by about thirty more keys. On Node 20's V8 every object made that way gets a hidden class of
 * its own (a spread clone that then gains keys shares no transitions): about 25 µs of CPU per request, and
 * garbage that mostly outlives a scavenge (docs/benchmarks.md). This builds the same object (the same keys in
 * the same order, with the same values) by assignment, which V8 keeps on one hidden class. HTTP/2 requests,
 * which the api adapter never sends, keep got's own. It replaces got's method for the whole process; in the agent
 * only the api adapter uses got. A spec compares the two on the options the adapter sends.
 */
export function installFastRequestOptions(options: typeof Options): void {
  const proto = options.prototype as unknown as Record<PropertyKey, unknown> & { createNativeRequestOptions: Build };
  if (proto[INSTALLED]) return;
  const original = proto.createNativeRequestOptions;
  proto.createNativeRequestOptions = fastRequestOptions(original);
  proto[INSTALLED] = original;
}

/** The fast `createNativeRequestOptions`, falling back to `original` (got's) for HTTP/2. */
export function fastRequestOptions(original: Build): Build {
  return function (this: Options) {
    const self = this as unknown as { _internals: Internals; _unixOptions?: Record<string, unknown> };
    const internals = self._internals;
    if (internals.http2) return original.call(this);
    const https = internals.https;
    const o: Record<string, unknown> = Object.assign({}, internals.cacheOptions, self._unixOptions);
    o.ALPNProtocols = https.alpnProtocols;
    o.ca = https.certificateAuthority;
    o.cert = https.certificate;
    o.key = https.key;
    o.passphrase = https.passphrase;
    o.pfx = https.pfx;
    o.rejectUnauthorized = https.rejectUnauthorized;
    o.checkServerIdentity = https.checkServerIdentity ?? checkServerIdentity;
    o.servername = https.serverName;
    o.ciphers = https.ciphers;
    o.honorCipherOrder = https.honorCipherOrder;
    o.minVersion = https.minVersion;
    o.maxVersion = https.maxVersion;
    o.sigalgs = https.signatureAlgorithms;
    o.sessionTimeout = https.tlsSessionLifetime;
    o.dhparam = https.dhparam;
    o.ecdhCurve = https.ecdhCurve;
    o.crl = https.certificateRevocationLists;
    o.secureOptions = https.secureOptions;
    o.lookup = internals.dnsLookup ?? internals.dnsCache?.lookup;
    o.family = internals.dnsLookupIpVersion;
    o.agent = internals.url.protocol === 'https:' ? internals.agent.https : internals.agent.http;
    o.setHost = internals.setHost;
    o.method = internals.method;
    o.maxHeaderSize = internals.maxHeaderSize;
    o.localAddress = internals.localAddress;
    o.headers = internals.headers;
    o.createConnection = internals.createConnection;
    o.timeout = undefined;
    o.h2session = internals.h2session;
    return o;
  };
}

/** got's own `createNativeRequestOptions`, whether or not the fast one is installed. */
export function gotRequestOptions(options: typeof Options): Build {
  const proto = options.prototype as unknown as Record<PropertyKey, Build | undefined> & {
    createNativeRequestOptions: Build;
  };
  return proto[INSTALLED] ?? proto.createNativeRequestOptions;
}

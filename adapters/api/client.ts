import http from 'node:http';
import https from 'node:https';
import type { Got } from 'got';
import type { EgressPolicy } from '../shared/egress.js';
import { installFastRequestOptions } from './request-options.js';

type GotModule = typeof import('got');

/**
 * got is imported by the first request, not at start: an agent that sends none does not hold it, nor
 * what it brings (http2-wrapper, cacheable-request and the rest; docs/operations.md#memory).
 */
let gotModule: GotModule | undefined;

/** got once a request has imported it; before that nothing it throws can exist. */
export function gotIfLoaded(): GotModule | undefined {
  return gotModule;
}

/**
 * One client per api adapter, so one egress policy per keep-alive pool (a pooled socket was judged by the
 * policy that opened it). got's retries are off because the engine owns retries, and HTTP errors resolve
 * so `expectStatus` decides what fails. The policy's lookup judges the address of every new connection;
 * a redirect target is checked before it is followed, since an IP literal never goes through lookup.
 */
export class ApiClient {
  /** The got instance, once the first request has built it with load(). */
  got: Got | undefined;
  private loading: Promise<Got> | undefined;

  constructor(private readonly policy: EgressPolicy) {}

  /** Imports got and builds the instance, once: concurrent first requests share one instance (one keep-alive pool). */
  load(): Promise<Got> {
    this.loading ??= import('got').then((module) => {
      installFastRequestOptions(module.Options);
      gotModule = module;
      this.got = extend(module.default, this.policy);
      return this.got;
    });
    return this.loading;
  }
}

function extend(got: Got, policy: EgressPolicy): Got {
  return got.extend({
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    allowGetBody: true,
    responseType: 'text',
    agent: { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) },
    dnsLookup: policy.lookup,
    hooks: {
      beforeRedirect: [
        (options) => {
          const url = options.url;
          if (url instanceof URL) policy.checkHost(url.hostname);
        },
      ],
    },
  });
}

import http from 'node:http';
import https from 'node:https';
import got, { type Got } from 'got';
import type { EgressPolicy } from '../shared/egress.js';

/**
 * One client per api adapter, so one egress policy per keep-alive pool (a pooled socket was judged by the
 * policy that opened it). got's retries are off because the engine owns retries, and HTTP errors resolve
 * so `expectStatus` decides what fails. The policy's lookup judges the address of every new connection;
 * a redirect target is checked before it is followed, since an IP literal never goes through lookup.
 */
export function createClient(policy: EgressPolicy): Got {
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

/**
 * One attempt of a result callback: a POST of the stored body to the stored URL, through the egress policy
 * (the host is judged before the request, every address by the policy's lookup before a socket connects),
 * signed when a key is set, ended after the per-attempt timeout or when the agent stops.
 */
import http from 'node:http';
import https from 'node:https';
import type { EgressPolicy } from '../../../../adapters/shared/egress.js';
import { findRefusal } from '../../../../adapters/shared/egress-refusal.js';
import type { Delivery } from '../store/types.js';
import { SIGNATURE_HEADER, signDelivery } from './signature.js';

export const EVENT_HEADER = 'X-Runtime-Agent-Event';
export const DELIVERY_HEADER = 'X-Runtime-Agent-Delivery';

/** What one attempt came to: the worker turns it into a state (and the metrics into an `outcome` label). */
export interface AttemptResult {
  outcome: 'delivered' | 'gone' | 'http_error' | 'timeout' | 'network_error' | 'refused';
  status: number | null;
  error: string | null;
}

/** Sends one delivery once; never throws. `signal` aborts it (the agent is stopping). */
export type Sender = (d: Delivery, signal: AbortSignal) => Promise<AttemptResult>;

export interface CallbackSenderOptions {
  egress: EgressPolicy;
  /** RESULT_CALLBACK_HMAC_KEY_FILE's key; without it deliveries are not signed. */
  hmacKey?: Buffer;
  timeoutMs: number;
  userAgent: string;
}

export function callbackSender(o: CallbackSenderOptions): Sender {
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  return (d, signal) =>
    new Promise<AttemptResult>((resolve) => {
      let url: URL;
      try {
        url = new URL(d.target);
        o.egress.checkHost(url.hostname);
      } catch (err) {
        return resolve(failure(err, false));
      }
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(d.body),
        'user-agent': o.userAgent,
        [EVENT_HEADER]: d.event,
        [DELIVERY_HEADER]: d.deliveryId,
      };
      if (o.hmacKey) headers[SIGNATURE_HEADER] = signDelivery(o.hmacKey, d.body, Math.floor(Date.now() / 1000));
      const secure = url.protocol === 'https:';
      let timedOut = false;
      const req = (secure ? https : http).request(url, {
        method: 'POST',
        headers,
        lookup: o.egress.lookup,
        agent: secure ? agents.https : agents.http,
        signal,
      });
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy(new Error(`no answer within ${o.timeoutMs} ms`));
      }, o.timeoutMs);
      req.once('response', (res) => {
        clearTimeout(timer);
        res.resume();
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve({ outcome: 'delivered', status, error: null });
        if (status === 410) return resolve({ outcome: 'gone', status, error: 'answered 410 Gone: no more deliveries' });
        resolve({ outcome: 'http_error', status, error: `answered HTTP ${status}` });
      });
      req.once('error', (err) => {
        clearTimeout(timer);
        resolve(failure(err, timedOut));
      });
      req.end(d.body);
    });
}

function failure(err: unknown, timedOut: boolean): AttemptResult {
  const refusal = findRefusal(err);
  if (refusal) return { outcome: 'refused', status: null, error: refusal.message };
  const e = err as NodeJS.ErrnoException;
  if (timedOut) return { outcome: 'timeout', status: null, error: e.message };
  const message = e.name === 'AbortError' ? 'the agent stopped during the attempt' : e.message;
  return { outcome: 'network_error', status: null, error: e.code ? `${e.code}: ${message}` : message };
}

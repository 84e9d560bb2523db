/**
 * One attempt of a pull-mode report: the stored body POSTed to the task's result URL with the agent's
 * headers, and the delivery id as Idempotency-Key (the same on every retry, so the Manager can drop
 * duplicates). 2xx: delivered. 404, 409, 410: the Manager no longer wants it (gone). Else: retried.
 */
import type { AttemptResult, Sender } from '../delivery/callback-sender.js';
import { type ManagerClient, ManagerUnreachable } from './manager-client.js';

const NOT_WANTED = new Set([404, 409, 410]);

export function reportSender(client: ManagerClient): Sender {
  return async (d, signal) => {
    let status: number;
    try {
      const res = await fetch(d.target, {
        method: 'POST',
        headers: client.headers(d.deliveryId),
        body: d.body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(client.settings.requestTimeoutMs)]),
      });
      await res.arrayBuffer();
      status = res.status;
    } catch (err) {
      const e = new ManagerUnreachable(`POST ${d.target}`, err);
      const timedOut = (err as Error).name === 'TimeoutError';
      return { outcome: timedOut ? 'timeout' : 'network_error', status: null, error: e.message };
    }
    if (status >= 200 && status < 300) return { outcome: 'delivered', status, error: null };
    if (NOT_WANTED.has(status))
      return { outcome: 'gone', status, error: `answered HTTP ${status}: the Manager no longer wants this report` };
    return { outcome: 'http_error', status, error: `answered HTTP ${status}` } satisfies AttemptResult;
  };
}

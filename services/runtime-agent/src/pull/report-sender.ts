/**
 * One attempt of a pull-mode report: the stored body POSTed to the task's result URL with the agent's
 * headers, and the delivery id as Idempotency-Key (the same on every retry, so the Manager can drop
 * duplicates). 2xx: delivered. 404, 409, 410: the Manager no longer wants it (gone). Else: retried.
 */
import type { AttemptResult, Sender } from '../delivery/callback-sender.js';
import { type ManagerClient, ManagerUnreachable } from './manager-client.js';

const NOT_WANTED = new Set([404, 409, 410]);

export function reportSender(client: ManagerClient): Sender {
  return async (d, signal): Promise<AttemptResult> => {
    let status: number;
    try {
      status = (await client.send(d.target, d.body, d.deliveryId, signal)).status;
    } catch (err) {
      const timedOut = err instanceof ManagerUnreachable && err.timedOut;
      return { outcome: timedOut ? 'timeout' : 'network_error', status: null, error: (err as Error).message };
    }
    if (status >= 200 && status < 300) return { outcome: 'delivered', status, error: null };
    if (NOT_WANTED.has(status))
      return { outcome: 'gone', status, error: `answered HTTP ${status}: the Manager no longer wants this report` };
    return { outcome: 'http_error', status, error: `answered HTTP ${status}` };
  };
}

/** Result deliveries as the API shows them: in the execution record, and the backlog in /health. */
import { maskUrl } from '../delivery/targets.js';
import type { Delivery, OutboxBacklog } from '../store/types.js';

/** One delivery of an execution's results (the URL with its password and query values masked). */
export function deliveryView(d: Delivery) {
  return {
    delivery_id: d.deliveryId,
    kind: d.kind,
    event: d.event,
    url: maskUrl(d.target),
    state: d.state,
    attempts: d.attempts,
    last_error: d.lastError,
    last_status: d.lastStatus,
    next_attempt_at: d.state === 'pending' ? new Date(d.nextAttemptAt).toISOString() : null,
    created_at: d.createdAt,
    delivered_at: d.deliveredAt,
  };
}

/** The outbox of one kind at a glance: what waits, since when, and what was given up. */
export function backlogView(b: OutboxBacklog, nowMs = Date.now()) {
  return {
    pending: b.pending,
    oldest_pending_seconds:
      b.oldestPendingMs === null ? null : Math.max(0, Math.round((nowMs - b.oldestPendingMs) / 1000)),
    delivered: b.delivered,
    dead: b.dead,
    gone: b.gone,
  };
}

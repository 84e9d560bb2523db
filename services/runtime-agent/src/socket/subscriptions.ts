/**
 * The journal subscriptions of each socket. A subscription follows the journal through the service layer
 * (stored events after `since`, then live ones, none missed and none twice) and turns each event into
 * `activity_log` and `status_changed`. A socket's subscriptions end with it.
 */
import type { Socket } from 'socket.io';
import { AgentError } from '../../../../adapters/errors.js';
import type { Principal } from '../auth/roles.js';
import type { JournalConsumer } from '../metrics.js';
import type { AgentService, EventQuery } from '../service/agent-service.js';
import type { JournalEvent } from '../store/types.js';
import { activityLog, statusChanged } from './journal-events.js';

/** Subscriptions one socket may hold at once. */
export const MAX_SUBSCRIPTIONS_PER_SOCKET = 32;

export class Subscriptions implements JournalConsumer {
  private readonly bySocket = new Map<string, Map<string, () => void>>();
  private counter = 0;

  constructor(private readonly service: AgentService) {}

  /**
   * Starts following for `socket`; returns its id. Events are held until `release` is called (once the
   * subscribe command's answer is out), so the client learns the id before the first event.
   */
  open(socket: Socket, principal: Principal, q: EventQuery): { id: string; release: () => void } {
    const mine = this.bySocket.get(socket.id) ?? new Map<string, () => void>();
    if (mine.size >= MAX_SUBSCRIPTIONS_PER_SOCKET) {
      throw new AgentError(
        'conflict',
        `a connection may hold at most ${MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions; unsubscribe from one first`,
        { details: { subscriptions: [...mine.keys()] } },
      );
    }
    const id = `sub-${++this.counter}`;
    let held: JournalEvent[] | undefined = [];
    const send = (e: JournalEvent) => {
      socket.emit('activity_log', activityLog(e, id));
      const change = statusChanged(e, id);
      if (change) socket.emit('status_changed', change);
    };
    // The service checks the caller's role and the filter; it throws before anything is followed.
    const stop = this.service.followEvents(principal, q, () => (e) => (held ? held.push(e) : send(e)));
    mine.set(id, stop);
    this.bySocket.set(socket.id, mine);
    return {
      id,
      release: () => {
        const backlog = held ?? [];
        held = undefined;
        for (const e of backlog) send(e);
      },
    };
  }

  /** Ends one subscription of `socket`, or all of them; returns the ids ended. */
  close(socket: Socket, id?: string): string[] {
    const mine = this.bySocket.get(socket.id);
    if (!mine) return [];
    const ids = id === undefined ? [...mine.keys()] : mine.has(id) ? [id] : [];
    for (const i of ids) {
      mine.get(i)!();
      mine.delete(i);
    }
    if (mine.size === 0) this.bySocket.delete(socket.id);
    return ids;
  }

  ids(socket: Socket): string[] {
    return [...(this.bySocket.get(socket.id)?.keys() ?? [])];
  }

  followers(): number {
    let n = 0;
    for (const m of this.bySocket.values()) n += m.size;
    return n;
  }

  /** Events are handed to socket.io at once; what it buffers per connection is not counted here. */
  backlog(): number {
    return 0;
  }
}

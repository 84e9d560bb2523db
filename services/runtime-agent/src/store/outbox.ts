/**
 * The outbox: every result still to deliver (result callbacks today, pull mode's reports later), staged like
 * journal events and written in the same transaction as the state change it reports. Its body is rendered
 * inside that transaction, from the state as it is written, and kept: every attempt sends the same bytes
 * under the same delivery id, across restarts too. The delivery loop (delivery/worker.ts) reads what is due
 * and records each attempt's outcome here.
 */
import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { nowIso } from '../clock.js';
import type { Delivery, DeliveryKind, DeliveryState, OutboxBacklog } from './types.js';
import type { WriteOptions, WriteQueue } from './write-queue.js';

/** A delivery staged with a state change; `render` runs inside the transaction that writes that change. */
export interface StagedDelivery {
  kind: DeliveryKind;
  executionId: string;
  event: string;
  /**
   * Where it goes and what it says, given its delivery id; undefined when there is nowhere to deliver it.
   * Reads the store without flushing (it runs inside a commit); must not write.
   */
  render: (deliveryId: string) => { target: string; body: string } | undefined;
}

/** What an attempt came to (attempts counted by the caller). */
export interface AttemptOutcome {
  state: DeliveryState;
  attempts: number;
  /** Epoch ms of the next attempt, when it stays pending. */
  nextAttemptAt?: number;
  lastError: string | null;
  lastStatus: number | null;
}

interface OutboxRow {
  seq: number;
  delivery_id: string;
  kind: DeliveryKind;
  execution_id: string;
  event: string;
  target: string;
  body: string;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  last_status: number | null;
  created_at: string;
  created_ms: number;
  delivered_at: string | null;
}

function toDelivery(r: OutboxRow): Delivery {
  return {
    seq: r.seq,
    deliveryId: r.delivery_id,
    kind: r.kind,
    executionId: r.execution_id,
    event: r.event,
    target: r.target,
    body: r.body,
    state: r.state,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    lastStatus: r.last_status,
    createdAt: r.created_at,
    createdMs: r.created_ms,
    deliveredAt: r.delivered_at,
  };
}

export class Outbox {
  private pending: StagedDelivery[] = [];
  /** Staged deliveries the transaction under way wrote (or skipped): staged again if it rolls back. */
  private writing: StagedDelivery[] = [];
  private added = 0;
  private readonly listeners = new Set<() => void>();
  private readonly stmt: Record<
    'insert' | 'due' | 'settle' | 'ofExecution' | 'backlog' | 'nextDue' | 'hasKind',
    Database.Statement
  >;

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
    private readonly flush: () => void,
    /** A delivery whose render threw: reported, and left out, so that the state change still commits. */
    private readonly onError: (err: unknown) => void,
  ) {
    this.stmt = {
      insert: db.prepare(`INSERT INTO outbox (delivery_id, kind, execution_id, event, target, body, state,
        next_attempt_at, created_at, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`),
      // Oldest first, and per execution only its oldest pending row: an execution's results arrive in order.
      due: db.prepare(`SELECT * FROM outbox o WHERE o.state = 'pending' AND o.kind = @kind AND o.next_attempt_at <= @now
        AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.execution_id = o.execution_id AND p.state = 'pending'
          AND p.kind = o.kind AND p.seq < o.seq)
        ORDER BY o.next_attempt_at, o.seq LIMIT @limit`),
      settle: db.prepare(`UPDATE outbox SET state = @state, attempts = @attempts, next_attempt_at = @next,
        last_error = @error, last_status = @status, delivered_at = @delivered WHERE delivery_id = @id`),
      ofExecution: db.prepare('SELECT * FROM outbox WHERE execution_id = ? ORDER BY seq'),
      hasKind: db.prepare('SELECT 1 FROM outbox WHERE execution_id = ? AND kind = ? LIMIT 1'),
      backlog: db.prepare(
        `SELECT state, COUNT(*) AS n, MIN(created_ms) AS oldest FROM outbox WHERE kind = ? GROUP BY state`,
      ),
      nextDue: db.prepare(`SELECT MIN(o.next_attempt_at) AS at FROM outbox o WHERE o.state = 'pending' AND o.kind = ?
        AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.execution_id = o.execution_id AND p.state = 'pending'
          AND p.kind = o.kind AND p.seq < o.seq)`),
    };
    queue.addStage({
      pending: () => this.pending.length > 0,
      write: () => {
        const now = Date.now();
        const createdAt = nowIso();
        for (const d of this.pending) {
          this.writing.push(d);
          const deliveryId = randomUUID();
          let rendered: ReturnType<StagedDelivery['render']>;
          try {
            rendered = d.render(deliveryId);
          } catch (err) {
            this.onError(err);
            continue;
          }
          if (!rendered) continue;
          this.stmt.insert.run(
            deliveryId,
            d.kind,
            d.executionId,
            d.event,
            rendered.target,
            rendered.body,
            now,
            createdAt,
            now,
          );
          this.added++;
        }
        this.pending = [];
      },
      committed: () => {
        this.writing = [];
        if (this.added === 0) return;
        this.added = 0;
        for (const l of this.listeners) l();
      },
      rolledBack: () => {
        this.pending = [...this.writing, ...this.pending];
        this.writing = [];
        this.added = 0;
      },
    });
  }

  /**
   * Stages a delivery for the next state commit. Stage it in the same synchronous stretch as the state change
   * it reports, with the same write options: both land in the same transaction, or neither does.
   */
  stage(d: StagedDelivery, options: WriteOptions): void {
    this.pending.push(d);
    this.queue.touch(options);
  }

  /** Called after a commit that added deliveries (the delivery loop wakes up); returns the unsubscribe function. */
  onAdded(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Pending deliveries of `kind` due at `nowMs`, oldest first, at most one per execution (its oldest). */
  due(kind: DeliveryKind, nowMs: number, limit: number): Delivery[] {
    this.flush();
    return (this.stmt.due.all({ kind, now: nowMs, limit }) as OutboxRow[]).map(toDelivery);
  }

  /** Epoch ms when `due` first has something to give (each execution's oldest pending row), or undefined when nothing is pending. */
  nextDue(kind: DeliveryKind): number | undefined {
    this.flush();
    return (this.stmt.nextDue.get(kind) as { at: number | null }).at ?? undefined;
  }

  /** Records an attempt's outcome, committed at once. */
  settle(deliveryId: string, o: AttemptOutcome): void {
    this.queue.write({}, () =>
      this.stmt.settle.run({
        id: deliveryId,
        state: o.state,
        attempts: o.attempts,
        next: o.nextAttemptAt ?? 0,
        error: o.lastError,
        status: o.lastStatus,
        delivered: o.state === 'delivered' ? nowIso() : null,
      }),
    );
  }

  /** Every delivery of one execution, oldest first. */
  ofExecution(executionId: string): Delivery[] {
    this.flush();
    return (this.stmt.ofExecution.all(executionId) as OutboxRow[]).map(toDelivery);
  }

  /** Whether the execution has a delivery of `kind` already; reads without flushing (for a render). */
  has(executionId: string, kind: DeliveryKind): boolean {
    return this.stmt.hasKind.get(executionId, kind) !== undefined;
  }

  backlog(kind: DeliveryKind): OutboxBacklog {
    this.flush();
    const out: OutboxBacklog = { pending: 0, oldestPendingMs: null, dead: 0, gone: 0, delivered: 0 };
    for (const r of this.stmt.backlog.all(kind) as Array<{ state: DeliveryState; n: number; oldest: number }>) {
      out[r.state] = r.n;
      if (r.state === 'pending') out.oldestPendingMs = r.oldest;
    }
    return out;
  }
}

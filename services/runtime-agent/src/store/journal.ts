/**
 * The event journal: every state change, appended in the same transaction as the change itself, with a
 * global, strictly increasing `seq`. Live subscribers hear an event only once it is committed, so a client
 * that resumes from the last seq it saw, even across a crash of the agent, finds exactly what follows it.
 */
import type Database from 'better-sqlite3';
import { nowIso } from '../clock.js';
import { BatchInsert } from './batch-insert.js';
import { Conditions, Statements } from './statements.js';
import type { EventFilter, JournalEvent, NewEvent } from './types.js';
import type { WriteOptions, WriteQueue } from './write-queue.js';

type Listener = (event: JournalEvent) => void;

/** Unless told otherwise, an event is committed at the end of the turn, like a status change. */
const EVENT_WRITE: WriteOptions = { deferred: true, critical: true };

export class Journal {
  /** Events waiting for the next state commit, with their data as JSON. */
  private pending: Array<[JournalEvent, string]> = [];
  /** Events the transaction under way wrote (from `pending`, and inside other writes): published when it commits. */
  private writing: Array<[JournalEvent, string]> = [];
  private prepared: JournalEvent[] = [];
  private readonly listeners = new Set<Listener>();
  private readonly last: Database.Statement;
  private readonly batch: BatchInsert<[JournalEvent, string]>;
  private readonly statements: Statements;

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
    private readonly flush: () => void,
    /** A subscriber that threw: reported here, so that neither the commit nor the other subscribers stop. */
    private readonly onListenerError: (err: unknown) => void = () => {},
  ) {
    this.last = db.prepare(`SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) AS seq`);
    this.statements = new Statements(db);
    const columns = ['seq', 'ts', 'type', 'execution_id', 'workflow_id', 'step', 'data'];
    this.batch = new BatchInsert<[JournalEvent, string]>(db, 'INSERT INTO events', columns, ([e, data]) => [
      e.seq,
      e.ts,
      e.type,
      e.execution_id,
      e.workflow_id,
      e.step ?? null,
      data,
    ]);
    queue.addStage({
      pending: () => this.pending.length > 0,
      write: () => {
        if (this.pending.length === 0) return;
        let seq = this.lastWritten();
        for (const [e] of this.pending) e.seq = ++seq;
        this.batch.run(this.pending);
        for (const p of this.pending) this.writing.push(p);
        this.pending = [];
      },
      committed: () => {
        const events = [...this.writing.map(([e]) => e), ...this.prepared].sort((a, b) => a.seq - b.seq);
        this.writing = [];
        this.prepared = [];
        for (const e of events) {
          for (const l of this.listeners) {
            try {
              l(e);
            } catch (err) {
              this.onListenerError(err);
            }
          }
        }
      },
      rolledBack: () => {
        // Nothing of the transaction landed: its events wait for the next commit, in order.
        this.pending = [...this.writing, ...this.pending];
        this.writing = [];
        this.prepared = [];
      },
    });
  }

  /**
   * Stages an event for the next state commit (its seq is given when it is written). Append it in the same synchronous stretch
   * as the state change it reports, with the same write options: both land in the same transaction.
   */
  append(e: NewEvent, options: WriteOptions = EVENT_WRITE): JournalEvent {
    const event = newEvent(e);
    this.pending.push([event, JSON.stringify(e.data)]);
    this.queue.touch(options);
    return event;
  }

  /**
   * An event to write inside another write (a new execution's insert): `write` runs in that write's
   * transaction, so the event lands if and only if the write does.
   */
  prepare(e: NewEvent): { event: JournalEvent; write: () => void } {
    const event = newEvent(e);
    const data = JSON.stringify(e.data);
    return {
      event,
      write: () => {
        event.seq = this.lastWritten() + 1;
        this.batch.run([[event, data]]);
        this.prepared.push(event);
      },
    };
  }

  /** Called with every committed event, in seq order; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The newest committed seq (0 when the journal is empty). */
  lastSeq(): number {
    this.flush();
    return this.lastWritten();
  }

  /**
   * The newest seq written (inside a transaction: including its own writes). Seqs are given out when events
   * are written, in commit order; AUTOINCREMENT never gives one out twice, even after retention deleted it.
   */
  private lastWritten(): number {
    return (this.last.get() as { seq: number }).seq;
  }

  /** Committed events after `since`, oldest first. */
  page(filter: EventFilter): JournalEvent[] {
    this.flush();
    const c = new Conditions({ limit: filter.limit })
      .add('seq > @since', 'since', filter.since)
      .add('execution_id = @execution_id', 'execution_id', filter.executionId)
      .add('workflow_id = @workflow_id', 'workflow_id', filter.workflowId)
      .add('type IN (SELECT value FROM json_each(@types))', 'types', filter.types && JSON.stringify(filter.types));
    const sql = `SELECT * FROM events ${c.where()} ORDER BY seq LIMIT @limit`;
    return (this.statements.get(sql).all(c.params) as EventRow[]).map(toEvent);
  }
}

interface EventRow {
  seq: number;
  ts: string;
  type: JournalEvent['type'];
  execution_id: string;
  workflow_id: string;
  step: string | null;
  data: string;
}

/** An event as subscribers and pages show it (fields in the order of `toEvent`); its seq is given when it is written. */
function newEvent(e: NewEvent): JournalEvent {
  const event: JournalEvent = {
    seq: 0,
    ts: nowIso(),
    type: e.type,
    execution_id: e.execution_id,
    workflow_id: e.workflow_id,
    data: e.data,
  };
  if (e.step !== undefined) event.step = e.step;
  return event;
}

function toEvent(r: EventRow): JournalEvent {
  const e: JournalEvent = {
    seq: r.seq,
    ts: r.ts,
    type: r.type,
    execution_id: r.execution_id,
    workflow_id: r.workflow_id,
    data: JSON.parse(r.data),
  };
  if (r.step !== null) e.step = r.step;
  return e;
}

/** Whether an event passes a filter (for live events; stored ones are filtered in SQL). */
export function eventMatches(e: JournalEvent, f: Omit<EventFilter, 'since' | 'limit'>): boolean {
  return (
    (f.executionId === undefined || e.execution_id === f.executionId) &&
    (f.workflowId === undefined || e.workflow_id === f.workflowId) &&
    (f.types === undefined || f.types.includes(e.type))
  );
}

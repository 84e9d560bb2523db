/**
 * Process groups a step started and left running (shell.start), recorded with the execution that started
 * them, so that the agent can end them later: when that execution ends other than completed, when the
 * agent shuts down, and on the next start after the agent was killed.
 */
import type Database from 'better-sqlite3';
import type { BackgroundProcess } from './types.js';
import type { WriteQueue } from './write-queue.js';

interface Row {
  pid: number;
  start_ticks: number;
  execution_id: string;
  step: string;
  command: string;
  started_at: string;
}

function fromRow(r: Row): BackgroundProcess {
  return {
    pid: r.pid,
    startTicks: r.start_ticks,
    executionId: r.execution_id,
    step: r.step,
    command: JSON.parse(r.command) as string[],
    startedAt: r.started_at,
  };
}

export class BackgroundProcesses {
  private readonly insert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly all: Database.Statement;
  private readonly byExecution: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly queue: WriteQueue,
    private readonly flush: () => void,
  ) {
    this.insert = db.prepare(
      'INSERT OR REPLACE INTO background_processes (pid, start_ticks, execution_id, step, command, started_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.remove = db.prepare('DELETE FROM background_processes WHERE pid = ? AND start_ticks = ?');
    this.all = db.prepare('SELECT * FROM background_processes ORDER BY started_at, pid');
    this.byExecution = db.prepare('SELECT * FROM background_processes WHERE execution_id = ? ORDER BY started_at, pid');
  }

  /** Committed before it returns: the process may do anything from now on, and a crash must not forget it. */
  add(p: BackgroundProcess): void {
    this.queue.write({}, () =>
      this.insert.run(p.pid, p.startTicks, p.executionId, p.step, JSON.stringify(p.command), p.startedAt),
    );
  }

  /** The process is gone (deferred: forgetting one that is gone costs nothing if a crash loses it). */
  forget(p: Pick<BackgroundProcess, 'pid' | 'startTicks'>): void {
    this.queue.write({ deferred: true }, () => this.remove.run(p.pid, p.startTicks));
  }

  list(): BackgroundProcess[] {
    this.flush();
    return (this.all.all() as Row[]).map(fromRow);
  }

  of(executionId: string): BackgroundProcess[] {
    this.flush();
    return (this.byExecution.all(executionId) as Row[]).map(fromRow);
  }
}

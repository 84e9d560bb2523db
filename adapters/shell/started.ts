/**
 * The processes `start` left running, by pid: what `stop` and `kill_all` act on. Each leads its own
 * process group, and stopping one stops its whole group (SIGTERM, then SIGKILL after a grace period).
 */
import { CappedBuffer } from './capped-buffer.js';
import { terminateGroup } from './process-group.js';

/** How much of a started process's output, after it became ready, is kept for `stop` to report. */
export const STARTED_TAIL_BYTES = 16 * 1024;

export interface Exit {
  exitCode: number | null;
  signal: string | null;
}

export interface StartedProcess {
  pid: number;
  command: string[];
  startedAt: string;
  /** Its output once it was ready (the step's log has what came before). */
  tail: CappedBuffer;
  /** Settles when the process has exited. */
  exited: Promise<Exit>;
}

export class StartedProcesses {
  private readonly byPid = new Map<number, StartedProcess>();

  /** Tracks `p` until it exits. */
  add(p: StartedProcess): void {
    this.byPid.set(p.pid, p);
    void p.exited.then(() => {
      if (this.byPid.get(p.pid) === p) this.byPid.delete(p.pid);
    });
  }

  get(pid: number): StartedProcess | undefined {
    return this.byPid.get(pid);
  }

  list(): StartedProcess[] {
    return [...this.byPid.values()];
  }

  /** Stops the process's group; resolves with how it exited once it has. */
  async stop(p: StartedProcess, graceMs: number): Promise<Exit> {
    const stopping = terminateGroup(p.pid, graceMs);
    try {
      return await p.exited;
    } finally {
      stopping.done();
    }
  }
}

/** A new tail buffer for a started process's output. */
export function startedTail(): CappedBuffer {
  return new CappedBuffer('output', STARTED_TAIL_BYTES);
}

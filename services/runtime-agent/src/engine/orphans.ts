/**
 * Process groups that outlived the agent. A shell step runs its command in a process group of its own, which
 * the agent kills when it exits normally; after a SIGKILL of the agent the group lives on. The engine records
 * each group (leader pid and its start time) on the step, and recovery ends the ones still there before any
 * rollback starts, so a compensation never runs beside the command it undoes.
 */
import { procPids, procStat } from '../../../../adapters/shared/proc.js';
import type { Store } from '../store/store.js';
import type { BackgroundProcess, TrackedProcess } from '../store/types.js';

/** How long a recorded group gets between SIGTERM and SIGKILL during recovery. */
export const ORPHAN_GRACE_MS = 2000;
const POLL_MS = 25;
const KILL_WAIT_MS = 5000;

/** Start time of a running process as recorded for it (undefined where /proc is not there). */
export function startTicksOf(pid: number): number | undefined {
  return procStat(pid)?.startTicks;
}

/**
 * Pids of the processes in the recorded group. The leader must be the one recorded (same start time): a pid
 * the kernel gave out again belongs to someone else. When the leader is gone, members of its group that
 * started after it are its children (a pgid stays taken while any member lives).
 */
function membersOf(group: TrackedProcess): number[] {
  const leader = procStat(group.pid);
  if (leader && (leader.startTicks !== group.startTicks || leader.pgid !== group.pid)) return [];
  return procPids().filter((pid) => {
    const s = procStat(pid);
    return s !== undefined && s.pgid === group.pid && s.startTicks >= group.startTicks;
  });
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * Ends what is left of the recorded groups: SIGTERM, then SIGKILL to what remains after the grace period.
 * Resolves with how many processes there were, once none is left (or KILL_WAIT_MS after the SIGKILL).
 */
export async function endOrphanedGroups(groups: TrackedProcess[], graceMs = ORPHAN_GRACE_MS): Promise<number> {
  const found = groups.flatMap(membersOf);
  if (found.length === 0) return 0;
  signal(found, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let left = found.filter((pid) => procStat(pid) !== undefined);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    left = left.filter((pid) => isRunning(pid));
  }
  signal(left, 'SIGKILL');
  // SIGKILL takes effect unless a process is stuck in the kernel; recovery does not wait for such a one forever.
  const killDeadline = Date.now() + KILL_WAIT_MS;
  while (left.length > 0 && Date.now() < killDeadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    left = left.filter((pid) => isRunning(pid));
  }
  return found.length;
}

/** A process that exited but was not reaped yet (a zombie) counts as gone. */
function isRunning(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z';
}

/** Ends recorded background groups (shell.start) and forgets them; resolves with how many processes there were. */
export async function endBackgroundGroups(store: Store, groups: BackgroundProcess[]): Promise<number> {
  if (groups.length === 0) return 0;
  const ended = await endOrphanedGroups(groups);
  for (const g of groups) store.backgroundProcesses.forget(g);
  return ended;
}

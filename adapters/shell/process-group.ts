/** Grace between SIGTERM and SIGKILL when a command's process group is stopped. */
export const SIGKILL_GRACE_MS = 2000;

/** Signals a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Stops a process group: SIGTERM now, SIGKILL after `graceMs` unless `done()`
 * is called first. `done()` (call it once the leader has exited) clears the
 * timer and kills what is left of the group at once, so neither a timer nor
 * a straggler that ignored SIGTERM outlives the command.
 */
export function terminateGroup(pgid: number, graceMs: number = SIGKILL_GRACE_MS): { done(): void } {
  signalGroup(pgid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), graceMs);
  return {
    done() {
      clearTimeout(timer);
      signalGroup(pgid, 'SIGKILL');
    },
  };
}

/**
 * Groups still running. execa's `cleanup` does nothing for detached children,
 * so the agent kills these itself if it exits while commands are running.
 */
const liveGroups = new Set<number>();

function killLiveGroups(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
}

/** Registers a group to be killed if the agent process exits first; returns the unregister function. */
export function trackGroup(pgid: number): () => void {
  if (liveGroups.size === 0) process.once('exit', killLiveGroups);
  liveGroups.add(pgid);
  return () => {
    liveGroups.delete(pgid);
    if (liveGroups.size === 0) process.removeListener('exit', killLiveGroups);
  };
}

/** Processes that tests start or that shell steps start: are they still there, and which are they. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { AgentProcess } from './agent-process.js';
import { waitFor } from './wait.js';

/** Whether a process exists and is not a zombie (PID 1 here may never reap orphans). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false; // gone between the two checks
  }
}

/** The pid the shell adapter logged for a step ("started pid N: …"), once it is logged. */
export async function stepPid(agent: AgentProcess, executionId: string, step: string): Promise<number> {
  return waitFor(async () => {
    const r = await agent.request('GET', `/logs/${executionId}?step=${encodeURIComponent(step)}`);
    for (const l of r.body?.logs ?? []) {
      const m = /^started pid (\d+):/.exec(l.message);
      if (m) return Number(m[1]);
    }
    return undefined;
  }, `step ${step} of ${executionId} to start a process`);
}

/** Whether iperf3 is installed (Debian's iperf3; .ci/run installs it). */
export function haveIperf3(): boolean {
  try {
    execFileSync('iperf3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

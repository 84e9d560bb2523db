/** Helpers for specs that crash and restart real agent processes. */
import { readFileSync, rmSync } from 'node:fs';
import { startAgent, type AgentProcess, type StartOptions } from '../support/agent-process.js';
import { waitFor } from '../support/wait.js';

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
    return false;
  }
}

/** Kills the process group a shell step started, if that process is still a `sleep` (never a reused pid). */
export function killSleepGroup(pid: number): void {
  if (!isRunning(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!cmdline.startsWith('sleep\0')) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** The pid a shell step logged (`started pid N`), once it did. */
export async function startedPid(agent: AgentProcess, executionId: string, step: string): Promise<number> {
  return waitFor(
    async () => {
      const r = await agent.request('GET', `/logs/${executionId}?step=${encodeURIComponent(step)}`);
      const line = (r.body?.logs ?? []).find((l: { message: string }) => l.message.startsWith('started pid '));
      return line ? Number(/^started pid (\d+)/.exec(line.message)![1]) : undefined;
    },
    `step ${step} of ${executionId} to start its process`,
  );
}

/**
 * Agents and pids a spec started; `cleanup()` (in afterEach) kills every agent
 * still running, every leftover `sleep` group and removes the data directories.
 */
export class ProcessJanitor {
  private readonly agents: AgentProcess[] = [];
  private readonly pids: number[] = [];
  private readonly dirs = new Set<string>();

  async start(options: StartOptions = {}): Promise<AgentProcess> {
    const agent = await startAgent(options);
    this.agents.push(agent);
    this.dirs.add(agent.dataDir);
    return agent;
  }

  watchPid(pid: number): number {
    this.pids.push(pid);
    return pid;
  }

  async cleanup(): Promise<void> {
    for (const a of this.agents.splice(0)) await a.stop('SIGKILL');
    for (const pid of this.pids.splice(0)) killSleepGroup(pid);
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
    this.dirs.clear();
  }
}

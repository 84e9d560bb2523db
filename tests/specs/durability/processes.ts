/** Helpers for specs that crash and restart real agent processes. */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { startAgent, type AgentProcess, type StartOptions } from '../support/agent-process.js';
import { isRunning, stepPid } from '../support/processes.js';

export { isRunning, stepPid as startedPid };

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

/**
 * Agents and pids a spec started; `cleanup()` (in afterEach) kills every agent
 * still running, every leftover `sleep` group and removes the data directories.
 */
export class ProcessJanitor {
  private readonly agents: AgentProcess[] = [];
  /** Every agent process spawned, including one whose start the test gave up waiting for. */
  private readonly procs: ChildProcess[] = [];
  private readonly pids: number[] = [];
  private readonly dirs = new Set<string>();

  async start(options: StartOptions = {}): Promise<AgentProcess> {
    const agent = await startAgent({ ...options, onSpawn: (proc) => this.procs.push(proc) });
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
    for (const proc of this.procs.splice(0))
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    for (const pid of this.pids.splice(0)) killSleepGroup(pid);
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
    this.dirs.clear();
  }
}

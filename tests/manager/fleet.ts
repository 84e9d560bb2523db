/**
 * A fleet of real agent processes pulling tasks from one test Manager, optionally while agents are SIGKILLed
 * and restarted on their data directories: shared by the fleet test (correctness) and `npm run bench -- fleet`
 * (tasks per second, claim-to-start latency). Bounded: a deadline, and a fixed number of kills.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { type AgentProcess, freshDataDir, startAgent } from '../specs/support/agent-process.js';
import { type ManagerTask, TestManager } from './manager.js';

export interface FleetOptions {
  agents: number;
  tasks: number;
  /** SIGKILL-and-restart this many times, one random agent at a time, while tasks remain. */
  kills: number;
  /** Longest sleep of a task's one step, in ms (each task sleeps a random time up to it). */
  maxTaskMs: number;
  maxConcurrent: number;
  deadlineMs: number;
}

export interface FleetResult {
  manager: TestManager;
  tasks: ManagerTask[];
  seconds: number;
  kills: number;
  /** ms from hand-out to the execution's start, per task that started. */
  claimToStartMs: number[];
}

/** A task of one shell step that sleeps `ms` (as `sleep` takes fractions of a second). */
export function sleepTask(ms: number): ManagerTask {
  return {
    task_id: randomUUID(),
    type: 'workflow',
    payload: {
      wpk_content: {
        apiVersion: 'wpk/v1',
        kind: 'Workflow',
        metadata: { name: 'fleet-task', version: '1.0.0' },
        spec: {
          parameters: { seconds: { type: 'string', default: '0' } },
          handlers: [
            {
              name: 'work',
              adapter: 'shell',
              action: 'run',
              with: { command: ['sleep', '${{ params.seconds }}'] },
            },
          ],
        },
      },
      parameters: { seconds: (ms / 1000).toFixed(3) },
    },
  };
}

export async function runFleet(o: FleetOptions): Promise<FleetResult> {
  const manager = await new TestManager({ heartbeatIntervalS: 0.5, claimIntervalS: 0.05 }).start();
  const tasks = Array.from({ length: o.tasks }, () => sleepTask(Math.random() * o.maxTaskMs));
  manager.addTasks(...tasks);
  const dirs = Array.from({ length: o.agents }, () => freshDataDir());
  const env = (i: number) => ({
    MANAGER_URL: manager.url,
    AGENT_NAME: `fleet-${i}`,
    AGENT_KEY: 'fleet-key',
    MAX_CONCURRENT_EXECUTIONS: String(o.maxConcurrent),
    RESULT_CALLBACK_RETRY_BASE_MS: '50',
  });
  const fleet: AgentProcess[] = [];
  const started = Date.now();
  let kills = 0;
  const restarting = new Set<number>();
  const restarts: Promise<void>[] = [];
  let restartFailed: unknown;
  try {
    fleet.push(...(await Promise.all(dirs.map((dir, i) => startAgent({ dataDir: dir, env: env(i) })))));
    const done = () => tasks.every((t) => manager.distinctReports(t.task_id).length > 0);
    let nextKill = Date.now() + 1000;
    while (!done()) {
      if (restartFailed) throw restartFailed;
      if (Date.now() - started > o.deadlineMs) {
        const missing = tasks.filter((t) => manager.distinctReports(t.task_id).length === 0).length;
        throw new Error(`the fleet did not report every task within ${o.deadlineMs} ms: ${missing} missing`);
      }
      // A killed agent starts again in the background (a start takes seconds on a loaded machine), so the kills
      // land while tasks are still queued rather than one restart after another.
      const up = fleet.flatMap((_, i) => (restarting.has(i) ? [] : [i]));
      if (kills < o.kills && Date.now() >= nextKill && manager.queued > 0 && up.length > 0) {
        const i = up[Math.floor(Math.random() * up.length)]!;
        restarting.add(i);
        kills++;
        nextKill = Date.now() + 300 + Math.random() * 500;
        restarts.push(
          fleet[i]!.stop('SIGKILL')
            .then(() => startAgent({ dataDir: dirs[i], env: env(i) }))
            .then(
              (agent) => {
                fleet[i] = agent;
                restarting.delete(i);
              },
              (err: unknown) => {
                restartFailed ??= err;
              },
            ),
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (Date.now() - started) / 1000;
    const claimToStartMs = tasks.flatMap((t) => {
      const report = manager.distinctReports(t.task_id)[0];
      const handed = manager.handedOutAt.get(t.task_id);
      const startedAt = report?.body.started_at;
      return handed !== undefined && startedAt ? [Date.parse(startedAt) - handed] : [];
    });
    return { manager, tasks, seconds, kills, claimToStartMs };
  } finally {
    await Promise.allSettled(restarts);
    await Promise.all(fleet.map((a) => a.stop('SIGTERM')));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await manager.close();
  }
}

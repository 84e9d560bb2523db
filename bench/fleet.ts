/**
 * Pull mode at fleet scale (npm run bench -- fleet): 6 agents (tsx, as the tests run them) pull 300 tasks of
 * one `sleep 0` step from the test Manager; reported: tasks per second from the first hand-out to the last
 * report, and the latency from a task's hand-out to the start of its execution (p50/p95/p99). The
 * reference, in the same run: the same 300 tasks pushed with POST /execute to 6 agents, round robin, until
 * every one has ended. The ratio is pull throughput over push throughput. Bounded: 120 s per side.
 */
import { freshDataDir, startAgent } from '../tests/specs/support/agent-process.js';
import { runFleet, sleepTask } from '../tests/manager/fleet.js';
import { quantile } from './stats.js';

const AGENTS = 6;
const TASKS = 300;
const MAX_CONCURRENT = 4;
const DEADLINE_MS = 120_000;

async function pushReference(): Promise<number> {
  const agents = await Promise.all(
    Array.from({ length: AGENTS }, () =>
      startAgent({ dataDir: freshDataDir(), env: { MAX_CONCURRENT_EXECUTIONS: String(MAX_CONCURRENT) } }),
    ),
  );
  try {
    const started = Date.now();
    const ids = await Promise.all(
      Array.from({ length: TASKS }, async (_, i) => {
        const a = agents[i % AGENTS]!;
        const r = await a.request('POST', '/execute', sleepTask(0).payload);
        if (r.status !== 202) throw new Error(`POST /execute answered ${r.status}: ${r.text}`);
        return { a, id: r.body.execution_id as string };
      }),
    );
    for (const { a, id } of ids) {
      for (;;) {
        if (Date.now() - started > DEADLINE_MS) throw new Error('the push reference did not end in time');
        const r = await a.request('GET', `/execute/${id}`);
        if (['completed', 'failed'].includes(r.body?.status)) break;
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    return TASKS / ((Date.now() - started) / 1000);
  } finally {
    for (const a of agents) {
      await a.stop('SIGTERM');
      a.cleanup();
    }
  }
}

export async function fleetPull(): Promise<string> {
  const pull = await runFleet({
    agents: AGENTS,
    tasks: TASKS,
    kills: 0,
    maxTaskMs: 0,
    maxConcurrent: MAX_CONCURRENT,
    deadlineMs: DEADLINE_MS,
  });
  const handed = [...pull.manager.handedOutAt.values()];
  const lastReport = Math.max(...pull.manager.calls.filter((c) => c.endpoint === 'report').map((c) => c.at));
  const pullRate = TASKS / ((lastReport - Math.min(...handed)) / 1000);
  const pushRate = await pushReference();
  const q = (p: number) => quantile(pull.claimToStartMs, p).toFixed(0);
  return [
    `fleet: ${AGENTS} agents (MAX_CONCURRENT_EXECUTIONS=${MAX_CONCURRENT}) and ${TASKS} one-step tasks`,
    `  pull (claim, run, report)     ${pullRate.toFixed(1)} tasks/s; hand-out to start p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms`,
    `  push (POST /execute, polled)  ${pushRate.toFixed(1)} tasks/s`,
    `  ratio                         ${(pullRate / pushRate).toFixed(2)}x pull over push`,
  ].join('\n');
}

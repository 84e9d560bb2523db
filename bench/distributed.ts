/**
 * Distributed load (npm run bench -- distributed): the same flowmap (one GET, no pauses) with the same number
 * of users against bench/target-server.mjs, run by the Flow Manager on 1 worker and then on 3 workers: each
 * worker is a real agent process behind the fake kube-apiserver's pod proxy, as in the tests. Reported: the
 * fleet's requests per second on 3 workers over 1 worker's, and the fleet totals against the target's own
 * count. Each run is bounded by its duration; everything targets 127.0.0.1. On this machine the workers, the
 * target and the manager share two cores, so the ratio shows what the fleet adds on one host, not across hosts.
 */
import { TERMINAL_STATUSES } from '../services/runtime-agent/src/store/types.js';
import { waitForStatus } from '../tests/specs/support/agent-process.js';
import { pkg as testPackage } from '../tests/specs/support/packages.js';
import { startLab } from '../tests/specs/flow-manager/lab.js';
import { startTarget } from './target.js';

const USERS = 60;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WORKERS = 3;

export async function distributedLoad(): Promise<string> {
  const target = await startTarget();
  const lab = await startLab();
  try {
    const admin = { authorization: `Bearer ${lab.token('operator')}` };
    const create = await lab.manager.request('POST', '/execute', pkg(target.url, 1, 'probe'), admin);
    if (create.status !== 202) throw new Error(`POST /execute answered ${create.status}: ${create.text}`);
    // The run above creates the worker; its pods need processes behind them before it can start them.
    await waitForSecret(lab);
    await lab.startWorkers('bench', WORKERS);
    await ended(lab, create.body.execution_id, admin);
    const lines: string[] = [];
    const rps: Record<number, number> = {};
    for (const workers of [1, WORKERS, 1, WORKERS]) {
      const before = await target.count();
      const r = await lab.manager.request('POST', '/execute', pkg(target.url, workers, `run-${workers}`), admin);
      const rec = await ended(lab, r.body.execution_id, admin);
      if (rec.status !== 'completed')
        throw new Error(`the ${workers}-worker run ended ${rec.status}: ${JSON.stringify(rec.error)}`);
      const out = rec.steps[0].outputs;
      const seen = (await target.count()) - before;
      rps[workers] = Math.max(rps[workers] ?? 0, out.rps);
      lines.push(
        `  ${workers} worker(s), ${USERS} users, ${SECONDS} s: ${out.requests} requests (target answered ${seen}), ${out.rps} req/s, p50 ${out.p50_ms} ms, p99 ${out.p99_ms} ms; per pod ${out.pods.map((p: { requests: number }) => p.requests).join(' + ')}`,
      );
    }
    return [
      `distributed: ${WORKERS} workers vs 1, same ${USERS} users, one GET per flow, no pauses (best of two runs each)`,
      ...lines,
      `  fleet rps ${rps[WORKERS]} against one worker's ${rps[1]}: ${(rps[WORKERS]! / rps[1]!).toFixed(2)}x`,
    ].join('\n');
  } finally {
    await lab.close();
    target.proc.kill();
  }
}

function pkg(url: string, workers: number, name: string) {
  const step = {
    name: 'load',
    adapter: 'flowrunner',
    action: 'run_distributed',
    with: {
      config: {
        flow_target_url: url,
        sim_users: workers === 1 && name === 'probe' ? 1 : USERS,
        min_sleep_ms: 0,
        max_sleep_ms: 0,
      },
      flowmap: { name: 'bench', steps: [{ id: 'get', type: 'request', method: 'GET', url: '/ping' }] },
      workers,
      worker: 'bench',
      durationSeconds: name === 'probe' ? 1 : SECONDS,
      progressSeconds: 60,
    },
  };
  return { wpk_content: testPackage(`bench-distributed-${name}`, [step]) };
}

async function waitForSecret(lab: Awaited<ReturnType<typeof startLab>>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (lab.kube.get('v1', 'Secret', 'load', 'bench-control')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the worker was not created within 30 s');
}

function ended(lab: Awaited<ReturnType<typeof startLab>>, id: string, headers: Record<string, string>) {
  return waitForStatus(lab.manager, id, [...TERMINAL_STATUSES], (SECONDS + 120) * 1000, headers);
}

/**
 * How a distributed run goes, once its worker is held: the worker Deployment is reused or created, scaled to
 * N and waited for, every pod is started with its share of the users, the fleet's numbers are reported while
 * it runs, and every pod is stopped at the deadline (gracefully) or on cancel and failure (at once). Totals
 * come from the pods' mergeable stats: counts add, and the percentiles are those of the merged histograms.
 */
import type { StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import type { WorkerFleet } from '../k8s/workers/fleet.js';
import type { DistributedInput, DistributedOutputs } from './distributed.js';
import { type FleetTotals, mergeFleet, type MergeableStats, parseMergeableStats } from './engine/index.js';
import { gate } from './run.js';

/** A worker stops by itself this long after the run's deadline, should the agent be gone by then. */
export const WORKER_GRACE_SECONDS = 30;
/** At the deadline, how long the requests in flight may take to finish before they are aborted. */
const GRACEFUL_STOP_SECONDS = 5;
/** How long stopping the pods may take at the end (the step's own signal may have fired already). */
const STOP_TIMEOUT_MS = 15_000;

export async function runFleet(
  ctx: StepContext,
  fleet: WorkerFleet,
  input: DistributedInput & { worker: string },
  shares: number[],
  flowmap: unknown,
): Promise<DistributedOutputs> {
  const { worker } = input;
  const existing = (await fleet.list(ctx)).find((w) => w.container_id === worker);
  if (!existing) {
    await fleet.create(ctx, { name: worker });
    ctx.log.info(`created worker ${worker}`);
  }
  ctx.log.info(`scaling worker ${worker} to ${input.workers} pod(s) and waiting for them`);
  await fleet.start(ctx, { container_id: worker, replicas: input.workers });
  const ready = (await fleet.pods(ctx, worker)).filter((p) => p.ready).map((p) => p.name);
  if (ready.length < input.workers)
    throw new AgentError('timeout', `worker ${worker} has ${ready.length} ready pod(s), ${input.workers} wanted`);
  const pods = ready.slice(0, input.workers);
  const stats = new Map<string, MergeableStats>();
  /** Each pod's run, as first seen: a pod whose container restarted comes back with another run (or none). */
  const runOf = new Map<string, string | null>();
  let stoppedGracefully = false;
  try {
    // Every start settles before anything else happens, so a failure below stops every pod, also those
    // whose start was still on its way when another one failed.
    const starts = await Promise.allSettled(
      pods.map(async (pod, i) => {
        const body = {
          config: {
            ...input.config,
            sim_users: shares[i],
            max_duration_seconds: input.durationSeconds + WORKER_GRACE_SECONDS,
          },
          flowmap,
        };
        const a = await fleet.send1(ctx, worker, pod, { method: 'POST', path: '/api/start', body });
        if (a.status >= 300)
          throw new AgentError(
            'adapter_error',
            `pod ${pod} refused the start (HTTP ${a.status}): ${JSON.stringify(a.body).slice(0, 500)}`,
            { retryable: false, details: { pod, status: a.status, answer: a.body } },
          );
      }),
    );
    const refused = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (refused) throw refused.reason;
    ctx.log.info(`started ${pods.length} pod(s): ${pods.map((p, i) => `${p} (${shares[i]} users)`).join(', ')}`);
    const deadline = Date.now() + input.durationSeconds * 1000;
    const every = (input.progressSeconds ?? 2) * 1000;
    while (Date.now() < deadline) {
      await pause(Math.min(every, deadline - Date.now()), ctx.signal);
      if (Date.now() >= deadline || ctx.signal.aborted) break;
      await collect(ctx, fleet, worker, pods, stats);
      for (const [pod, s] of stats) if (!runOf.has(pod)) runOf.set(pod, s.started_at);
      const t = mergeFleet([...stats.values()]);
      ctx.progress({ fleet: progressOf(t), pods_reporting: stats.size });
    }
    // At the deadline the pods stop gracefully: what is in flight finishes and is counted, so the fleet's
    // totals are what the target answered.
    stoppedGracefully = (await stopAll(ctx, fleet, worker, pods, GRACEFUL_STOP_SECONDS)) === 0;
  } finally {
    // On cancel and on any failure (or a pod the graceful stop missed): every pod stops at once. A pod that
    // never started answers that nothing runs.
    if (!stoppedGracefully) await stopAll(ctx, fleet, worker, pods);
  }
  if (ctx.signal.aborted) throw ctx.signal.reason;
  await collect({ signal: AbortSignal.timeout(STOP_TIMEOUT_MS) }, fleet, worker, pods, stats, true);
  const lost = pods.filter((pod, i) => {
    const s = stats.get(pod)!;
    const seen = runOf.get(pod);
    return s.workers !== 1 || s.sim_users !== shares[i] || (seen !== undefined && seen !== s.started_at);
  });
  if (lost.length)
    throw new AgentError(
      'adapter_error',
      `pod(s) ${lost.join(', ')} restarted or were started by someone else during the run: their numbers are lost, so the fleet totals would be wrong`,
      { retryable: false, details: { pods: lost } },
    );
  const totals = mergeFleet(pods.map((p) => stats.get(p)!));
  const out = outputsOf(
    worker,
    totals,
    pods.map((pod, i) => podLine(pod, shares[i], stats.get(pod)!)),
  );
  ctx.log.info(
    `fleet done: ${out.workers} pod(s), ${out.requests} requests, ${out.errors} errors (${(out.error_rate * 100).toFixed(2)}%), ${out.rps} req/s, p50 ${out.p50_ms} ms, p95 ${out.p95_ms} ms, p99 ${out.p99_ms} ms`,
  );
  return gate(out, input.failWhen);
}

/** Reads every pod's stats; while running a pod that does not answer keeps its last numbers, at the end it fails the run. */
async function collect(
  ctx: Pick<StepContext, 'signal'>,
  fleet: WorkerFleet,
  worker: string,
  pods: string[],
  into: Map<string, MergeableStats>,
  final = false,
): Promise<void> {
  await Promise.all(
    pods.map(async (pod) => {
      try {
        const a = await fleet.send1(ctx, worker, pod, { method: 'GET', path: '/api/stats' });
        const parsed = a.status === 200 ? parseMergeableStats(a.body) : undefined;
        if (!parsed?.ok)
          throw new AgentError(
            'adapter_error',
            `pod ${pod} answered /api/stats with HTTP ${a.status}${parsed && !parsed.ok ? `: ${parsed.problems.join('; ')}` : ''}`,
          );
        into.set(pod, parsed.stats);
      } catch (err) {
        if (final || ctx.signal.aborted) throw err;
      }
    }),
  );
}

export async function stopAll(
  ctx: StepContext | Pick<StepContext, 'signal'>,
  fleet: WorkerFleet,
  worker: string,
  pods: string[],
  gracefulSeconds?: number,
) {
  if (gracefulSeconds !== undefined && ctx.signal.aborted) return pods.length;
  const signal = AbortSignal.timeout(STOP_TIMEOUT_MS + (gracefulSeconds ?? 0) * 1000);
  const body = gracefulSeconds === undefined ? undefined : { graceful_stop_seconds: gracefulSeconds };
  const results = await Promise.allSettled(
    pods.map((pod) => fleet.send1({ signal }, worker, pod, { method: 'POST', path: '/api/stop', body })),
  );
  const failed = results.flatMap((r, i) =>
    r.status === 'rejected' ? [`${pods[i]}: ${(r.reason as Error)?.message}`] : [],
  );
  if (failed.length && 'log' in ctx)
    ctx.log.warn(
      `could not stop ${failed.length} pod(s) (each stops by itself ${WORKER_GRACE_SECONDS} s after the deadline): ${failed.join('; ')}`,
    );
  return failed.length;
}

function progressOf(t: FleetTotals) {
  return {
    workers: t.workers,
    active_users: t.active_users,
    requests: t.requests,
    errors: t.errors_total,
    rps: t.rps,
    rps_last_second: t.rps_last_second,
    p50_ms: t.latency_ms.p50,
    p95_ms: t.latency_ms.p95,
    p99_ms: t.latency_ms.p99,
  };
}

function podLine(pod: string, users: number, s: MergeableStats) {
  const t = mergeFleet([s]);
  return { pod, sim_users: users, requests: t.requests, errors: t.errors_total, p95_ms: t.latency_ms.p95 };
}

function outputsOf(worker: string, t: FleetTotals, pods: DistributedOutputs['pods']): DistributedOutputs {
  // Failed requests: what the error rate counts (extraction and invalid_request sent nothing, or not as a failure).
  const failed = t.errors.network + t.errors.timeout + t.errors.http_3xx + t.errors.http_4xx + t.errors.http_5xx;
  return {
    worker,
    workers: t.workers,
    sim_users: t.sim_users,
    requests: t.requests,
    flows: t.flows_completed + t.flows_failed,
    flows_failed: t.flows_failed,
    errors: t.errors_total,
    errors_by_kind: Object.fromEntries(Object.entries(t.errors).filter(([, n]) => n > 0)),
    error_rate: t.requests ? Math.round((failed / t.requests) * 10_000) / 10_000 : 0,
    rps: t.rps,
    p50_ms: t.latency_ms.p50,
    p95_ms: t.latency_ms.p95,
    p99_ms: t.latency_ms.p99,
    max_ms: t.latency_ms.max,
    assertions_passed: t.assertions_passed,
    assertions_failed: t.assertions_failed,
    duration_seconds: t.window_seconds,
    pods,
  };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });
}

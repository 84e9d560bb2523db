/**
 * FlowRunner over worker threads: users shared among threads with their own connections, stats merged
 * exactly (the fleet's merge), live updates reaching every thread, stop reaching every thread at once, a
 * failing thread making the run `error`, and one thread meaning no thread at all.
 */
import assert from 'node:assert/strict';
import {
  createRunner,
  decodeLatency,
  FlowRunner,
  mergeStats,
  THREAD_IDLE_MS,
  ThreadedRunner,
  ThreadPool,
  usersOf,
  type MergeableStats,
} from '../../../adapters/flowrunner/engine/index.js';
import { cgroupCpus } from '../../../adapters/flowrunner/engine/threads.js';
import { FlowControl } from '../../../adapters/flowrunner/control.js';
import { makeConfig, makeFlowmap, quietPeriod, req, useTarget, type LogLine } from './target.js';
import { waitFor } from '../support/wait.js';

const user = { 'X-User': '{{userId}}' };
/** Threads start slowly under tsx on a loaded machine. */
const BOOT_MS = 30_000;

function threaded(
  config: Record<string, unknown>,
  steps: unknown[],
  limit?: { iterations?: number; durationMs?: number },
) {
  const logs: LogLine[] = [];
  const runner = createRunner(makeConfig(config), makeFlowmap({ steps }), {
    threads: 2,
    limit,
    log: (level, message) => void logs.push({ level, message }),
  });
  assert.ok(runner instanceof ThreadedRunner);
  runner.start();
  return { runner, logs };
}

const usersSeen = (requests: Array<{ headers: Record<string, unknown> }>) =>
  new Set(requests.map((r) => r.headers['x-user'] as string));

describe('FlowRunner threads: sharing users', () => {
  it('shares users as equally as can be, the remainder one each to the first threads', () => {
    assert.deepEqual(
      [0, 1, 2].map((i) => usersOf(7, i, 3)),
      [3, 2, 2],
    );
    assert.deepEqual(
      [0, 1].map((i) => usersOf(1, i, 2)),
      [1, 0],
    );
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => usersOf(8, i, 4)),
      [2, 2, 2, 2],
    );
  });

  it('reads the cgroup CPU quota (v2, then v1), rounded up; no limit is undefined', () => {
    const files = (m: Record<string, string>) => (p: string) => {
      if (!(p in m)) throw new Error('ENOENT');
      return m[p]!;
    };
    assert.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' })), 2);
    assert.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined);
    assert.equal(
      cgroupCpus(
        files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '300000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }),
      ),
      3,
    );
    assert.equal(
      cgroupCpus(
        files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }),
      ),
      undefined,
    );
    assert.equal(cgroupCpus(files({})), undefined);
  });

  it('one thread is the one-loop FlowRunner, with no thread at all; so is no threads option', () => {
    const config = makeConfig({ flow_target_url: 'http://127.0.0.1:1', sim_users: 3 });
    const flowmap = makeFlowmap({ steps: [req('a', '/a')] });
    assert.ok(createRunner(config, flowmap, { threads: 1 }) instanceof FlowRunner);
    assert.ok(createRunner(config, flowmap) instanceof FlowRunner);
    assert.ok(createRunner(config, flowmap, { threads: 2 }) instanceof ThreadedRunner);
  });
});

describe('FlowRunner threads: against a real target', function () {
  this.timeout(90_000);
  const target = useTarget();

  it('runs every user, each thread its share on its own connections', async () => {
    const { runner } = threaded({ flow_target_url: target.url, sim_users: 5 }, [req('a', '/a', { headers: user })]);
    try {
      await waitFor(() => usersSeen(target.requests).size === 5, 'requests of five users', BOOT_MS);
      assert.deepEqual([...usersSeen(target.requests)].sort(), ['user-1', 'user-2', 'user-3', 'user-4', 'user-5']);
      const ports = new Map<string, Set<number>>();
      for (const r of target.requests) {
        const u = r.headers['x-user'] as string;
        ports.set(u, (ports.get(u) ?? new Set()).add(r.remotePort));
      }
      const all = [...ports.values()].flatMap((p) => [...p]);
      assert.equal(new Set(all).size, all.length, 'no connection is shared by two users');
      const per = await waitFor(
        () => {
          const s = (runner as ThreadedRunner).threadStats();
          return s.every((x) => x && x.requests > 0) && (s as MergeableStats[]);
        },
        'both threads counting requests',
        BOOT_MS,
      );
      assert.deepEqual(
        per.map((s) => s.sim_users),
        [3, 2],
      );
    } finally {
      await runner.stop();
    }
  });

  it("after a graceful stop its totals are the target's count, and its percentiles those of the threads' histograms merged", async () => {
    target.on('/slow', { delayMs: 20 });
    const { runner } = threaded({ flow_target_url: target.url, sim_users: 4 }, [req('slow', '/slow'), req('b', '/b')]);
    await waitFor(() => runner.snapshot().total_requests >= 40, '40 requests counted', BOOT_MS);
    await runner.drain(5000);
    assert.equal(runner.status, 'stopped');
    const threads = (runner as ThreadedRunner).threadStats() as MergeableStats[];
    const s = runner.mergeableStats();
    const snap = runner.snapshot();
    assert.equal(s.requests, target.requests.length, 'every request the target answered is counted, once');
    assert.equal(snap.total_requests, target.requests.length);
    assert.equal(s.requests, threads[0]!.requests + threads[1]!.requests);
    assert.ok(
      threads.every((t) => t.requests > 0),
      'both threads sent requests',
    );
    const merged = decodeLatency(mergeStats(threads).latency.hdr);
    assert.equal(decodeLatency(s.latency.hdr).totalCount, s.requests);
    const ms = (us: number) => Math.round(us / 10) / 100;
    assert.equal(snap.p50_ms, ms(Math.min(merged.getValueAtPercentile(50), merged.maxValue)));
    assert.equal(snap.p99_ms, ms(Math.min(merged.getValueAtPercentile(99), merged.maxValue)));
    assert.equal(snap.max_ms, ms(merged.maxValue));
    // Half the requests (or one more) are the delayed step's: the top percentiles are theirs.
    assert.ok(snap.p99_ms >= 20, 'the delayed step is the slowest percentiles');
    assert.equal(snap.per_step.slow!.requests + snap.per_step.b!.requests, s.requests);
    assert.equal(target.hits('/slow').length, snap.per_step.slow!.requests);
    assert.ok(snap.per_step.slow!.p50_ms >= 20);
    const series = runner.stats.promSeries();
    assert.equal(series.find((x) => x.step === 'slow')!.count, target.hits('/slow').length);
    assert.equal(runner.stats.totalRequests, s.requests);
  });

  it('a live update changes sim_users across the threads, up and down', async () => {
    const { runner } = threaded({ flow_target_url: target.url, sim_users: 2, min_sleep_ms: 5, max_sleep_ms: 10 }, [
      req('a', '/a', { headers: user }),
    ]);
    try {
      await waitFor(() => usersSeen(target.requests).size === 2, 'two users', BOOT_MS);
      runner.update({ ...runner.currentConfig, sim_users: 6 });
      await waitFor(() => usersSeen(target.requests).size === 6, 'six users', BOOT_MS);
      await waitFor(
        () => runner.snapshot().active_users === 6 && runner.snapshot().sim_users === 6,
        'six active users',
      );
      const per = (runner as ThreadedRunner).threadStats() as MergeableStats[];
      assert.deepEqual(
        per.map((s) => s.sim_users),
        [3, 3],
      );
      runner.update({ ...runner.currentConfig, sim_users: 1 });
      await waitFor(() => runner.snapshot().active_users === 1, 'one active user');
      const n = target.requests.length;
      await waitFor(() => target.requests.length > n + 5, 'more requests');
      assert.deepEqual([...usersSeen(target.requests.slice(n + 2))], ['user-1'], 'only user 1 goes on');
    } finally {
      await runner.stop();
    }
  });

  it('stop stops every thread at once: no request arrives after it resolved', async () => {
    target.on('/hold', { hold: true });
    const { runner } = threaded({ flow_target_url: target.url, sim_users: 6 }, [req('a', '/a'), req('hold', '/hold')]);
    await waitFor(() => target.inFlight === 6, 'six requests held', BOOT_MS);
    await runner.stop();
    const n = target.requests.length;
    assert.equal(runner.status, 'stopped');
    // The target holds them until release: only the client's abort ends them (the target sees it a moment later).
    await waitFor(() => target.inFlight === 0, 'requests in flight to be aborted', 5_000);
    target.release();
    await quietPeriod(300);
    assert.equal(target.requests.length, n, 'nothing arrived after stop');
  });

  it('a thread that fails makes the run error, and the other threads stop', async () => {
    const { runner, logs } = threaded({ flow_target_url: target.url, sim_users: 4 }, [
      req('a', '/a', { headers: user }),
    ]);
    await waitFor(() => usersSeen(target.requests).size === 4, 'four users', BOOT_MS);
    await (runner as ThreadedRunner).workers[1]!.terminate();
    await runner.done;
    assert.equal(runner.status, 'error');
    assert.ok(
      logs.some((l) => l.level === 'error' && /thread 1 exited/.test(l.message)),
      JSON.stringify(logs),
    );
    // Requests the killed thread wrote just before may still reach the target; then nothing more comes.
    await waitFor(
      async () => {
        const n = target.requests.length;
        await quietPeriod(300);
        return target.requests.length === n;
      },
      'the other thread to have stopped (300 ms without a request)',
      5_000,
    );
  });

  it('ramp-up over threads starts flow user k of n when one loop would, k × ramp / n after the start (n not a multiple of the threads)', async () => {
    const { runner } = threaded({ flow_target_url: target.url, sim_users: 3, ramp_up_seconds: 0.6 }, [
      req('a', '/a', { headers: user }),
    ]);
    try {
      const first = await waitFor(
        () => {
          const f = new Map<string, number>();
          for (const r of target.requests)
            if (!f.has(r.headers['x-user'] as string)) f.set(r.headers['x-user'] as string, r.at);
          return f.size === 3 && f;
        },
        'the three users',
        BOOT_MS,
      );
      // started_at is set when the threads are told to go (ms resolution), before any of them starts a user.
      const go = Date.parse(runner.snapshot().started_at!) - performance.timeOrigin;
      for (const [k, u] of ['user-1', 'user-2', 'user-3'].entries())
        assert.ok(first.get(u)! - go >= k * 200 - 3, `${u} arrived ${Math.round(first.get(u)! - go)} ms after go`);
      assert.ok(first.get('user-3')! - go < 400 + 1000, 'user-3 starts near the end of the ramp');
    } finally {
      await runner.stop();
    }
  });

  it('an iteration limit ends each thread, then the run', async () => {
    const { runner } = threaded({ flow_target_url: target.url, sim_users: 3 }, [req('a', '/a', { headers: user })], {
      iterations: 4,
    });
    await runner.done;
    assert.equal(runner.status, 'stopped');
    assert.equal(target.requests.length, 12);
    assert.equal(runner.snapshot().total_requests, 12);
    assert.equal(runner.snapshot().flow_count, 12);
  });

  it("log lines of the threads reach the runner's log", async () => {
    const { runner, logs } = threaded(
      { flow_target_url: target.url, sim_users: 2 },
      [req('a', '/a', { extract: { x: 'body.nope' } })],
      {
        iterations: 1,
      },
    );
    await runner.done;
    assert.ok(
      logs.some((l) => l.level === 'warn' && /extract 'x'/.test(l.message)),
      JSON.stringify(logs),
    );
  });

  it('through the control API: start, update, graceful stop and Prometheus totals over threads', async () => {
    const lines: string[] = [];
    const control = new FlowControl({ log: (_l, m) => void lines.push(m), threads: 2 });
    await control.start(
      makeConfig({ flow_target_url: target.url, sim_users: 2 }),
      makeFlowmap({ steps: [req('a', '/a', { headers: user })] }),
    );
    try {
      await waitFor(() => usersSeen(target.requests).size === 2, 'two users', BOOT_MS);
      const up = await control.update({ sim_users: 4 });
      assert.ok(up.ok);
      await waitFor(() => usersSeen(target.requests).size === 4, 'four users', BOOT_MS);
    } finally {
      await control.stop(5000);
    }
    assert.equal(control.appStatus, 'stopped');
    assert.equal(control.totals().requests, target.requests.length);
    assert.equal(control.totals().steps[0]!.count, target.requests.length);
    assert.equal(control.mergeableStats().requests, target.requests.length);
    assert.equal(control.mergeableStats().workers, 1, "one agent's run, however many threads");
    assert.ok(lines.some((m) => /on 2 thread\(s\)/.test(m)));
  });
});

describe('FlowRunner threads: the pool every flow shares', function () {
  this.timeout(90_000);
  const target = useTarget();
  const pools: ThreadPool[] = [];
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close();
  });
  const pooled = (idleMs = THREAD_IDLE_MS) => {
    const pool = new ThreadPool(idleMs);
    pools.push(pool);
    return pool;
  };
  const run = (pool: ThreadPool, users: number, iterations: number) =>
    createRunner(
      makeConfig({ flow_target_url: target.url, sim_users: users }),
      makeFlowmap({ steps: [req('a', '/a', { headers: user })] }),
      { threads: 2, pool, limit: { iterations } },
    ) as ThreadedRunner;

  it('holds no thread before the first threaded flow; the flows after it run on the same threads, starting none', async () => {
    const pool = pooled();
    assert.equal(pool.size, 0);
    const first = run(pool, 2, 2);
    first.start();
    await first.done;
    assert.equal(first.status, 'stopped');
    assert.equal(pool.size, 2, 'the threads outlive the flow');
    const ids = first.workers.map((w) => w.threadId);
    const second = run(pool, 4, 3);
    const t0 = performance.now();
    second.start();
    await second.done;
    const ms = performance.now() - t0;
    assert.deepEqual(
      second.workers.map((w) => w.threadId),
      ids,
    );
    assert.equal(pool.size, 2);
    assert.equal(second.snapshot().total_requests, 12);
    assert.ok(ms < 2000, `a flow on warm threads took ${ms.toFixed(0)} ms`);
  });

  it('two flows at once share the threads, each with its own users and numbers', async () => {
    const pool = pooled();
    const a = run(pool, 2, 5);
    const b = run(pool, 3, 4);
    a.start();
    b.start();
    await Promise.all([a.done, b.done]);
    assert.equal(pool.size, 2);
    assert.deepEqual([a.snapshot().total_requests, b.snapshot().total_requests], [10, 12]);
    assert.equal(target.requests.length, 22);
  });

  it('terminates its threads once no flow used them for the idle period; the next flow starts new ones', async () => {
    const pool = pooled(200);
    const first = run(pool, 2, 1);
    first.start();
    await first.done;
    const exited = first.workers.map((w) => new Promise((resolve) => w.once('exit', resolve)));
    await Promise.all(exited);
    assert.equal(pool.size, 0);
    const next = run(pool, 2, 1);
    next.start();
    await next.done;
    assert.equal(next.status, 'stopped');
    assert.equal(next.snapshot().total_requests, 2);
  });

  it('close terminates the threads, also under a running flow, which then ends in error', async () => {
    const pool = pooled();
    const r = createRunner(
      makeConfig({ flow_target_url: target.url, sim_users: 2 }),
      makeFlowmap({ steps: [req('a', '/a')] }),
      { threads: 2, pool },
    );
    r.start();
    await waitFor(() => target.requests.length > 0, 'requests', BOOT_MS);
    await pool.close();
    await r.done;
    assert.equal(pool.size, 0);
    assert.equal(r.status, 'error');
  });
});

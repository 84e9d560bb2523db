/**
 * Merging runs' stats (engine/merge-stats.ts) with synthetic latencies: the merged percentiles are those of
 * all the raw latencies together, within the histogram's precision, whatever the split across runs; counters
 * add; the window spans the runs; bad input is refused with the entry named.
 */
import assert from 'node:assert/strict';
import {
  decodeLatency,
  emptyStats,
  fleetTotals,
  mergeFleet,
  mergeStats,
  parseMergeableStats,
  RunStats,
  StatsMergeError,
  statsOf,
  type MergeableStats,
} from '../../../adapters/flowrunner/engine/index.js';

/** A small seeded PRNG (mulberry32): the same latencies for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T0 = Date.parse('2025-01-01T00:00:00.000Z');

/** A run's stats from raw latencies (ms, whole microseconds), each answered 200, in the given window. */
function runOf(latenciesMs: number[], window: { startMs?: number; seconds?: number; running?: boolean } = {}) {
  const stats = new RunStats(['s']);
  for (const ms of latenciesMs) stats.request('s', ms, 200, 0);
  const start = T0 + (window.startMs ?? 0);
  const seconds = window.seconds ?? 10;
  return statsOf(stats, {
    running: window.running ?? false,
    started_at: new Date(start).toISOString(),
    ended_at: window.running ? null : new Date(start + seconds * 1000).toISOString(),
    elapsed_seconds: seconds,
    sim_users: 10,
    active_users: window.running ? 10 : 0,
    rps_last_second: 0,
  });
}

/** The nearest-rank percentile of raw values: the smallest value with at least p% of them at or below it. */
function exactPercentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The histogram keeps 3 significant digits (a bucket is at most 1/1024 of its value wide); reports round to 0.01 ms. */
function assertWithinPrecision(actual: number, exact: number, what: string): void {
  const tolerance = exact / 1024 + 0.006;
  assert.ok(
    Math.abs(actual - exact) <= tolerance,
    `${what}: ${actual} ms, exact ${exact} ms (± ${tolerance.toFixed(4)})`,
  );
}

/** Latencies in ms (whole µs) from a skewed mix: mostly fast, some slow, a few very slow. */
function latencies(random: () => number, n: number, slowShare: number): number[] {
  return Array.from({ length: n }, () => {
    const r = random();
    const base =
      r < slowShare ? 200 + random() * 2000 : r < slowShare * 1.1 ? 5000 + random() * 20_000 : 0.3 + random() * 40;
    return Math.round(base * 1000) / 1000;
  });
}

describe('FlowRunner stats: merging runs (merge-stats)', () => {
  it('merged p50/p95/p99/max equal those of all raw latencies together, within the precision (several seeds and splits)', () => {
    for (const seed of [1, 7, 42, 1234, 99_991]) {
      const random = prng(seed);
      const runs = 2 + Math.floor(random() * 5);
      const raws = Array.from({ length: runs }, (_, i) =>
        // Runs differ in size and in how slow they are: some workers see a slow backend, some do not.
        latencies(random, 50 + Math.floor(random() * 3000), i % 2 === 0 ? 0.01 : 0.2 * random()),
      );
      const all = raws.flat().sort((a, b) => a - b);
      const fleet = mergeFleet(raws.map((r) => runOf(r)));
      const where = `seed ${seed}, ${runs} runs of ${raws.map((r) => r.length).join('/')}`;
      assert.equal(fleet.requests, all.length, where);
      assertWithinPrecision(fleet.latency_ms.p50, exactPercentile(all, 50), `${where} p50`);
      assertWithinPrecision(fleet.latency_ms.p95, exactPercentile(all, 95), `${where} p95`);
      assertWithinPrecision(fleet.latency_ms.p99, exactPercentile(all, 99), `${where} p99`);
      assertWithinPrecision(fleet.latency_ms.max, all.at(-1)!, `${where} max`);
      // And exactly what one run that saw every request reports: merging loses nothing.
      const one = fleetTotals(runOf(all));
      assert.deepEqual(
        [fleet.latency_ms.p50, fleet.latency_ms.p95, fleet.latency_ms.p99],
        [one.latency_ms.p50, one.latency_ms.p95, one.latency_ms.p99],
        where,
      );
    }
  });

  it('differs from averaging the runs’ percentiles when the split is skewed', () => {
    const random = prng(5);
    const fast = Array.from({ length: 1000 }, () => 5 + Math.round(random() * 5000) / 1000); // 5..10 ms
    const slow = Array.from({ length: 5 }, () => 800 + Math.round(random() * 200_000) / 1000); // 800..1000 ms
    const a = runOf(fast);
    const b = runOf(slow);
    const all = [...fast, ...slow].sort((x, y) => x - y);
    const merged = mergeFleet([a, b]);
    const averaged = (fleetTotals(a).latency_ms.p99 + fleetTotals(b).latency_ms.p99) / 2;
    assertWithinPrecision(merged.latency_ms.p99, exactPercentile(all, 99), 'merged p99');
    assert.ok(merged.latency_ms.p99 < 11, `merged p99 ${merged.latency_ms.p99} ms is a fast request's`);
    assert.ok(averaged > 400, `the average of p99s (${averaged} ms) is not any request's p99`);
    assertWithinPrecision(merged.latency_ms.p95, exactPercentile(all, 95), 'merged p95');
    assertWithinPrecision(merged.latency_ms.max, all.at(-1)!, 'merged max');
  });

  it('adds counters: requests, flows, errors by kind, status classes, assertions, users', () => {
    const make = (requests: number, failedStatus: number, errors: Array<[string, number]>) => {
      const stats = new RunStats(['s']);
      for (let i = 0; i < requests; i++) stats.request('s', 3, i % 10 === 0 ? failedStatus : 200, 0);
      for (const [kind, n] of errors) for (let i = 0; i < n; i++) stats.error('s', kind as 'network');
      for (let i = 0; i < requests / 2; i++) {
        stats.flowStarted();
        stats.flow(10, i % 5 === 0);
      }
      stats.flowStarted();
      stats.assertion('s', true);
      stats.assertion('s', false);
      return statsOf(stats, {
        running: false,
        started_at: new Date(T0).toISOString(),
        ended_at: new Date(T0 + 1000).toISOString(),
        elapsed_seconds: 1,
        sim_users: 4,
        active_users: 0,
        rps_last_second: 0,
      });
    };
    const m = mergeStats([
      make(100, 503, [
        ['http_5xx', 10],
        ['timeout', 2],
      ]),
      make(40, 404, [
        ['http_4xx', 4],
        ['network', 1],
      ]),
    ]);
    assert.equal(m.workers, 2);
    assert.equal(m.requests, 140);
    assert.equal(m.latency.count, 140);
    assert.equal(decodeLatency(m.latency.hdr).totalCount, 140);
    assert.deepEqual(m.errors, {
      network: 1,
      timeout: 2,
      http_3xx: 0,
      http_4xx: 4,
      http_5xx: 10,
      extraction: 0,
      invalid_request: 0,
    });
    assert.deepEqual(m.status_classes, { '1xx': 0, '2xx': 126, '3xx': 0, '4xx': 4, '5xx': 10 });
    assert.deepEqual([m.flows_started, m.flows_completed, m.flows_failed], [72, 56, 14]);
    assert.deepEqual([m.assertions_passed, m.assertions_failed, m.sim_users], [2, 2, 8]);
    const t = fleetTotals(m);
    assert.equal(t.errors_total, 17);
    assert.equal(t.avg_flow_duration_ms, 10);
  });

  it('rps is all requests over the window from the earliest start to the latest end', () => {
    const a = runOf(Array(600).fill(2), { startMs: 0, seconds: 10 });
    const b = runOf(Array(600).fill(2), { startMs: 2000, seconds: 10 });
    const t = mergeFleet([a, b]);
    assert.equal(t.window_seconds, 12);
    assert.equal(t.started_at, new Date(T0).toISOString());
    assert.equal(t.ended_at, new Date(T0 + 12_000).toISOString());
    assert.equal(t.rps, 100);
    assert.equal(t.running, false);
    const live = mergeStats([a, runOf([1], { startMs: 1000, seconds: 15, running: true })]);
    assert.equal(live.running, true);
    assert.equal(live.ended_at, null, 'a fleet with a running run has not ended');
    assert.equal(live.elapsed_seconds, 16);
  });

  it('is associative and survives JSON: merged stats merge again to the same totals', () => {
    const random = prng(77);
    const runs = [0.02, 0.3, 0].map((slow, i) => runOf(latencies(random, 500 + i * 300, slow), { startMs: i * 100 }));
    const flat = mergeStats(runs);
    const nested = mergeStats([JSON.parse(JSON.stringify(mergeStats(runs.slice(0, 2)))), runs[2]!]);
    assert.deepEqual(fleetTotals(nested), fleetTotals(flat));
    assert.equal(nested.workers, 3);
  });

  it('merging nothing, or runs that never started, gives zeros and no window', () => {
    const none = fleetTotals(mergeStats([]));
    assert.deepEqual([none.workers, none.requests, none.rps, none.window_seconds, none.started_at], [0, 0, 0, 0, null]);
    assert.deepEqual(none.latency_ms, { p50: 0, p95: 0, p99: 0, max: 0, mean: 0, significant_digits: 3 });
    const withIdle = mergeFleet([emptyStats(), runOf([4, 4, 4], { seconds: 3 })]);
    assert.deepEqual([withIdle.requests, withIdle.rps, withIdle.window_seconds], [3, 1, 3]);
  });

  it('refuses another format, a histogram that does not decode, or one that disagrees with its count, naming the entry', () => {
    const good = runOf([1, 2, 3]);
    const bad = (s: MergeableStats, pattern: RegExp) =>
      assert.throws(
        () => mergeStats([good, s]),
        (err: unknown) => err instanceof StatsMergeError && pattern.test(err.message),
      );
    bad({ ...good, format: 'flowrunner-stats/0' } as unknown as MergeableStats, /stats 1 .*format/);
    bad({ ...good, latency: { ...good.latency, hdr: 'not a histogram' } }, /stats 1: latency\.hdr/);
    bad({ ...good, latency: { ...good.latency, count: 4 } }, /stats 1: latency\.count is 4 but its histogram holds 3/);
  });

  it('parseMergeableStats accepts a run’s stats sent as JSON and lists what is wrong with anything else', () => {
    const sent = JSON.parse(JSON.stringify(runOf([1, 2])));
    const ok = parseMergeableStats(sent);
    assert.ok(ok.ok);
    const { requests: _, ...missing } = sent;
    const bad = parseMergeableStats({ ...missing, errors: { ...sent.errors, network: -1 }, extra: 1 });
    assert.ok(!bad.ok);
    const text = bad.problems.join('\n');
    assert.match(text, /requests/);
    assert.match(text, /\/errors\/network/);
    assert.match(text, /extra|additional/i);
  });
});

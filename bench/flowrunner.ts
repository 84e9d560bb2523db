/**
 * FlowRunner throughput (npm run bench:flowrunner): against one local node:http server (its own
 * process), a one-request flowmap with sim_users=50 and no pauses for 8 s, then autocannon -c 50 for
 * 8 s on the same server, in the same run and the same client process. Target: >= 0.6x autocannon's
 * requests/s. Also: requests/s and CPU per request of a 3-step flowmap (extraction, a condition,
 * substitution), and peak RSS with sim_users=1000. Then ramp-up: 1000 users with the default pauses for
 * 8 s, all at once vs ramp_up_seconds=5: connections the target saw opened in the first second, p99
 * latency of the requests of the first second and of the whole run. Every load is bounded in time and
 * targets 127.0.0.1.
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startTarget, type Target } from './target.js';
import {
  availableCores,
  createRunner,
  decodeLatency,
  FlowRunner,
  parseConfig,
  parseFlowmap,
  type Flowmap,
  type FlowRunnerConfig,
} from '../adapters/flowrunner/engine/index.js';
import { randomProfile } from '../adapters/flowrunner/engine/realism.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const USERS = 50;

function config(url: string, users: number): FlowRunnerConfig {
  const c = parseConfig({ flow_target_url: url, sim_users: users, min_sleep_ms: 0, max_sleep_ms: 0 });
  if (!c.ok) throw new Error(JSON.stringify(c.problems));
  return c.config;
}

function flowmap(raw: unknown): Flowmap {
  const f = parseFlowmap(raw);
  if (!f.ok) throw new Error(JSON.stringify(f.problems));
  return f.flowmap;
}

const ONE_REQUEST = flowmap({
  name: 'bench-one',
  steps: [{ id: 'get', type: 'request', method: 'GET', url: '/ping' }],
});
const THREE_STEPS = flowmap({
  name: 'bench-three',
  staticVars: { tenant: 'acme' },
  steps: [
    {
      id: 'login',
      type: 'request',
      method: 'POST',
      url: '/login?tenant={{tenant}}',
      body: { user: '{{userId}}', instance: '##VAR:unquoted:flowInstance##' },
      extract: { token: 'body.token', plan: 'user.plan' },
    },
    {
      id: 'by-plan',
      type: 'condition',
      conditionData: { variable: 'plan', operator: 'equals', value: 'pro' },
      then: [{ id: 'pro', type: 'request', url: '/pro/{{tenant}}', headers: { Authorization: 'Bearer {{token}}' } }],
      else: [{ id: 'free', type: 'request', url: '/free/{{tenant}}', headers: { Authorization: 'Bearer {{token}}' } }],
    },
    {
      id: 'report',
      type: 'request',
      method: 'POST',
      url: '/report',
      body: { token: '##VAR:string:token##', status: '##VAR:unquoted:response_login_status##' },
    },
  ],
});

/** Runs a flow for `seconds`; returns requests/s (from the engine) and CPU microseconds per request. */
async function runFlow(
  url: string,
  fm: Flowmap,
  users: number,
  seconds: number,
): Promise<{ rps: number; cpuUsPerRequest: number; requests: number; errors: number; peakRssMb: number }> {
  const runner = new FlowRunner(config(url, users), fm, { limit: { durationMs: seconds * 1000 } });
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  runner.start();
  await runner.done;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  const s = runner.snapshot();
  return {
    rps: s.total_requests / elapsed,
    cpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, s.total_requests),
    requests: s.total_requests,
    errors: s.errors_total,
    peakRssMb: peak / 1024 / 1024,
  };
}

interface ThreadedResult {
  rps: number;
  requests: number;
  errors: number;
  /** Client CPU (every thread of this process) per 1,000 requests, from the moment every thread ran. */
  cpuMsPer1000: number;
}

/**
 * The one-request flow with `threads` threads for `seconds` (after every thread has started): requests/s
 * over the threads' window (their merged stats), client CPU per 1,000 requests after the threads started.
 */
async function runThreaded(url: string, threads: number, seconds: number): Promise<ThreadedResult> {
  const runner = createRunner(config(url, USERS), ONE_REQUEST, { threads });
  runner.start();
  // Thread start-up (loading the engine in each thread) is not load: measure from the first numbers of all.
  const deadline = Date.now() + 60_000;
  while (runner.mergeableStats().requests === 0 || runner.snapshot().active_users < USERS) {
    if (Date.now() > deadline) throw new Error('the threads did not start within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  const requests0 = runner.mergeableStats().requests;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  await runner.stop();
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const s = runner.snapshot();
  const requests = s.total_requests - requests0;
  return {
    rps: requests / elapsed,
    requests,
    errors: s.errors_total,
    cpuMsPer1000: (cpu.user + cpu.system) / 1000 / (requests / 1000),
  };
}

/**
 * A request head like FlowRunner's (a browser-like profile and X-Forwarded-For), for autocannon: the same
 * request from both clients costs the target the same, so their ratio is about the clients alone.
 */
const FLOWRUNNER_HEAD: Record<string, string> = {
  ...randomProfile(() => 0.1).headers,
  'x-forwarded-for': '203.0.113.77',
};

/**
 * autocannon with `workers` threads (1: on this event loop), with its own small request or with `headers`:
 * requests/s and client CPU per 1,000 requests.
 */
async function cannonThreaded(url: string, workers: number, seconds: number, headers?: Record<string, string>) {
  const cpu0 = process.cpuUsage();
  const res = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon(
      {
        url: `${url}/ping`,
        connections: USERS,
        duration: seconds,
        ...(workers > 1 ? { workers } : {}),
        ...(headers ? { headers } : {}),
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
  });
  const cpu = process.cpuUsage(cpu0);
  const requests = res['2xx'];
  return {
    rps: requests / res.duration,
    requests,
    cpuMsPer1000: (cpu.user + cpu.system) / 1000 / (requests / 1000),
  };
}

/** Request head and body bytes of one request of each client, as the target received them. */
async function requestSizes(target: Target): Promise<{ flowrunner: number; autocannon: number; sameHead: number }> {
  const size = async (send: () => Promise<unknown>) => {
    const a = await target.bytes();
    await send();
    const b = await target.bytes();
    return Math.round((b.headBytes - a.headBytes + b.bodyBytes - a.bodyBytes) / Math.max(1, b.count - a.count));
  };
  const flowrunner = await size(async () => {
    const r = new FlowRunner(config(target.url, 10), ONE_REQUEST, { limit: { iterations: 10 } });
    r.start();
    await r.done;
  });
  const autocannonBytes = await size(
    () =>
      new Promise((resolve, reject) =>
        autocannon({ url: `${target.url}/ping`, connections: 1, amount: 10 }, (err, r) =>
          err ? reject(err) : resolve(r),
        ),
      ),
  );
  const sameHead = await size(
    () =>
      new Promise((resolve, reject) =>
        autocannon({ url: `${target.url}/ping`, connections: 1, amount: 10, headers: FLOWRUNNER_HEAD }, (err, r) =>
          err ? reject(err) : resolve(r),
        ),
      ),
  );
  return { flowrunner, autocannon: autocannonBytes, sameHead };
}

/** FlowRunner with T threads against autocannon with T workers, T = 1 and T = the cores, alternating. */
export async function threadsBench(): Promise<string> {
  const cores = availableCores();
  const target = await startTarget();
  try {
    const sizes = await requestSizes(target);
    const lines = [
      `threads: one-request flowmap, ${USERS} users, no pauses, ${SECONDS} s, vs autocannon -c ${USERS} --workers T, same target (its own process); ${cores} core(s); load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      `  request size    flowrunner ${sizes.flowrunner} B, autocannon ${sizes.autocannon} B, autocannon with FlowRunner's head ${sizes.sameHead} B (head and body as the target received them)`,
    ];
    for (const t of [...new Set([1, cores])]) {
      await cannonThreaded(target.url, t, 1); // warm-up
      const flow = await runThreaded(target.url, t, SECONDS);
      const ac = await cannonThreaded(target.url, t, SECONDS);
      const same = await cannonThreaded(target.url, t, SECONDS, FLOWRUNNER_HEAD);
      const ratio = flow.rps / ac.rps;
      const sameRatio = flow.rps / same.rps;
      const goal = t === 1 ? 0.74 : 0.9;
      lines.push(
        `  T=${t}  flowrunner ${Math.round(flow.rps)} req/s (${flow.errors} errors), ${flow.cpuMsPer1000.toFixed(1)} ms CPU/1000 req; autocannon ${Math.round(ac.rps)} req/s, ${ac.cpuMsPer1000.toFixed(1)} ms CPU/1000 req; ratio ${ratio.toFixed(2)}x (target >= ${goal}x) ${ratio >= goal ? 'OK' : 'MISSED'}`,
        `        autocannon with FlowRunner's request head ${Math.round(same.rps)} req/s, ${same.cpuMsPer1000.toFixed(1)} ms CPU/1000 req; ratio ${sameRatio.toFixed(2)}x`,
      );
    }
    lines.push(
      `  load average after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    return lines.join('\n');
  } finally {
    target.proc.kill();
  }
}

const RAMP_USERS = 1000;
const RAMP_SECONDS = 5;
const RAMP_RUN_SECONDS = 8;

interface RampResult {
  connectionsFirstSecond: number;
  p99FirstSecondMs: number;
  p99Ms: number;
  /** Of the requests after RAMP_SECONDS, when every user of either run has started. */
  p99SteadyMs: number;
  maxMs: number;
  requests: number;
  errors: number;
}

/** 1000 users with the default pauses (100..1000 ms) for RAMP_RUN_SECONDS, started over `rampSeconds`. */
async function rampRun(target: Target, rampSeconds: number): Promise<RampResult> {
  const c = parseConfig({ flow_target_url: target.url, sim_users: RAMP_USERS, ramp_up_seconds: rampSeconds });
  if (!c.ok) throw new Error(JSON.stringify(c.problems));
  const runner = new FlowRunner(c.config, ONE_REQUEST, { limit: { durationMs: RAMP_RUN_SECONDS * 1000 } });
  const t0 = Date.now();
  let firstSecond = runner.snapshot();
  let rampEnd = runner.mergeableStats();
  const timers = [
    setTimeout(() => (firstSecond = runner.snapshot()), 1000),
    setTimeout(() => (rampEnd = runner.mergeableStats()), RAMP_SECONDS * 1000),
  ];
  runner.start();
  await runner.done;
  for (const t of timers) clearTimeout(t);
  const s = runner.snapshot();
  // The histogram of the requests after the ramp: the whole run's minus the one at the ramp's end.
  const steady = decodeLatency(runner.mergeableStats().latency.hdr);
  steady.subtract(decodeLatency(rampEnd.latency.hdr));
  const opened = await target.connectionsOpened();
  return {
    connectionsFirstSecond: opened.filter((t) => t >= t0 && t < t0 + 1000).length,
    p99FirstSecondMs: firstSecond.p99_ms,
    p99Ms: s.p99_ms,
    p99SteadyMs: Math.round(steady.getValueAtPercentile(99) / 10) / 100,
    maxMs: s.max_ms,
    requests: s.total_requests,
    errors: s.errors_total,
  };
}

function rampLine(label: string, r: RampResult): string {
  return (
    `  ${label.padEnd(15)} ${r.connectionsFirstSecond} connections opened in the first second; p99 ${r.p99FirstSecondMs} ms of the requests of the first second\n` +
    `  ${''.padEnd(15)} p99 ${r.p99Ms} ms (max ${r.maxMs} ms) over the run, ${r.p99SteadyMs} ms after ${RAMP_SECONDS} s; ${r.requests} requests, ${r.errors} errors`
  );
}

function cannon(url: string, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url: `${url}/ping`, connections: USERS, duration: seconds }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

export async function flowrunnerBench(): Promise<string> {
  const target = await startTarget();
  try {
    await runFlow(target.url, ONE_REQUEST, USERS, 1); // warm-up: JIT, connections
    await cannon(target.url, 1);
    const before = await target.count();
    const flow = await runFlow(target.url, ONE_REQUEST, USERS, SECONDS);
    const served = (await target.count()) - before;
    const ac = await cannon(target.url, SECONDS);
    const acRps = ac['2xx'] / ac.duration;
    const three = await runFlow(target.url, THREE_STEPS, USERS, Math.min(SECONDS, 5));
    const many = await runFlow(target.url, { ...ONE_REQUEST }, 1000, 3);
    const burst = await rampRun(target, 0);
    const ramped = await rampRun(target, RAMP_SECONDS);
    const ratio = flow.rps / acRps;
    return (
      `flowrunner: one-request flowmap, ${USERS} users, no pauses, ${SECONDS} s, vs autocannon -c ${USERS} ${SECONDS} s, same target\n` +
      `  flowrunner      ${Math.round(flow.rps)} req/s (${flow.requests} requests, the target counted ${served}, ${flow.errors} errors), ${flow.cpuUsPerRequest.toFixed(1)} µs CPU/request\n` +
      `  autocannon      ${Math.round(acRps)} req/s\n` +
      `  ratio           ${ratio.toFixed(2)}x (target >= 0.60x) ${ratio >= 0.6 ? 'OK' : 'MISSED'}\n` +
      `  3-step flowmap  ${Math.round(three.rps)} req/s, ${three.cpuUsPerRequest.toFixed(1)} µs CPU/request (extraction, condition, substitution; ${three.errors} errors)\n` +
      `  1000 users      peak RSS ${Math.round(many.peakRssMb)} MB (${Math.round(many.rps)} req/s, ${many.errors} errors)\n` +
      `ramp-up: ${RAMP_USERS} users, pauses 100..1000 ms, ${RAMP_RUN_SECONDS} s, all at once vs ramp_up_seconds ${RAMP_SECONDS}\n` +
      `${rampLine('at once', burst)}\n${rampLine(`ramp ${RAMP_SECONDS} s`, ramped)}`
    );
  } finally {
    target.proc.kill();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // `-- threads`: only FlowRunner threads against autocannon workers.
  if (process.argv.includes('threads')) process.stdout.write(`\n${await threadsBench()}\n`);
  else process.stdout.write(`\n${await flowrunnerBench()}\n\n${await threadsBench()}\n`);
  process.exit(0);
}

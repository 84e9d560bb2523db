/**
 * Idle footprint (npm run bench -- rss): resident memory of the compiled agent (dist/, as `npm start`
 * runs it) started idle on a fresh temporary DATA_DIR, in two setups:
 * (a) no Kubernetes configuration at all: HOME is an empty temporary directory (no ~/.kube/config), no
 *     KUBECONFIG, K8S_SERVICE_ACCOUNT_DIR names a directory that does not exist; target <= 80 MB;
 * (b) a cluster configured: K8S_SERVER=http://127.0.0.1:<port of a stub API server the benchmark opens>
 *     and K8S_TOKEN. The stub answers GET /version and the SelfSubjectReview of the adapter's health
 *     check, so the k8s adapter reports ready, as with a real cluster.
 *
 * Each setup: start the agent, wait until it listens, poll GET /health until it answers 200 (in (b) the
 * first one waits for the adapter's health check against the stub), then sample VmRSS from
 * /proc/<pid>/status twice, each time SAMPLES samples SAMPLE_INTERVAL_MS apart, with the median reported:
 * - at start: right after /health answered;
 * - settled: SETTLED_AFTER_S seconds later, with nothing sent to the agent in between. Garbage left by
 *   the start and a young generation sized for it stay resident until V8's memory reducer notices the
 *   process is idle and collects them (a few tens of seconds after start); that is what an idle
 *   sidecar holds for the rest of its life, so the target applies to it.
 * The V8 heap (used/total) and external memory come from the agent's own /metrics (prom-client's
 * default metrics), read after the samples, to show what part of the RSS is JS heap; VmHWM is the peak.
 * The agents start one after another (each once the previous one answered /health, so start times are
 * not measured against each other) and then idle side by side; ROUNDS starts per setup, alternating
 * which setup starts first; each figure is the median over a setup's starts. No reference process: the
 * numbers are absolute, and idle RSS does not depend on the machine's load the way times do (the load
 * average is printed anyway).
 *
 * Bounded: each agent lives at most 120 s (bench/agent.ts's watchdog), every wait has a timeout, and the
 * agents, the stub server and the temporary directories are removed on every exit path.
 */
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { benchTempDir, loadAverage, startCompiledAgent } from './agent.js';
import { median } from './stats.js';

const SAMPLES = 7;
const SAMPLE_INTERVAL_MS = 500;
const ROUNDS = 3;
const SETTLED_AFTER_S = 90;
const HEALTH_TIMEOUT_MS = 20_000;
const TARGET_MB = 80;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A kB field of /proc/<pid>/status, in MB. */
function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** A gauge of prom-client's default metrics, in MB. */
function metricMb(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) / 1024 / 1024 : Number.NaN;
}

/** A stub Kubernetes API server: enough for the k8s adapter's health check (version, SelfSubjectReview). */
async function stubApiServer(): Promise<{ url: string; requests: () => number; close(): void }> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    res.setHeader('content-type', 'application/json');
    if (req.url?.startsWith('/version')) {
      res.end('{"major":"1","minor":"30","gitVersion":"v1.30.0"}');
      return;
    }
    if (req.method === 'POST' && req.url?.includes('selfsubjectreviews')) {
      res.statusCode = 201;
      res.end(
        '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview","status":{"userInfo":{"username":"bench","groups":["system:authenticated"]}}}',
      );
      return;
    }
    res.statusCode = 404;
    res.end('{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => server.close(),
  };
}

interface Footprint {
  rssMb: number;
  settledRssMb: number;
  hwmMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  startMs: number;
  k8sReady: boolean;
}

/** Starts an agent and waits until /health answers 200; `measure` then samples it. */
async function startIdle(env: Record<string, string>) {
  const agent = await startCompiledAgent({ env, maxLifetimeSeconds: SETTLED_AFTER_S + 60 });
  try {
    const deadline = performance.now() + HEALTH_TIMEOUT_MS;
    let health: { adapters?: { k8s?: { ready?: boolean } } } | undefined;
    while (!health) {
      const res = await fetch(`${agent.url}/health`).catch(() => undefined);
      if (res?.status === 200) health = (await res.json()) as typeof health;
      else if (performance.now() > deadline)
        throw new Error(`GET /health did not answer 200 within ${HEALTH_TIMEOUT_MS} ms`);
      else await sleep(100);
    }
    return { agent, healthAt: performance.now(), k8sReady: health.adapters?.k8s?.ready === true };
  } catch (err) {
    await agent.stop();
    throw err;
  }
}

async function sampleRss(pid: number): Promise<number> {
  const rss: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    await sleep(SAMPLE_INTERVAL_MS);
    rss.push(statusMb(pid, 'VmRSS'));
  }
  return median(rss);
}

async function measure(started: Awaited<ReturnType<typeof startIdle>>): Promise<Footprint> {
  const { agent } = started;
  try {
    const rssMb = await sampleRss(agent.pid);
    await sleep(Math.max(0, started.healthAt + SETTLED_AFTER_S * 1000 - performance.now()));
    const settledRssMb = await sampleRss(agent.pid);
    const hwmMb = statusMb(agent.pid, 'VmHWM');
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    return {
      rssMb,
      settledRssMb,
      hwmMb,
      heapUsedMb: metricMb(metrics, 'nodejs_heap_size_used_bytes'),
      heapTotalMb: metricMb(metrics, 'nodejs_heap_size_total_bytes'),
      externalMb: metricMb(metrics, 'nodejs_external_memory_bytes'),
      startMs: agent.startMs,
      k8sReady: started.k8sReady,
    };
  } finally {
    await agent.stop();
  }
}

export async function idleFootprint(): Promise<string> {
  const load0 = loadAverage();
  const home = benchTempDir('home');
  const stub = await stubApiServer();
  try {
    const setups: Array<{ name: string; env: Record<string, string>; runs: Footprint[] }> = [
      {
        name: '(a) no Kubernetes configuration',
        env: { HOME: home, K8S_SERVICE_ACCOUNT_DIR: join(home, 'no-service-account') },
        runs: [],
      },
      {
        name: '(b) cluster configured (K8S_SERVER, K8S_TOKEN)',
        env: {
          HOME: home,
          K8S_SERVICE_ACCOUNT_DIR: join(home, 'no-service-account'),
          K8S_SERVER: stub.url,
          K8S_TOKEN: 'bench-token',
        },
        runs: [],
      },
    ];
    const measuring: Array<Promise<void>> = [];
    try {
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? setups : [...setups].reverse();
        for (const s of order) {
          const started = await startIdle(s.env);
          measuring.push(measure(started).then((f) => void s.runs.push(f)));
        }
      }
    } finally {
      await Promise.allSettled(measuring);
    }
    await Promise.all(measuring);
    const lines = [
      `idle footprint: compiled agent, VmRSS median of ${SAMPLES} samples ${SAMPLE_INTERVAL_MS} ms apart, at start (after /health answered) and settled (${SETTLED_AFTER_S} s later, idle); median of ${ROUNDS} starts per setup`,
    ];
    for (const s of setups) {
      const m = (f: (x: Footprint) => number) => median(s.runs.map(f));
      const each = (f: (x: Footprint) => number) => s.runs.map((x) => f(x).toFixed(1)).join(', ');
      lines.push(
        `  ${s.name}:`,
        `    RSS settled     ${m((x) => x.settledRssMb).toFixed(1)} MB (starts: ${each((x) => x.settledRssMb)})`,
        `    RSS at start    ${m((x) => x.rssMb).toFixed(1)} MB (starts: ${each((x) => x.rssMb)}), peak ${m((x) => x.hwmMb).toFixed(1)} MB`,
        `    V8 heap         ${m((x) => x.heapUsedMb).toFixed(1)} MB used of ${m((x) => x.heapTotalMb).toFixed(1)} MB when settled, external ${m((x) => x.externalMb).toFixed(1)} MB`,
        `    start           ${m((x) => x.startMs).toFixed(0)} ms to listen; k8s adapter ready: ${s.runs.map((x) => x.k8sReady).join(', ')}`,
      );
    }
    const a = median(setups[0].runs.map((x) => x.settledRssMb));
    lines.push(
      `  verdict         (a) settled ${a.toFixed(1)} MB (target <= ${TARGET_MB} MB) ${a <= TARGET_MB ? 'OK' : 'MISSED'}; the stub API server saw ${stub.requests()} requests`,
      `  load average    ${load0} before, ${loadAverage()} after`,
    );
    return lines.join('\n');
  } finally {
    stub.close();
    rmSync(home, { recursive: true, force: true });
  }
}

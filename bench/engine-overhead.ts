/**
 * Engine overhead: one execution of a package with 200 sequential api steps
 * against a local keep-alive HTTP server, versus 200 sequential got calls in a
 * plain loop. Target: engine time <= 1.3x the loop.
 *
 * Two setups, each with its own verdict:
 * - the server in its own process (bench/target-server.mjs), as the services
 *   an agent calls are: every call includes the round trip between processes;
 * - the server in the benchmark's own thread: no such round trip, so the
 *   reference is faster and the ratio stricter (the server's work is added to
 *   both sides).
 * The setups run one after the other; within each, rounds alternate between
 * loop-then-engine and engine-then-loop, so neither side always pays for what
 * the other left behind (GC, timers). CPU time per step is reported too; in the
 * first setup it is the client's alone.
 *
 * It measures what `npm start` runs: the compiled dist/ (npm run bench builds
 * it first), after WARM_UP_ROUNDS, as in an agent that has been up for a while
 * (the first few thousand steps run in V8's unoptimised tiers).
 *
 * The api adapter installs a faster build of got's request options into got
 * (adapters/api/request-options.ts), which this process shares with the engine:
 * the plain loop runs with got's own, as a script's got would, and a third
 * loop with the adapter's shows the engine's own work (printed, not judged).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import got, { Options } from 'got';
import type * as RequestOptionsModule from '../adapters/api/request-options.js';
import type * as AdaptersModule from '../adapters/index.js';
import type * as RegistryModule from '../services/runtime-agent/src/adapter-registry.js';
import type * as EngineModule from '../services/runtime-agent/src/engine/engine.js';
import type * as MetricsModule from '../services/runtime-agent/src/metrics.js';
import type * as StoreModule from '../services/runtime-agent/src/store/store.js';
import { fromDist } from './agent.js';
import { withRequestOptions } from './request-options.js';
import { median } from './stats.js';
import { pingPackage, startTarget } from './target.js';

const STEPS = 200;
const WARM_UP_ROUNDS = 8;
const ROUNDS = 32;
const TARGET = 1.3;

/** A keep-alive server in this process, answering as bench/target-server.mjs does. */
async function inThreadServer(): Promise<{ url: string; close(): void }> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true,"n":1}');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

interface Sample {
  ms: number[];
  /** CPU time of this process (user + system), µs. */
  cpuUs: number[];
}

/** Runs `fn` and records its wall time and this process's CPU time. */
async function timed(sample: Sample, fn: () => Promise<void>): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  sample.ms.push(performance.now() - t0);
  const cpu = process.cpuUsage(cpu0);
  sample.cpuUs.push(cpu.user + cpu.system);
}

export async function engineOverhead(): Promise<string> {
  const { builtinAdapters } = await fromDist<typeof AdaptersModule>('adapters/index.js');
  const { AdapterRegistry } = await fromDist<typeof RegistryModule>('services/runtime-agent/src/adapter-registry.js');
  const { Engine } = await fromDist<typeof EngineModule>('services/runtime-agent/src/engine/engine.js');
  const { Metrics } = await fromDist<typeof MetricsModule>('services/runtime-agent/src/metrics.js');
  const { Store } = await fromDist<typeof StoreModule>('services/runtime-agent/src/store/store.js');
  const { fastRequestOptions, gotRequestOptions } = await fromDist<typeof RequestOptionsModule>(
    'adapters/api/request-options.js',
  );
  const gotOwn = gotRequestOptions(Options);
  const fast = fastRequestOptions(gotOwn);

  const loopClient = got.extend({ retry: { limit: 0 }, agent: { http: new Agent({ keepAlive: true }) } });
  const target = await startTarget();
  const dir = mkdtempSync(join(tmpdir(), 'runtime-agent-bench-'));
  let local: { url: string; close(): void } | undefined;
  let store: InstanceType<typeof Store> | undefined;
  try {
    local = await inThreadServer();
    store = new Store(dir);
    const engine = new Engine(store, new AdapterRegistry(builtinAdapters()), new Metrics(), {
      maxConcurrent: 1,
      maxQueued: 10,
      shutdownGraceMs: 1000,
    });
    const setups = [
      {
        name: 'server in its own process (the setup the target is judged on, see docs/benchmarks.md)',
        url: `${target.url}/ping`,
      },
      { name: "server in the benchmark's thread (stricter)", url: `${local.url}/ping` },
    ].map((setup) => {
      const wpk = pingPackage('bench-200-api-steps', setup.url, STEPS);
      const sample = (): Sample => ({ ms: [], cpuUs: [] });
      return { ...setup, wpk, loop: sample(), fixedLoop: sample(), engine: sample() };
    });
    type Setup = (typeof setups)[number];
    const plainLoop = ({ url }: Setup, build: typeof gotOwn) =>
      withRequestOptions(build, async () => {
        for (let i = 0; i < STEPS; i++) await loopClient.get(url).json();
      });
    const engineRun = async ({ wpk }: Setup) => {
      const { execution } = engine.submit({ wpk, params: {}, dryRun: false });
      await once(engine.bus, `end:${execution.id}`);
      const status = store!.executions.get(execution.id)!.status; // the read commits everything the run wrote
      if (status !== 'completed') throw new Error(`bench execution ended ${status}`);
    };
    // One setup after the other. Within a setup, rounds alternate loop-then-engine and engine-then-loop, so
    // each side follows the other as often as itself and neither always pays for what the other left
    // behind (GC, store timers). Warm-up rounds first: JIT tiers, connection pools, prepared statements.
    for (const setup of setups) {
      for (let r = 0; r < WARM_UP_ROUNDS + ROUNDS; r++) {
        const discard: Sample = { ms: [], cpuUs: [] };
        const loop = () => timed(r < WARM_UP_ROUNDS ? discard : setup.loop, () => plainLoop(setup, gotOwn));
        const eng = () => timed(r < WARM_UP_ROUNDS ? discard : setup.engine, () => engineRun(setup));
        if (r % 2 === 0) await loop().then(eng);
        else await eng().then(loop);
        await timed(r < WARM_UP_ROUNDS ? discard : setup.fixedLoop, () => plainLoop(setup, fast));
      }
    }

    const lines = [
      `engine overhead: ${STEPS} sequential api steps, medians of ${ROUNDS} rounds after ${WARM_UP_ROUNDS} warm-up rounds (dist/)`,
    ];
    for (const s of setups) {
      const loop = median(s.loop.ms);
      const eng = median(s.engine.ms);
      const ratio = eng / loop;
      const cpu = (x: Sample) => (median(x.cpuUs) / STEPS).toFixed(0);
      lines.push(
        `  ${s.name}:`,
        `    plain got loop  ${loop.toFixed(1)} ms, ${cpu(s.loop)} µs CPU/step`,
        `    engine run      ${eng.toFixed(1)} ms, ${cpu(s.engine)} µs CPU/step (${((eng - loop) / STEPS).toFixed(3)} ms/step extra)`,
        `    ratio           ${ratio.toFixed(2)}x (target <= ${TARGET.toFixed(2)}x) ${ratio <= TARGET ? 'OK' : 'MISSED'}`,
        `    own work        ${(eng / median(s.fixedLoop.ms)).toFixed(2)}x against the loop with the api adapter's request-options build (${median(s.fixedLoop.ms).toFixed(1)} ms)`,
      );
    }
    return lines.join('\n');
  } finally {
    target.proc.kill();
    local?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

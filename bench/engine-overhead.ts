/**
 * Engine overhead: one execution of a package with 200 sequential api steps
 * against a local keep-alive HTTP server, versus 200 sequential got calls in a
 * plain loop. Target: engine time <= 1.3x the loop.
 *
 * The target server runs in its own process (bench/target-server.mjs), as the
 * services an agent calls do: the server's own work is then not charged to the
 * agent's thread. For reference, the same is measured against a server in the
 * benchmark's own thread, the strictest setup (each request's server work adds
 * to both sides, but the ratio is no longer diluted by the cross-process round
 * trip); its ratio is printed, the verdict is on the first.
 *
 * It measures what `npm start` runs: the compiled dist/ (npm run bench builds
 * it first), after WARM_UP_ROUNDS of each side, as in an agent that has been
 * up for a while (the first few thousand steps run in V8's unoptimised tiers).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import got from 'got';
import type { Wpk } from '../services/runtime-agent/src/wpk/types.js';
import { startTarget } from './target.js';

const STEPS = 200;
const WARM_UP_ROUNDS = 10;
const ROUNDS = 30;
const TARGET = 1.3;

/** A module of the compiled agent, typed by its source. */
const fromDist = (path: string): Promise<unknown> => import(new URL(`../dist/${path}`, import.meta.url).href);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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

export async function engineOverhead(): Promise<string> {
  const { builtinAdapters } = (await fromDist('adapters/index.js')) as typeof import('../adapters/index.js');
  const { AdapterRegistry } = (await fromDist('services/runtime-agent/src/adapter-registry.js')) as typeof import('../services/runtime-agent/src/adapter-registry.js');
  const { Engine } = (await fromDist('services/runtime-agent/src/engine/engine.js')) as typeof import('../services/runtime-agent/src/engine/engine.js');
  const { Metrics } = (await fromDist('services/runtime-agent/src/metrics.js')) as typeof import('../services/runtime-agent/src/metrics.js');
  const { Store } = (await fromDist('services/runtime-agent/src/store/store.js')) as typeof import('../services/runtime-agent/src/store/store.js');

  const dir = mkdtempSync(join(tmpdir(), 'runtime-agent-bench-'));
  const store = new Store(dir);
  const engine = new Engine(store, new AdapterRegistry(builtinAdapters()), new Metrics(), { maxConcurrent: 1, maxQueued: 10, shutdownGraceMs: 1000 });
  const loopClient = got.extend({ retry: { limit: 0 }, agent: { http: new Agent({ keepAlive: true }) } });

  /** Medians of the plain loop and of the engine run against `url`, rounds interleaved. */
  async function measure(url: string): Promise<{ loop: number; engine: number }> {
    const wpk: Wpk = {
      apiVersion: 'wpk/v1',
      kind: 'Workflow',
      metadata: { name: 'bench-200-api-steps', version: '1.0.0' },
      spec: { handlers: Array.from({ length: STEPS }, (_, i) => ({ name: `s${i}`, adapter: 'api', action: 'request', with: { url } })) },
    };
    async function plainLoop(): Promise<number> {
      const t0 = performance.now();
      for (let i = 0; i < STEPS; i++) await loopClient.get(url).json();
      return performance.now() - t0;
    }
    async function engineRun(): Promise<number> {
      const t0 = performance.now();
      const { row } = engine.submit({ wpk, params: {}, dryRun: false });
      await once(engine.bus, `end:${row.id}`);
      const status = store.getExecution(row.id)!.status;
      if (status !== 'completed') throw new Error(`bench execution ended ${status}`);
      return performance.now() - t0;
    }
    // Warm-up: JIT tiers, connection pool, prepared statements.
    for (let r = 0; r < WARM_UP_ROUNDS; r++) {
      await plainLoop();
      await engineRun();
    }
    const loop: number[] = [];
    const eng: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      loop.push(await plainLoop());
      eng.push(await engineRun());
    }
    return { loop: median(loop), engine: median(eng) };
  }

  const target = await startTarget();
  let separate;
  try {
    separate = await measure(`${target.url}/ping`);
  } finally {
    target.proc.kill();
  }
  const local = await inThreadServer();
  let shared;
  try {
    shared = await measure(`${local.url}/ping`);
  } finally {
    local.close();
  }
  store.close();
  rmSync(dir, { recursive: true, force: true });

  const perStep = (m: { loop: number; engine: number }) => ((m.engine - m.loop) / STEPS).toFixed(3);
  const ratio = separate.engine / separate.loop;
  const sharedRatio = shared.engine / shared.loop;
  return (
    `engine overhead: ${STEPS} sequential api steps, median of ${ROUNDS} rounds after ${WARM_UP_ROUNDS} warm-up rounds (dist/)\n` +
    `  target in its own process:\n` +
    `    plain got loop  ${separate.loop.toFixed(1)} ms\n` +
    `    engine run      ${separate.engine.toFixed(1)} ms (${perStep(separate)} ms/step extra)\n` +
    `    ratio           ${ratio.toFixed(2)}x (target <= ${TARGET.toFixed(2)}x) ${ratio <= TARGET ? 'OK' : 'MISSED'}\n` +
    `  for reference, target in the benchmark's own thread (strictest):\n` +
    `    plain got loop  ${shared.loop.toFixed(1)} ms\n` +
    `    engine run      ${shared.engine.toFixed(1)} ms (${perStep(shared)} ms/step extra)\n` +
    `    ratio           ${sharedRatio.toFixed(2)}x`
  );
}

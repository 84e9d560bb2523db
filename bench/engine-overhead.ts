/**
 * Engine overhead: one execution of a package with 200 sequential api steps
 * against a local keep-alive HTTP server, versus 200 sequential got calls in a
 * plain loop. Target: engine time <= 1.3x the loop.
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

const STEPS = 200;
const WARM_UP_ROUNDS = 10;
const ROUNDS = 30;

/** A module of the compiled agent, typed by its source. */
const fromDist = (path: string): Promise<unknown> => import(new URL(`../dist/${path}`, import.meta.url).href);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function engineOverhead(): Promise<string> {
  const { builtinAdapters } = (await fromDist('adapters/index.js')) as typeof import('../adapters/index.js');
  const { AdapterRegistry } = (await fromDist('services/runtime-agent/src/adapter-registry.js')) as typeof import('../services/runtime-agent/src/adapter-registry.js');
  const { Engine } = (await fromDist('services/runtime-agent/src/engine/engine.js')) as typeof import('../services/runtime-agent/src/engine/engine.js');
  const { Metrics } = (await fromDist('services/runtime-agent/src/metrics.js')) as typeof import('../services/runtime-agent/src/metrics.js');
  const { Store } = (await fromDist('services/runtime-agent/src/store/store.js')) as typeof import('../services/runtime-agent/src/store/store.js');
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true,"n":1}');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ping`;

  const dir = mkdtempSync(join(tmpdir(), 'runtime-agent-bench-'));
  const store = new Store(dir);
  const engine = new Engine(store, new AdapterRegistry(builtinAdapters()), new Metrics(), { maxConcurrent: 1, maxQueued: 10, shutdownGraceMs: 1000 });
  const wpk: Wpk = {
    apiVersion: 'wpk/v1',
    kind: 'Workflow',
    metadata: { name: 'bench-200-api-steps', version: '1.0.0' },
    spec: { handlers: Array.from({ length: STEPS }, (_, i) => ({ name: `s${i}`, adapter: 'api', action: 'request', with: { url } })) },
  };

  const loopClient = got.extend({ retry: { limit: 0 }, agent: { http: new Agent({ keepAlive: true }) } });
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
  server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  const ratio = median(eng) / median(loop);
  return (
    `engine overhead: ${STEPS} sequential api steps, median of ${ROUNDS} rounds after ${WARM_UP_ROUNDS} warm-up rounds (dist/)\n` +
    `  plain got loop  ${median(loop).toFixed(1)} ms\n` +
    `  engine run      ${median(eng).toFixed(1)} ms (${((median(eng) - median(loop)) / STEPS).toFixed(3)} ms/step extra)\n` +
    `  ratio           ${ratio.toFixed(2)}x (target <= 1.30x) ${ratio <= 1.3 ? 'OK' : 'MISSED'}`
  );
}

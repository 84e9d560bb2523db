/**
 * Benchmarks: npm run bench -- <name> [<name>...] runs the named ones, npm run bench with no name runs
 * engine and acceptance (as it always has; e2e, store and rss take longer or need a quiet machine, so
 * they run only when named). Each compares against a reference measured in the same run and prints the
 * ratio; nothing here is a timed assertion. Every load is bounded in time and count and targets 127.0.0.1.
 * The load average is printed after each result: on a shared machine, read the ratios, not the times.
 *
 * - engine:     engine overhead, 200 api steps in process vs a got loop (engine-overhead.ts)
 * - acceptance: POST /execute vs GET /health throughput (acceptance.ts)
 * - e2e:        POST /execute of 200 api steps + SSE log stream, compiled agent vs a got loop (e2e.ts)
 * - store:      list, record and log queries at 0 to 1,000,000 stored executions (store-scale.ts)
 * - rss:        idle resident memory without and with a Kubernetes cluster configured (rss.ts)
 * - fleet:      pull mode, 6 agents and 300 tasks: tasks per second and claim-to-start latency, vs push (fleet.ts)
 * - distributed: a flowmap on 3 FlowRunner workers through the Flow Manager vs on 1 (distributed.ts)
 */
import { acceptanceThroughput } from './acceptance.js';
import { loadAverage } from './agent.js';
import { distributedLoad } from './distributed.js';
import { endToEnd } from './e2e.js';
import { engineOverhead } from './engine-overhead.js';
import { fleetPull } from './fleet.js';
import { idleFootprint } from './rss.js';
import { storeAtScale } from './store-scale.js';

const BENCHMARKS: Record<string, () => Promise<string>> = {
  engine: engineOverhead,
  acceptance: acceptanceThroughput,
  e2e: endToEnd,
  store: storeAtScale,
  rss: idleFootprint,
  fleet: fleetPull,
  distributed: distributedLoad,
};
const DEFAULT = ['engine', 'acceptance'];

const names = process.argv.length > 2 ? process.argv.slice(2) : DEFAULT;
const unknown = names.filter((n) => !(n in BENCHMARKS));
if (unknown.length) {
  process.stderr.write(
    `unknown benchmark ${unknown.map((n) => `'${n}'`).join(', ')}; use ${Object.keys(BENCHMARKS).join(', ')} (nothing: ${DEFAULT.join(' and ')})\n`,
  );
  process.exit(2);
}
// Each result is printed when its benchmark ends, so one that fails later does not take it along.
for (const name of names) {
  const result = await BENCHMARKS[name]();
  process.stdout.write(`\n${result}\n  (load average ${loadAverage()} when ${name} ended)\n`);
}
process.exit(0);

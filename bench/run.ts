/**
 * Benchmarks (npm run bench [engine|acceptance]). Each compares against a
 * reference measured in the same run and prints the ratio; nothing here is a
 * timed assertion. Every load is bounded in time and count and targets 127.0.0.1.
 */
import { engineOverhead } from './engine-overhead.js';
import { acceptanceThroughput } from './acceptance.js';

const which = process.argv[2] ?? 'all';
const results: string[] = [];
if (which === 'all' || which === 'engine') results.push(await engineOverhead());
if (which === 'all' || which === 'acceptance') results.push(await acceptanceThroughput());
if (results.length === 0) {
  process.stderr.write(`unknown benchmark '${which}'; use engine, acceptance or nothing for both\n`);
  process.exit(2);
}
process.stdout.write(`\n${results.join('\n')}\n`);
process.exit(0);

import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import got from 'got';
import { builtinAdapters } from '../adapters/index.js';
import { AdapterRegistry } from '../services/runtime-agent/src/adapter-registry.js';
import { Engine } from '../services/runtime-agent/src/engine/engine.js';
import { ExecutionLog } from '../services/runtime-agent/src/engine/execution-log.js';
import { IoTurns } from '../services/runtime-agent/src/engine/queue.js';
import { Metrics } from '../services/runtime-agent/src/metrics.js';
import { Store } from '../services/runtime-agent/src/store/store.js';
const mode = process.argv[2] ?? 'base';
if (mode.includes('nolog')) ExecutionLog.prototype.write = function () {};
if (mode.includes('noturn')) IoTurns.prototype.wait = () => Promise.resolve();
if (mode.includes('nocommit')) (Store.prototype as any).commit = function () { (this as any).deferred = []; };
if (mode.includes('noajv')) AdapterRegistry.prototype.checkRuntime = () => [];
const server = createServer((_q, r) => { r.setHeader('content-type', 'application/json'); r.end('{"ok":true,"n":1}'); });
server.keepAliveTimeout = 60000; server.listen(0, '127.0.0.1'); await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ping`;
const c1 = got.extend({ retry: { limit: 0 }, agent: { http: new Agent({ keepAlive: true }) } });
const store = new Store(mkdtempSync(join(tmpdir(), 'ab-')));
const metrics = new Metrics();
if (mode.includes('nometrics')) { (metrics.stepDuration as any).observe = () => {}; }
const engine = new Engine(store, new AdapterRegistry(builtinAdapters()), metrics, { maxConcurrent: 1, maxQueued: 10, shutdownGraceMs: 1000 });
const wpk: any = { apiVersion: 'wpk/v1', kind: 'Workflow', metadata: { name: 'b', version: '1.0.0' }, spec: { handlers: Array.from({ length: 200 }, (_, i) => ({ name: `s${i}`, adapter: 'api', action: 'request', with: { url } })) } };
const loop: number[] = [], eng: number[] = [];
for (let r = 0; r < 21; r++) {
  let t = performance.now(); for (let i = 0; i < 200; i++) await c1.get(url).json(); loop.push(performance.now() - t);
  t = performance.now(); const { row } = engine.submit({ wpk, params: {}, dryRun: false }); await once(engine.bus, `end:${row.id}`); eng.push(performance.now() - t);
}
const med = (x: number[]) => x.sort((a, b) => a - b)[10];
console.log(mode.padEnd(28), 'loop', med(loop).toFixed(1), 'engine', med(eng).toFixed(1), 'ratio', (med(eng) / med(loop)).toFixed(2));
process.exit(0);

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { FlowRunner, parseConfig, parseFlowmap } from '../adapters/flowrunner/engine/index.js';
const proc = fork('/work/main/bench/target-server.mjs', [], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
const [chunk] = await once(proc.stdout!, 'data') as any; const port = Number(String(chunk).trim());
const c = parseConfig({ flow_target_url: `http://127.0.0.1:${port}`, sim_users: 50, min_sleep_ms: 0, max_sleep_ms: 0 }) as any;
const f = parseFlowmap({ name: 'one', steps: [{ id: 'get', type: 'request', url: '/ping' }] }) as any;
for (let i = 0; i < 3; i++) {
const r = new FlowRunner(c.config, f.flowmap, { limit: { durationMs: 3000 } });
const c0 = process.cpuUsage();
r.start(); await r.done; const s = r.snapshot(); const cu = process.cpuUsage(c0);
console.log(Math.round(s.total_requests / 3), 'req/s', ((cu.user + cu.system) / s.total_requests).toFixed(1), 'µs/req');
}
proc.kill(); process.exit(0);

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Store } from '../services/runtime-agent/src/store/store.js';
const store = new Store(mkdtempSync(join(tmpdir(), 'ins-')));
console.log('page_size', (store as any).db.pragma('page_size', { simple: true }));
const wpk = { apiVersion: 'wpk/v1', kind: 'Workflow', metadata: { name: 'bench-accept', version: '1.0.0' }, spec: { handlers: [{ name: 'hello', adapter: 'shell', action: 'run', with: { command: ['echo', 'hello'] } }] } };
const N = 40000;
function row(id: string) { return { id, workflow_id: 'bench-accept-1.0.0', workflow_name: 'bench-accept', status: 'pending', dry_run: 1, rollback_on_failure: 0, parameters: '{}', secret_params: '[]', package: JSON.stringify(wpk), current_step: null, steps_completed: 0, steps_total: 1, error: null, rollback_status: null, rollback_trigger: null, created_at: new Date().toISOString(), started_at: null, finished_at: null }; }
const t = performance.now(); let worst = 0;
for (let i = 0; i < N; i++) { const t1 = performance.now(); const id = randomUUID(); store.insertExecution(row(id), [{ execution_id: id, phase: 'main', idx: 0, name: 'hello', adapter: 'shell', action: 'run', status: 'pending', attempts: 0, for_step: null, input: null, outputs: null, outputs_source: null, error: null, started_at: null, finished_at: null }]); worst = Math.max(worst, performance.now() - t1); }
console.log('insertExecution avg', ((performance.now() - t) / N * 1000).toFixed(1), 'us; worst', worst.toFixed(1), 'ms');
